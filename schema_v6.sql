-- sitesnap catalogue schema, version 6 (migration from version 5; src/catalog/mod.rs runs it).
-- Structure-only tables per site: NULL = the default list (Drupal's caches, sessions, log,
-- flood, semaphore, search index), '' = none, else comma-separated `*` patterns.
ALTER TABLE sites ADD COLUMN structure_tables TEXT;
