-- sitesnap catalogue schema, version 1 (PRAGMA user_version = 1).
-- Loaded by src/catalog.rs with include_str!; later versions add migrations there.

-- Sites sitesnap knows. db_url may hold a password: the file is 0600 and URLs are redacted
-- whenever they are shown.
CREATE TABLE sites (
    uri         TEXT PRIMARY KEY,
    platform    TEXT NOT NULL,              -- absolute platform root the site is on now
    site_dir    TEXT NOT NULL,              -- relative to the platform, e.g. sites/example.com
    db_url      TEXT,                       -- sqlite:///abs, mysql://..., postgres://...
    bindings    TEXT NOT NULL DEFAULT '[]', -- JSON array of absolute binding file paths
    policy      TEXT,                       -- JSON retention policy, NULL = none stored
    created     TEXT NOT NULL
);

-- Pack files under data/: each holds many compressed chunks and ends with its own header.
CREATE TABLE packs (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,       -- hex SHA-256 of the whole pack file
    size        INTEGER NOT NULL,
    created     TEXT NOT NULL
);

-- The chunk index: where each chunk (named by the SHA-256 of its plain bytes) lives.
CREATE TABLE chunks (
    hash        BLOB PRIMARY KEY,
    pack_id     INTEGER NOT NULL REFERENCES packs(id),
    offset      INTEGER NOT NULL,
    clen        INTEGER NOT NULL,           -- compressed length in the pack
    ulen        INTEGER NOT NULL            -- plain length
) WITHOUT ROWID;
CREATE INDEX chunks_by_pack ON chunks(pack_id);

-- A blob is a byte stream cut into chunks: a serialized tree or a database dump.
-- Its id is the SHA-256 of its chunk list.
CREATE TABLE blobs (
    id          BLOB PRIMARY KEY,
    chunks      BLOB NOT NULL,              -- concatenated 32-byte chunk hashes, in order
    size        INTEGER NOT NULL
) WITHOUT ROWID;

-- One capture of a site.
CREATE TABLE snapshots (
    id            TEXT PRIMARY KEY,         -- 16 hex digits; any unique prefix is accepted
    site          TEXT NOT NULL,
    kind          TEXT NOT NULL,            -- manual scheduled checkpoint pre-restore pre-migrate imported
    label         TEXT,
    pinned        INTEGER NOT NULL DEFAULT 0,
    time          TEXT NOT NULL,            -- RFC 3339, UTC
    platform_path TEXT NOT NULL,
    platform_tree BLOB,                     -- blob id of the serialized platform tree (NULL: platform absent)
    site_dir      TEXT NOT NULL,
    site_tree     BLOB,                     -- blob id of the site directory tree (NULL: absent)
    bindings_tree BLOB,                     -- blob id of the binding files tree
    db_kind       TEXT,                     -- sqlite mysql postgres, NULL = no database
    db_url        TEXT,                     -- redacted: never holds a password
    db_dump       BLOB,                     -- blob id of the dump
    files         INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,         -- plain bytes of all files and the dump
    bytes_read    INTEGER NOT NULL,         -- file bytes actually read from disk (cache misses)
    db_bytes      INTEGER NOT NULL,         -- size of the database dump
    bytes_added   INTEGER NOT NULL,         -- compressed bytes this snapshot added to packs
    duration_ms   INTEGER NOT NULL,
    note          TEXT                      -- e.g. what an import took from disk
);
CREATE INDEX snapshots_by_site ON snapshots(site, time);

-- Files cache: a file whose path, device, inode, size, mtime and ctime did not change is not
-- read again; its chunk list is taken from here.
CREATE TABLE files_cache (
    path        BLOB PRIMARY KEY,           -- absolute path bytes
    dev         INTEGER NOT NULL,
    ino         INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    chunks      BLOB NOT NULL
) WITHOUT ROWID;

-- Restore journals: one row per restore; steps are recorded as they complete.
CREATE TABLE journals (
    id          TEXT PRIMARY KEY,
    site        TEXT NOT NULL,
    snapshot    TEXT NOT NULL,
    pre_restore TEXT,
    plan        TEXT NOT NULL,              -- JSON plan, including temp paths
    step        INTEGER NOT NULL DEFAULT 0, -- steps done
    state       TEXT NOT NULL,              -- open, done, rolled-back
    started     TEXT NOT NULL,
    finished    TEXT
);
