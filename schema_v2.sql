-- sitesnap catalogue schema, version 2 (migration from version 1; src/catalog.rs runs it).
-- The files cache stores each folder's path once: `files_cache.path` becomes the folder's id in
-- `cache_dirs` (4 bytes, big-endian) followed by the file name. Absolute paths repeated on
-- every row made the files cache the largest part of the catalogue. Old rows are dropped: the
-- next snapshot reads those files once more.
CREATE TABLE IF NOT EXISTS cache_dirs (
    id          INTEGER PRIMARY KEY,
    path        BLOB NOT NULL UNIQUE         -- absolute folder path bytes
);
DELETE FROM files_cache;
