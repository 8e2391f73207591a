-- The login throttle and the secrets grin makes for itself, shared by
-- every replica on one database (times in Unix milliseconds).
-- login_failures: failed logins in a row per username (NFC), and until
-- when it is locked; a success deletes its row.
-- login_clients: each client address's token bucket of logins (tokens
-- left at time at). Rows that would change nothing are swept.
CREATE TABLE login_failures (
    username     TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
);
CREATE TABLE login_clients (
    client TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at     INTEGER NOT NULL
);

-- Secrets grin generates for itself (name 'jwt': the HS256 key of its
-- tokens when GRIN_JWT_SECRET is unset), made once by whichever replica
-- starts first and read by all. Never shown by the API.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
