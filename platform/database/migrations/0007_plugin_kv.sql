-- Plugins' key-value stores (the "kv" host capability): one per plugin and
-- user (user_id the user's id), and one per plugin (user_id ''). Erased
-- with the user and with the plugin.
CREATE TABLE plugin_kv (
    plugin_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (plugin_id, user_id, key)
) WITHOUT ROWID;
CREATE INDEX plugin_kv_user ON plugin_kv (user_id);
