-- See ../0005_plugin_disabled_reason.sql.
ALTER TABLE plugins ADD COLUMN disabled_reason text NOT NULL DEFAULT '';
