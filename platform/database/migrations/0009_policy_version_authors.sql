-- Who made each policy version: the user or credential that changed the
-- policy through the API, or the file edit, rename or deletion that did.
-- Versions stored before this column are by an unknown author ('').
ALTER TABLE policy_versions ADD COLUMN author TEXT NOT NULL DEFAULT '';
