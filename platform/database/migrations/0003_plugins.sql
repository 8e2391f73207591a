-- Installed plugins. The module and manifest live in the data directory
-- (plugins/<id>/); this row holds what the administrator decides.
CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    enabled      INTEGER NOT NULL,
    settings     TEXT NOT NULL,   -- JSON object
    isolation    TEXT NOT NULL,   -- '' keeps the manifest's
    installed_at INTEGER NOT NULL
) WITHOUT ROWID;
