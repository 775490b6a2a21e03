-- sitesnap catalogue schema, version 5 (migration from version 4; src/catalog/mod.rs runs it).
-- Damage: chunks `verify` found damaged or missing. A damaged chunk is never reused: the
-- dedup check treats it as absent, so the next snapshot whose live file still has that
-- content stores it anew, and the index then points every snapshot that shares it at the
-- sound copy (the row is then marked `healed`, and `gc` rewrites or removes the damaged pack
-- and forgets the row). Files-cache rows naming a damaged chunk are not trusted.
-- `snapshot_damage` holds what `repair snapshots` found lost for good, per snapshot (JSON).
CREATE TABLE IF NOT EXISTS damaged_chunks (
    hash        BLOB NOT NULL,
    pack        TEXT NOT NULL,
    found       TEXT NOT NULL,
    healed      TEXT,
    PRIMARY KEY (hash, pack)
);
CREATE TABLE IF NOT EXISTS snapshot_damage (
    snapshot_id TEXT PRIMARY KEY,
    lost        TEXT NOT NULL,
    marked      TEXT NOT NULL
);
