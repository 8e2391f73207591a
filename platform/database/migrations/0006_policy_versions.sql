-- Every model and policy put in force, oldest first, as the documents
-- loaded. The newest is the last good policy: grin starts with it when the
-- files in the data directory do not load, and restores a file deleted
-- while grin was down from it. A row is added only when the documents
-- differ from the newest.
CREATE TABLE policy_versions (
    version    INTEGER PRIMARY KEY AUTOINCREMENT,
    model      TEXT NOT NULL,
    policy     TEXT NOT NULL,
    source     TEXT NOT NULL,     -- file (the data directory) or api (PUT /policies)
    created_at INTEGER NOT NULL   -- unix milliseconds
);
