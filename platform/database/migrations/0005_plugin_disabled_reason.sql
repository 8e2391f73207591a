-- Why grin turned a plugin off by itself (its instances failed to start
-- too many times in a row); '' when it did not. Cleared when an
-- administrator turns the plugin on again or installs a new version.
ALTER TABLE plugins ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
