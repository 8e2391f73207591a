-- See ../0009_policy_version_authors.sql.
ALTER TABLE policy_versions ADD COLUMN author text NOT NULL DEFAULT '';
