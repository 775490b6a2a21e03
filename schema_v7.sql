-- sitesnap catalogue schema, version 7 (migration from version 6; src/catalog/mod.rs runs it).
-- Format-2 packs group small chunks into one zstd frame: a chunk's row names its frame
-- (offset, clen) and where the chunk starts in the frame's plain bytes. Every pack indexed
-- before this version is a format-1 pack (one chunk per frame, inner offset 0).
ALTER TABLE chunks ADD COLUMN inner_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE packs ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
