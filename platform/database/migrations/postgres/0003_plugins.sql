-- See ../0003_plugins.sql.
CREATE TABLE plugins (
    id           text PRIMARY KEY,
    enabled      integer NOT NULL,
    settings     text NOT NULL,
    isolation    text NOT NULL,
    installed_at bigint NOT NULL
);
