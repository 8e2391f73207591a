-- See ../0011_grant_generations.sql.
CREATE TABLE grant_generations (
    subject    text PRIMARY KEY,
    generation bigint NOT NULL
);
CREATE INDEX grant_generations_generation ON grant_generations (generation);
