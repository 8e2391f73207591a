-- See ../0002_memory.sql. memory_points is the embedded vector backend's
-- table; it is kept here so that both engines have one schema.
CREATE TABLE memory_points (
    collection text NOT NULL,
    partition  text NOT NULL,
    id         text NOT NULL,
    content    text NOT NULL,
    metadata   text NOT NULL,
    embedder   text NOT NULL,
    vector     bytea NOT NULL,
    seq        bigint NOT NULL,
    PRIMARY KEY (collection, partition, id)
);
CREATE INDEX memory_points_order ON memory_points (collection, partition, seq);

CREATE TABLE conversation_history (
    user_id text NOT NULL,
    seq     bigint NOT NULL,
    who     text NOT NULL,
    text    text NOT NULL,
    why     text,
    at      double precision NOT NULL, -- unix seconds
    PRIMARY KEY (user_id, seq)
);
