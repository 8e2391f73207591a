-- See ../0012_auth_state.sql.
CREATE TABLE login_failures (
    username     text PRIMARY KEY,
    failures     integer NOT NULL,
    last_at      bigint NOT NULL,
    locked_until bigint NOT NULL
);
CREATE TABLE login_clients (
    client text PRIMARY KEY,
    tokens double precision NOT NULL,
    at     bigint NOT NULL
);
CREATE TABLE secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at bigint NOT NULL
);
