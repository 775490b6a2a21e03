-- sitesnap catalogue schema, version 3 (migration from version 2; src/catalog/mod.rs runs it).
-- Drupal 8+ composer platforms keep their web root in a subfolder (web/, docroot/, ...):
-- the web root is stored per platform and per snapshot. A site may own extra paths outside its
-- site folder (a private files folder, a config sync folder), captured in their own tree.
CREATE TABLE IF NOT EXISTS platforms (
    path        TEXT PRIMARY KEY,           -- absolute platform root
    web_root    TEXT NOT NULL               -- relative to the platform; '' = the platform root
);
ALTER TABLE sites ADD COLUMN extra_paths TEXT NOT NULL DEFAULT '[]'; -- JSON, relative to the platform
ALTER TABLE snapshots ADD COLUMN web_root TEXT;                      -- NULL: taken before version 3
ALTER TABLE snapshots ADD COLUMN extra_paths TEXT NOT NULL DEFAULT '[]';
ALTER TABLE snapshots ADD COLUMN extra_tree BLOB;                    -- blob id of the extra paths tree
