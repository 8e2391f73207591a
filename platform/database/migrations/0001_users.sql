-- Internal users. Permissions are not stored here: they are Casbin grouping
-- rules in the grants table, so the policy and /users never disagree.
CREATE TABLE users (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT, -- creation order
    id            TEXT NOT NULL UNIQUE,              -- uuid4
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,                     -- bcrypt; empty: no password login
    created_at    INTEGER NOT NULL                   -- unix milliseconds
);

-- Casbin grouping rules written through the API ("g, subject, role"):
-- the Cat permission dictionary of each internal user, as perm:* roles.
CREATE TABLE grants (
    subject TEXT NOT NULL,
    role    TEXT NOT NULL,
    PRIMARY KEY (subject, role)
) WITHOUT ROWID;

-- Small named settings documents (auth handler, later LLM and embedder).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL -- JSON
) WITHOUT ROWID;
