-- Vector memory of the embedded backend: every point of every collection
-- and partition. Vectors are little-endian float32; search is exact, in
-- process.
CREATE TABLE memory_points (
    collection TEXT NOT NULL,
    partition  TEXT NOT NULL,   -- episodic: user id; declarative: space; procedural: ''
    id         TEXT NOT NULL,
    content    TEXT NOT NULL,
    metadata   TEXT NOT NULL,   -- JSON object
    embedder   TEXT NOT NULL,
    vector     BLOB NOT NULL,
    seq        INTEGER NOT NULL, -- insertion order, for listing
    PRIMARY KEY (collection, partition, id)
) WITHOUT ROWID;
CREATE INDEX memory_points_order ON memory_points (collection, partition, seq);

-- Conversation history, one row per turn, per user.
CREATE TABLE conversation_history (
    user_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    who     TEXT NOT NULL,      -- Human or AI
    text    TEXT NOT NULL,
    why     TEXT,               -- JSON, for AI turns
    at      REAL NOT NULL,      -- unix seconds
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
