-- sitesnap catalogue schema, version 4 (migration from version 3; src/catalog/mod.rs runs it).
-- Repository format v2: the store holds a manifest per snapshot, the chunk list of every blob,
-- an object per site registration and a pin object per pinned snapshot (docs/FORMAT.md), and
-- the catalogue is an index rebuilt from them (`sitesnap repair catalog`). `store_format` says
-- whether this catalogue's rows all have their objects in the store: 2 yes; 1 not yet (a
-- catalogue made by an older sitesnap; the first writing command, or `sitesnap upgrade`,
-- writes the missing objects and sets 2).
CREATE TABLE IF NOT EXISTS meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) SELECT 'store_format',
    CASE WHEN EXISTS (SELECT 1 FROM snapshots) OR EXISTS (SELECT 1 FROM sites) THEN '1' ELSE '2' END;
