-- TRUNCATE empties a table without running its row triggers: the audit
-- log's append-only rule (0008) would not hold against it.
CREATE FUNCTION audit_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: it cannot be emptied';
END;
$$;
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();
