-- sitesnap catalogue schema, version 8 (migration from version 7; src/catalog/mod.rs runs it).
-- A blob of many chunks (a large database dump) keeps an indirect list: `chunks` then holds
-- the ids of its list chunks (chunks whose bytes are 32-byte chunk ids) and `count` the number
-- of chunk ids they hold in all. NULL: `chunks` is the chunk list itself (every blob before).
ALTER TABLE blobs ADD COLUMN count INTEGER;
