-- See ../0007_plugin_kv.sql.
CREATE TABLE plugin_kv (
    plugin_id text NOT NULL,
    user_id   text NOT NULL,
    key       text NOT NULL,
    value     bytea NOT NULL,
    PRIMARY KEY (plugin_id, user_id, key)
);
CREATE INDEX plugin_kv_user ON plugin_kv (user_id);
