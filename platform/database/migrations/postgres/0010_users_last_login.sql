-- See ../0010_users_last_login.sql.
ALTER TABLE users ADD COLUMN last_login bigint;
