-- A replica's hold on a user's turn (platform/session), so that a user's
-- messages are answered one at a time whichever replica receives them.
-- holder is '' when free; epoch is bumped when the user's history is
-- cleared, so a replica's cached window is known stale even when the turn
-- numbers start again from 1.
CREATE TABLE turn_leases (
    user_id    text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL,
    epoch      bigint NOT NULL DEFAULT 0
);
