-- When each user last logged in with a password (POST /auth/token), in
-- unix milliseconds; NULL for a user who never has. Administrators of many
-- users sort by it to find dormant accounts.
ALTER TABLE users ADD COLUMN last_login INTEGER;
