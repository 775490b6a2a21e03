-- sitesnap catalogue schema, version 10 (migration from version 9; src/catalog/mod.rs runs it).
-- The files cache keeps one row per folder: `cache_dirs.files` holds the entries of the
-- folder's files in one blob (format in src/catalog/cache/folder.rs), so a snapshot of a
-- platform of 50,000 files reads a row per folder instead of one per file. The migration
-- converts the rows of `files_cache` into those blobs (src/catalog/cache/mod.rs,
-- `migrate_rows`), then drops `files_cache`.
ALTER TABLE cache_dirs ADD COLUMN files BLOB;
