-- The conversation history and the embedded memory in rowid tables. Their
-- rows (an AI turn with its why, a point with its vector) are larger than
-- the quarter of a page a WITHOUT ROWID table keeps in its B-tree, so each
-- row spilled to an overflow page of its own, and each insert landed in
-- the middle of the tree, beside its user's rows: about three pages
-- written per chat turn. In a rowid table rows are appended in the order
-- they are written and stay whole in their page, and only the small index
-- entries go beside the user's: about two pages a turn. The primary keys
-- stay (as indexes beside the rows), so every statement reads and
-- conflicts as before.
-- Existing rows are copied, each user's together.
CREATE TABLE conversation_history_next (
    user_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    who     TEXT NOT NULL,      -- Human or AI
    text    TEXT NOT NULL,
    why     TEXT,               -- JSON, for AI turns
    at      REAL NOT NULL,      -- unix seconds
    PRIMARY KEY (user_id, seq)  -- a rowid table: the key is an index beside it
);
INSERT INTO conversation_history_next (user_id, seq, who, text, why, at)
    SELECT user_id, seq, who, text, why, at FROM conversation_history ORDER BY user_id, seq;
DROP TABLE conversation_history;
ALTER TABLE conversation_history_next RENAME TO conversation_history;

CREATE TABLE memory_points_next (
    collection TEXT NOT NULL,
    partition  TEXT NOT NULL,   -- episodic: user id; declarative: space; procedural: ''
    id         TEXT NOT NULL,
    content    TEXT NOT NULL,
    metadata   TEXT NOT NULL,   -- JSON object
    embedder   TEXT NOT NULL,
    vector     BLOB NOT NULL,   -- little-endian float32
    seq        INTEGER NOT NULL, -- insertion order, for listing
    PRIMARY KEY (collection, partition, id)
);
INSERT INTO memory_points_next (collection, partition, id, content, metadata, embedder, vector, seq)
    SELECT collection, partition, id, content, metadata, embedder, vector, seq FROM memory_points
    ORDER BY collection, partition, seq;
DROP TABLE memory_points;
ALTER TABLE memory_points_next RENAME TO memory_points;
CREATE INDEX memory_points_order ON memory_points (collection, partition, seq, id);
