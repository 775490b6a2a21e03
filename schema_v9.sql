-- sitesnap catalogue schema, version 9 (migration from version 8; src/catalog/mod.rs runs it).
-- An indirect list of many list chunks (a dump of some 2 GB and more) is cut again one level
-- up: `levels` is how many levels of list chunks lie between `chunks` and the chunk ids.
-- NULL: one level (every indirect list before), or a direct list (`count` NULL).
ALTER TABLE blobs ADD COLUMN levels INTEGER;
