-- Placeholder: another branch of the hook runtime work brings migration 6.
-- The lead replaces this file with it at merge.
SELECT 1;
