-- Nothing for SQLite: it has no TRUNCATE, and its DELETE of a whole table
-- runs the audit log's row triggers (0008). PostgreSQL's TRUNCATE does not,
-- so its mirror of this step refuses it.
SELECT 1;
