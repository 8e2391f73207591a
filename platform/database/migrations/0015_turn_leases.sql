-- A replica's hold on a user's turn (platform/session), so that a user's
-- messages are answered one at a time whichever replica receives them.
-- Only replicas on PostgreSQL take leases; the table is here too so that
-- both schemas are one.
CREATE TABLE turn_leases (
    user_id    TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,     -- '' when free
    expires_at INTEGER NOT NULL,  -- unix milliseconds
    epoch      INTEGER NOT NULL DEFAULT 0 -- bumped when the history is cleared
);
