-- Placeholder: another branch of the security work brings migration 4.
-- The lead replaces this file with it at merge.
SELECT 1;
