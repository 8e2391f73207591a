-- See ../0004_user_tokens_and_names.sql.
ALTER TABLE users ADD COLUMN token_epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN username_skeleton text;
CREATE INDEX users_username_skeleton ON users (username_skeleton);
