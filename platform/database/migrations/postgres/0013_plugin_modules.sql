-- See ../0011_plugin_modules.sql.
CREATE TABLE plugin_modules (
    plugin_id text PRIMARY KEY REFERENCES plugins (id) ON DELETE CASCADE,
    sha256    text NOT NULL,
    manifest  text NOT NULL,
    module    bytea NOT NULL
);
-- enabled is written as a boolean on both engines (SQLite stores it as
-- 0 or 1, as before).
ALTER TABLE plugins ALTER COLUMN enabled TYPE boolean USING enabled <> 0;
