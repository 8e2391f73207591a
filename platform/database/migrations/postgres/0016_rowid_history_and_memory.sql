-- SQLite's 0011 moves the history and the embedded memory out of WITHOUT
-- ROWID tables; PostgreSQL's tables are heaps with their keys in separate
-- indexes already, so nothing changes here.
SELECT 1;
