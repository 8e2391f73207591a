-- The generation of each subject's grants: set, in the transaction that
-- changes them, to one more than the highest of any subject. A replica
-- that may have missed news of a change (its bus reconnected) reloads the
-- grants of the subjects above the generation it has seen, not every
-- grant. A subject's row stays when its grants go, so the removal is seen
-- too. Subjects never changed since this step have no row (generation 0):
-- every replica loaded them whole at start.
CREATE TABLE grant_generations (
    subject    TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
CREATE INDEX grant_generations_generation ON grant_generations (generation);
