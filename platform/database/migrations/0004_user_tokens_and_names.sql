-- Token revocation: every token carries the epoch of its user at issue; a
-- password change or "log out everywhere" moves the epoch on, and tokens
-- carrying an older one stop working (HTTP and open sockets). A counter,
-- not a time, so a token issued in the same second as the change is told
-- apart from one issued after it.
ALTER TABLE users ADD COLUMN token_epoch INTEGER NOT NULL DEFAULT 0;

-- The Unicode confusables skeleton (UTS #39) of the username: two names
-- with one skeleton look alike ("admin" with a Cyrillic "а"), and a new or
-- renamed user may not take one that looks like another's. grin fills it
-- at start for users created before this column existed. Not unique:
-- existing look-alike names stay as they are.
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
CREATE INDEX users_username_skeleton ON users (username_skeleton);
