-- The audit log: who changed what, when, from where, and how it ended.
-- Rows are only ever added; grin deletes them only when they are older
-- than the retention (GRIN_AUDIT_RETENTION). The triggers refuse anything
-- else, whoever asks: no row is ever changed, and none younger than a day
-- can be deleted.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- order of recording
    at         INTEGER NOT NULL,                  -- unix milliseconds
    actor_kind TEXT NOT NULL,                     -- user, api_key, ws_key, anonymous, handler, plugin, file, system
    actor_id   TEXT NOT NULL DEFAULT '',
    actor_name TEXT NOT NULL DEFAULT '',
    address    TEXT NOT NULL DEFAULT '',          -- the client's address, through trusted proxies
    action     TEXT NOT NULL,                     -- user.create, policy.update, login, …
    target     TEXT NOT NULL DEFAULT '',
    before     TEXT,                              -- JSON, secrets masked
    after      TEXT,                              -- JSON, secrets masked
    outcome    TEXT NOT NULL,                     -- success, refused, failed
    detail     TEXT NOT NULL DEFAULT ''           -- why it was refused or failed
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_actor ON audit (actor_id, id);
CREATE INDEX audit_target ON audit (target, id);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be changed');
END;

CREATE TRIGGER audit_no_early_delete BEFORE DELETE ON audit
WHEN old.at > (unixepoch('now') - 86400) * 1000
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: entries younger than a day cannot be deleted');
END;
