//! The catalogue: `catalog.sqlite` in the repository, holding sites, packs, the chunk index,
//! blobs (trees and dumps), snapshots, the files cache and restore journals. It owns the schema
//! (`schema.sql`, versioned with `PRAGMA user_version`) and every SQL statement; other modules
//! call typed methods. It never touches pack files or live sites.

use crate::error::{Error, Result};
use crate::hash::Hash;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const SCHEMA_V1: &str = include_str!("../schema.sql");
/// Migration from version 1 to 2: the files cache keyed by folder id + file name.
const SCHEMA_V2: &str = include_str!("../schema_v2.sql");
/// Schema version this build writes.
pub const SCHEMA_VERSION: i64 = 2;

/// A site as registered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SiteRecord {
    pub uri: String,
    pub platform: PathBuf,
    pub site_dir: String,
    #[serde(skip)]
    pub db_url: Option<String>,
    pub bindings: Vec<PathBuf>,
    pub policy: Option<String>,
}

/// One snapshot row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotRecord {
    pub id: String,
    pub site: String,
    pub kind: String,
    pub label: Option<String>,
    pub pinned: bool,
    pub time: DateTime<Utc>,
    pub platform_path: PathBuf,
    #[serde(serialize_with = "ser_opt_hash")]
    pub platform_tree: Option<Hash>,
    pub site_dir: String,
    #[serde(serialize_with = "ser_opt_hash")]
    pub site_tree: Option<Hash>,
    #[serde(serialize_with = "ser_opt_hash")]
    pub bindings_tree: Option<Hash>,
    pub db_kind: Option<String>,
    pub db_url: Option<String>,
    #[serde(serialize_with = "ser_opt_hash")]
    pub db_dump: Option<Hash>,
    pub files: u64,
    pub bytes: u64,
    pub bytes_read: u64,
    pub db_bytes: u64,
    pub bytes_added: u64,
    pub duration_ms: u64,
    pub note: Option<String>,
}

fn ser_opt_hash<S: serde::Serializer>(
    h: &Option<Hash>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match h {
        Some(h) => s.serialize_some(&h.to_hex()),
        None => s.serialize_none(),
    }
}

/// Where a chunk is stored.
#[derive(Debug, Clone)]
pub struct ChunkLocation {
    pub pack: String,
    pub offset: u64,
    pub clen: u32,
    pub ulen: u32,
}

/// A files-cache row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub chunks: Vec<Hash>,
}

/// A restore journal row.
#[derive(Debug, Clone)]
pub struct JournalRecord {
    pub id: String,
    pub site: String,
    pub snapshot: String,
    pub pre_restore: Option<String>,
    pub plan: String,
    pub step: u32,
    pub state: String,
}

pub struct Catalog {
    pub conn: Connection,
}

pub fn hashes_to_blob(hs: &[Hash]) -> Vec<u8> {
    let mut v = Vec::with_capacity(hs.len() * 32);
    for h in hs {
        v.extend_from_slice(&h.0);
    }
    v
}

pub fn blob_to_hashes(b: &[u8]) -> Result<Vec<Hash>> {
    if !b.len().is_multiple_of(32) {
        return Err(Error::Corrupt(
            "chunk list of odd length in catalogue".into(),
        ));
    }
    Ok(b.chunks_exact(32)
        .map(|c| Hash(c.try_into().expect("32 bytes")))
        .collect())
}

/// An absolute path split at its last `/`: (folder, name).
fn split_path(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (&[], p),
    }
}

/// Writes files-cache rows keyed by absolute path: each row's key is its folder's id in
/// `cache_dirs` (4 bytes, big-endian; the folder is added if new) followed by the file name.
fn write_cache_rows(conn: &Connection, rows: &[(Vec<u8>, CacheEntry)]) -> Result<()> {
    let mut ids: HashMap<&[u8], u32> = HashMap::new();
    let mut find = conn.prepare_cached("SELECT id FROM cache_dirs WHERE path = ?1")?;
    let mut add = conn.prepare_cached("INSERT INTO cache_dirs (path) VALUES (?1)")?;
    let mut st = conn.prepare_cached(
        "INSERT OR REPLACE INTO files_cache (path, dev, ino, size, mtime_ns, ctime_ns, chunks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut key = Vec::new();
    for (p, c) in rows {
        let (dir, name) = split_path(p);
        let id = match ids.get(dir) {
            Some(id) => *id,
            None => {
                let id = match find.query_row([dir], |r| r.get::<_, i64>(0)).optional()? {
                    Some(id) => id,
                    None => {
                        add.execute([dir])?;
                        conn.last_insert_rowid()
                    }
                };
                let id = u32::try_from(id)
                    .map_err(|_| Error::Invalid("files cache: too many folders".into()))?;
                ids.insert(dir, id);
                id
            }
        };
        key.clear();
        key.extend_from_slice(&id.to_be_bytes());
        key.extend_from_slice(name);
        st.execute(params![
            key,
            c.dev as i64,
            c.ino as i64,
            c.size as i64,
            c.mtime_ns,
            c.ctime_ns,
            hashes_to_blob(&c.chunks)
        ])?;
    }
    Ok(())
}

fn time_str(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Catalog {
    /// Opens (and creates or migrates) the catalogue at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let cat = Catalog { conn };
        cat.migrate()?;
        Ok(cat)
    }

    fn migrate(&self) -> Result<()> {
        let v: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(Error::Invalid(format!(
                "catalogue schema version {v} is newer than this sitesnap understands ({SCHEMA_VERSION})"
            )));
        }
        if v == 0 {
            let tx = self.conn.unchecked_transaction()?;
            // A concurrent opener may have created it meanwhile.
            let again: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if again == 0 {
                tx.execute_batch(SCHEMA_V1)?;
                tx.pragma_update(None, "user_version", 1)?;
            }
            tx.commit()?;
        }
        if v < 2 {
            let tx = rusqlite::Transaction::new_unchecked(
                &self.conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            let again: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if again < 2 {
                tx.execute_batch(SCHEMA_V2)?;
                tx.pragma_update(None, "user_version", 2)?;
            }
            tx.commit()?;
        }
        // Future: if v < 3 { migrate_v3 } ...
        Ok(())
    }

    // ---------------------------------------------------------------- sites

    pub fn add_site(&self, s: &SiteRecord) -> Result<()> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO sites (uri, platform, site_dir, db_url, bindings, policy, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                s.uri,
                s.platform.to_string_lossy(),
                s.site_dir,
                s.db_url,
                serde_json::to_string(&s.bindings).expect("paths serialize"),
                s.policy,
                time_str(&crate::fsutil::now()),
            ],
        )?;
        if n == 0 {
            return Err(Error::Invalid(format!(
                "site '{}' is already registered",
                s.uri
            )));
        }
        Ok(())
    }

    pub fn update_site(&self, s: &SiteRecord) -> Result<()> {
        self.conn.execute(
            "UPDATE sites SET platform = ?2, site_dir = ?3, db_url = ?4, bindings = ?5, policy = ?6
             WHERE uri = ?1",
            params![
                s.uri,
                s.platform.to_string_lossy(),
                s.site_dir,
                s.db_url,
                serde_json::to_string(&s.bindings).expect("paths serialize"),
                s.policy,
            ],
        )?;
        Ok(())
    }

    fn site_from_row(r: &rusqlite::Row) -> rusqlite::Result<SiteRecord> {
        let bindings: String = r.get(4)?;
        Ok(SiteRecord {
            uri: r.get(0)?,
            platform: PathBuf::from(r.get::<_, String>(1)?),
            site_dir: r.get(2)?,
            db_url: r.get(3)?,
            bindings: serde_json::from_str(&bindings).unwrap_or_default(),
            policy: r.get(5)?,
        })
    }

    pub fn find_site(&self, uri: &str) -> Result<Option<SiteRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT uri, platform, site_dir, db_url, bindings, policy FROM sites WHERE uri = ?1",
                [uri],
                Self::site_from_row,
            )
            .optional()?)
    }

    pub fn site(&self, uri: &str) -> Result<SiteRecord> {
        self.find_site(uri)?
            .ok_or_else(|| Error::UnknownSite(uri.to_string()))
    }

    pub fn sites(&self) -> Result<Vec<SiteRecord>> {
        let mut st = self.conn.prepare(
            "SELECT uri, platform, site_dir, db_url, bindings, policy FROM sites ORDER BY uri",
        )?;
        let rows = st.query_map([], Self::site_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes a site; with `forget_snapshots` its snapshots go too (their data stays until gc).
    pub fn remove_site(&self, uri: &str, forget_snapshots: bool) -> Result<()> {
        self.site(uri)?;
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM snapshots WHERE site = ?1",
            [uri],
            |r| r.get(0),
        )?;
        if n > 0 && !forget_snapshots {
            return Err(Error::Refused(format!(
                "site '{uri}' has {n} snapshot(s); add --forget-snapshots to remove it with them"
            )));
        }
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM snapshots WHERE site = ?1", [uri])?;
        tx.execute("DELETE FROM sites WHERE uri = ?1", [uri])?;
        tx.commit()?;
        Ok(())
    }

    // ---------------------------------------------------------------- chunks and packs

    pub fn chunk_exists(&self, h: &Hash) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM chunks WHERE hash = ?1")?;
        Ok(st.exists([&h.0[..]])?)
    }

    pub fn chunk_location(&self, h: &Hash) -> Result<Option<ChunkLocation>> {
        let mut st = self.conn.prepare_cached(
            "SELECT p.name, c.offset, c.clen, c.ulen FROM chunks c JOIN packs p ON p.id = c.pack_id
             WHERE c.hash = ?1",
        )?;
        Ok(st
            .query_row([&h.0[..]], |r| {
                Ok(ChunkLocation {
                    pack: r.get(0)?,
                    offset: r.get::<_, i64>(1)? as u64,
                    clen: r.get::<_, i64>(2)? as u32,
                    ulen: r.get::<_, i64>(3)? as u32,
                })
            })
            .optional()?)
    }

    /// Records a durable pack and its chunks in one transaction. Call only after the pack file
    /// is fsynced and renamed into place.
    pub fn insert_pack(&self, info: &crate::store::PackInfo) -> Result<()> {
        self.record_pack(
            info,
            "INSERT OR IGNORE INTO chunks (hash, pack_id, offset, clen, ulen) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
    }

    /// Records a pack and runs `chunk_sql` (parameters: hash, pack id, offset, clen, ulen) for
    /// each of its chunks, in one transaction.
    fn record_pack(&self, info: &crate::store::PackInfo, chunk_sql: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO packs (name, size, created) VALUES (?1, ?2, ?3)",
            params![info.name, info.size as i64, time_str(&Utc::now())],
        )?;
        let pack_id: i64 =
            tx.query_row("SELECT id FROM packs WHERE name = ?1", [&info.name], |r| {
                r.get(0)
            })?;
        {
            let mut st = tx.prepare_cached(chunk_sql)?;
            for e in &info.entries {
                st.execute(params![
                    &e.hash.0[..],
                    pack_id,
                    e.offset as i64,
                    e.clen as i64,
                    e.ulen as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    // ---------------------------------------------------------------- blobs

    pub fn blob(&self, id: &Hash) -> Result<(Vec<Hash>, u64)> {
        let row: Option<(Vec<u8>, i64)> = self
            .conn
            .query_row(
                "SELECT chunks, size FROM blobs WHERE id = ?1",
                [&id.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (chunks, size) = row.ok_or_else(|| {
            Error::Corrupt(format!("blob {} is missing from the catalogue", id.short()))
        })?;
        Ok((blob_to_hashes(&chunks)?, size as u64))
    }

    // ---------------------------------------------------------------- snapshots

    /// Inserts a snapshot together with the blobs it names and the files-cache rows its capture
    /// produced, in one transaction: the snapshot becomes visible atomically.
    pub fn commit_snapshot(
        &self,
        s: &SnapshotRecord,
        blobs: &[(Hash, Vec<Hash>, u64)],
        cache: &[(Vec<u8>, CacheEntry)],
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO blobs (id, chunks, size) VALUES (?1, ?2, ?3)",
            )?;
            for (id, chunks, size) in blobs {
                st.execute(params![&id.0[..], hashes_to_blob(chunks), *size as i64])?;
            }
        }
        write_cache_rows(&tx, cache)?;
        let oh = |h: &Option<Hash>| h.map(|h| h.0.to_vec());
        tx.execute(
            "INSERT INTO snapshots (id, site, kind, label, pinned, time, platform_path, platform_tree,
                site_dir, site_tree, bindings_tree, db_kind, db_url, db_dump, files, bytes, bytes_read,
                db_bytes, bytes_added, duration_ms, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
            params![
                s.id,
                s.site,
                s.kind,
                s.label,
                s.pinned as i64,
                time_str(&s.time),
                s.platform_path.to_string_lossy(),
                oh(&s.platform_tree),
                s.site_dir,
                oh(&s.site_tree),
                oh(&s.bindings_tree),
                s.db_kind,
                s.db_url,
                oh(&s.db_dump),
                s.files as i64,
                s.bytes as i64,
                s.bytes_read as i64,
                s.db_bytes as i64,
                s.bytes_added as i64,
                s.duration_ms as i64,
                s.note,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    const SNAP_COLS: &'static str =
        "id, site, kind, label, pinned, time, platform_path, platform_tree,
        site_dir, site_tree, bindings_tree, db_kind, db_url, db_dump, files, bytes, bytes_read,
        db_bytes, bytes_added, duration_ms, note";

    fn snap_from_row(r: &rusqlite::Row) -> rusqlite::Result<SnapshotRecord> {
        let oh = |v: Option<Vec<u8>>| v.and_then(|b| b.try_into().ok().map(Hash));
        let t: String = r.get(5)?;
        Ok(SnapshotRecord {
            id: r.get(0)?,
            site: r.get(1)?,
            kind: r.get(2)?,
            label: r.get(3)?,
            pinned: r.get::<_, i64>(4)? != 0,
            time: DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            platform_path: PathBuf::from(r.get::<_, String>(6)?),
            platform_tree: oh(r.get(7)?),
            site_dir: r.get(8)?,
            site_tree: oh(r.get(9)?),
            bindings_tree: oh(r.get(10)?),
            db_kind: r.get(11)?,
            db_url: r.get(12)?,
            db_dump: oh(r.get(13)?),
            files: r.get::<_, i64>(14)? as u64,
            bytes: r.get::<_, i64>(15)? as u64,
            bytes_read: r.get::<_, i64>(16)? as u64,
            db_bytes: r.get::<_, i64>(17)? as u64,
            bytes_added: r.get::<_, i64>(18)? as u64,
            duration_ms: r.get::<_, i64>(19)? as u64,
            note: r.get(20)?,
        })
    }

    /// Snapshots, oldest first; only `site`'s if given.
    pub fn snapshots(&self, site: Option<&str>) -> Result<Vec<SnapshotRecord>> {
        let sql = format!(
            "SELECT {} FROM snapshots WHERE (?1 IS NULL OR site = ?1) ORDER BY time, id",
            Self::SNAP_COLS
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map([site], Self::snap_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Resolves a full id or a unique prefix.
    pub fn resolve_snapshot(&self, prefix: &str) -> Result<SnapshotRecord> {
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::UnknownSnapshot(prefix.to_string()));
        }
        let sql = format!(
            "SELECT {} FROM snapshots WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT 6",
            Self::SNAP_COLS
        );
        let mut st = self.conn.prepare(&sql)?;
        let found: Vec<SnapshotRecord> = st
            .query_map([prefix.to_ascii_lowercase()], Self::snap_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        match found.len() {
            0 => Err(Error::UnknownSnapshot(prefix.to_string())),
            1 => Ok(found.into_iter().next().expect("one")),
            _ => {
                let ids: Vec<&str> = found.iter().take(5).map(|s| s.id.as_str()).collect();
                Err(Error::AmbiguousSnapshot(prefix.to_string(), ids.join(", ")))
            }
        }
    }

    pub fn snapshot_id_taken(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM snapshots WHERE id = ?1")?
            .exists([id])?)
    }

    pub fn delete_snapshots(&self, ids: &[String]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for id in ids {
            tx.execute("DELETE FROM snapshots WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn set_pinned(&self, id: &str, pinned: bool) -> Result<()> {
        self.conn.execute(
            "UPDATE snapshots SET pinned = ?2 WHERE id = ?1",
            params![id, pinned as i64],
        )?;
        Ok(())
    }

    // ---------------------------------------------------------------- files cache

    /// Loads the files-cache rows for every path under `root` (inclusive), keyed by absolute
    /// path.
    pub fn load_cache(&self, root: &Path) -> Result<HashMap<Vec<u8>, CacheEntry>> {
        use std::os::unix::ffi::OsStrExt;
        let root = root.as_os_str().as_bytes();
        let mut hi = root.to_vec();
        hi.push(0xff);
        // The folders under root, and root's own folder (root may be a file: a binding).
        let mut dirs: Vec<(u32, Vec<u8>)> = Vec::new();
        {
            let mut st = self.conn.prepare_cached(
                "SELECT id, path FROM cache_dirs WHERE (path >= ?1 AND path < ?2) OR path = ?3
                 ORDER BY id",
            )?;
            let mut rows = st.query(params![root, hi, split_path(root).0])?;
            while let Some(r) = rows.next()? {
                dirs.push((r.get::<_, i64>(0)? as u32, r.get(1)?));
            }
        }
        let mut st = self.conn.prepare_cached(
            "SELECT path, dev, ino, size, mtime_ns, ctime_ns, chunks FROM files_cache
             WHERE path >= ?1 AND path < ?2",
        )?;
        let mut map = HashMap::new();
        // Folders first seen together have consecutive ids: one range scan per run of ids.
        let mut i = 0;
        while i < dirs.len() {
            let mut j = i + 1;
            while j < dirs.len() && dirs[j - 1].0.checked_add(1) == Some(dirs[j].0) {
                j += 1;
            }
            let run = &dirs[i..j];
            let first = run[0].0;
            let lo = first.to_be_bytes();
            // Every key of the run's ids sorts below the next id's 4 bytes.
            let hi: Vec<u8> = match run[run.len() - 1].0.checked_add(1) {
                Some(next) => next.to_be_bytes().to_vec(),
                None => vec![0xff; 300], // above any 0xffffffff key: a name is <= 255 bytes
            };
            let mut rows = st.query(params![&lo[..], hi])?;
            while let Some(r) = rows.next()? {
                let key: Vec<u8> = r.get(0)?;
                if key.len() < 4 {
                    continue;
                }
                let id = u32::from_be_bytes(key[..4].try_into().expect("4 bytes"));
                let Some(dir) = id.checked_sub(first).and_then(|k| run.get(k as usize)) else {
                    continue;
                };
                let mut path = Vec::with_capacity(dir.1.len() + key.len() - 3);
                path.extend_from_slice(&dir.1);
                path.push(b'/');
                path.extend_from_slice(&key[4..]);
                if !path.starts_with(root) {
                    continue;
                }
                let chunks: Vec<u8> = r.get(6)?;
                map.insert(
                    path,
                    CacheEntry {
                        dev: r.get::<_, i64>(1)? as u64,
                        ino: r.get::<_, i64>(2)? as u64,
                        size: r.get::<_, i64>(3)? as u64,
                        mtime_ns: r.get(4)?,
                        ctime_ns: r.get(5)?,
                        chunks: blob_to_hashes(&chunks)?,
                    },
                );
            }
            i = j;
        }
        Ok(map)
    }

    /// Writes files-cache rows (after a restore put those files in place).
    pub fn insert_cache(&self, rows: &[(Vec<u8>, CacheEntry)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        write_cache_rows(&tx, rows)?;
        tx.commit()?;
        Ok(())
    }

    pub fn clear_cache(&self) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM files_cache", [])?;
        tx.execute("DELETE FROM cache_dirs", [])?;
        tx.commit()?;
        Ok(())
    }

    // ---------------------------------------------------------------- journals

    pub fn open_journal_for(&self, site: &str) -> Result<Option<JournalRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, site, snapshot, pre_restore, plan, step, state FROM journals
                 WHERE site = ?1 AND state = 'open'",
                [site],
                Self::journal_from_row,
            )
            .optional()?)
    }

    pub fn open_journals(&self) -> Result<Vec<JournalRecord>> {
        let mut st = self.conn.prepare(
            "SELECT id, site, snapshot, pre_restore, plan, step, state FROM journals
             WHERE state = 'open' ORDER BY started",
        )?;
        let rows = st.query_map([], Self::journal_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn journal_from_row(r: &rusqlite::Row) -> rusqlite::Result<JournalRecord> {
        Ok(JournalRecord {
            id: r.get(0)?,
            site: r.get(1)?,
            snapshot: r.get(2)?,
            pre_restore: r.get(3)?,
            plan: r.get(4)?,
            step: r.get::<_, i64>(5)? as u32,
            state: r.get(6)?,
        })
    }

    pub fn create_journal(&self, j: &JournalRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO journals (id, site, snapshot, pre_restore, plan, step, state, started)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7)",
            params![
                j.id,
                j.site,
                j.snapshot,
                j.pre_restore,
                j.plan,
                j.step as i64,
                time_str(&Utc::now())
            ],
        )?;
        Ok(())
    }

    pub fn update_journal(&self, id: &str, step: u32, pre_restore: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE journals SET step = ?2, pre_restore = coalesce(?3, pre_restore) WHERE id = ?1",
            params![id, step as i64, pre_restore],
        )?;
        Ok(())
    }

    pub fn close_journal(&self, id: &str, state: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE journals SET state = ?2, finished = ?3 WHERE id = ?1",
            params![id, state, time_str(&Utc::now())],
        )?;
        Ok(())
    }
}

/// How much of a pack the snapshots still use (computed against the live set of `gc`/`verify`).
#[derive(Debug, Clone)]
pub struct PackUsage {
    pub id: i64,
    pub name: String,
    pub size: u64,
    pub chunks: u64,
    pub live_chunks: u64,
    pub live_bytes: u64,
}

/// What one gc deletion transaction removed.
#[derive(Debug, Clone, Default)]
pub struct DeadRows {
    pub cache_rows: u64,
    pub chunks: u64,
    pub blobs: u64,
    pub packs: u64,
}

/// Operations: retention policies, pinning, and the live set used by `gc` and `verify` (temp
/// tables `live_blobs` / `live_chunks` on this connection, so the referenced set of a large
/// repository lives in SQLite, not in RAM).
impl Catalog {
    /// Stores (or clears) a site's retention policy (JSON).
    pub fn set_policy(&self, uri: &str, policy: Option<&str>) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE sites SET policy = ?2 WHERE uri = ?1",
            params![uri, policy],
        )?;
        if n == 0 {
            return Err(Error::UnknownSite(uri.to_string()));
        }
        Ok(())
    }

    /// Every pack row: (id, name, size).
    pub fn packs(&self) -> Result<Vec<(i64, String, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, size FROM packs ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The index rows of one pack, by offset.
    pub fn chunks_in_pack(&self, pack_id: i64) -> Result<Vec<crate::store::PackEntry>> {
        self.pack_entries(
            "SELECT hash, offset, clen, ulen FROM chunks WHERE pack_id = ?1 ORDER BY offset",
            pack_id,
        )
    }

    fn pack_entries(&self, sql: &str, pack_id: i64) -> Result<Vec<crate::store::PackEntry>> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([pack_id], |r| {
            let h: Vec<u8> = r.get(0)?;
            Ok((
                h,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (h, offset, clen, ulen) = row?;
            let hash = Hash(h.try_into().map_err(|_| {
                Error::Corrupt("chunk hash of the wrong length in the index".into())
            })?);
            out.push(crate::store::PackEntry {
                hash,
                offset: offset as u64,
                clen: clen as u32,
                ulen: ulen as u32,
            });
        }
        Ok(out)
    }

    /// Starts a live set: (re)creates the temp tables and fills `live_blobs` with every blob a
    /// snapshot names (trees flagged 1, dumps 0).
    pub fn live_begin(&self) -> Result<()> {
        self.conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS live_blobs (id BLOB PRIMARY KEY, tree INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TEMP TABLE IF NOT EXISTS live_chunks (hash BLOB PRIMARY KEY) WITHOUT ROWID;
             DELETE FROM temp.live_blobs;
             DELETE FROM temp.live_chunks;
             INSERT OR IGNORE INTO temp.live_blobs (id, tree)
                 SELECT platform_tree, 1 FROM snapshots WHERE platform_tree IS NOT NULL
                 UNION SELECT site_tree, 1 FROM snapshots WHERE site_tree IS NOT NULL
                 UNION SELECT bindings_tree, 1 FROM snapshots WHERE bindings_tree IS NOT NULL
                 UNION SELECT db_dump, 0 FROM snapshots WHERE db_dump IS NOT NULL;",
        )?;
        Ok(())
    }

    /// The live blobs: (id, is a tree).
    pub fn live_blobs(&self) -> Result<Vec<(Hash, bool)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, tree FROM temp.live_blobs ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, tree) = row?;
            if let Ok(a) = <[u8; 32]>::try_from(id.as_slice()) {
                out.push((Hash(a), tree != 0));
            }
        }
        Ok(out)
    }

    /// Adds chunks to the live set.
    pub fn live_add(&self, chunks: &[Hash]) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO temp.live_chunks (hash) VALUES (?1)")?;
        for h in chunks {
            st.execute([&h.0[..]])?;
        }
        Ok(())
    }

    pub fn live_contains(&self, h: &Hash) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM temp.live_chunks WHERE hash = ?1")?;
        Ok(st.exists([&h.0[..]])?)
    }

    pub fn live_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM temp.live_chunks", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Live chunks that the index does not know (damage: their data is lost or unindexed).
    pub fn live_missing(&self) -> Result<Vec<Hash>> {
        let mut st = self.conn.prepare(
            "SELECT l.hash FROM temp.live_chunks l
             WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.hash = l.hash)",
        )?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(a) = <[u8; 32]>::try_from(row?.as_slice()) {
                out.push(Hash(a));
            }
        }
        Ok(out)
    }

    /// Per pack: its chunks, and how many of them (and how many compressed bytes) are live.
    pub fn pack_usage(&self) -> Result<Vec<PackUsage>> {
        let mut st = self.conn.prepare(
            "SELECT p.id, p.name, p.size, count(c.hash), count(l.hash),
                    coalesce(sum(CASE WHEN l.hash IS NULL THEN 0 ELSE c.clen END), 0)
             FROM packs p
             LEFT JOIN chunks c ON c.pack_id = p.id
             LEFT JOIN temp.live_chunks l ON l.hash = c.hash
             GROUP BY p.id ORDER BY p.name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(PackUsage {
                id: r.get(0)?,
                name: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                chunks: r.get::<_, i64>(3)? as u64,
                live_chunks: r.get::<_, i64>(4)? as u64,
                live_bytes: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The live chunks of one pack, by offset.
    pub fn live_chunks_in_pack(&self, pack_id: i64) -> Result<Vec<crate::store::PackEntry>> {
        self.pack_entries(
            "SELECT c.hash, c.offset, c.clen, c.ulen FROM chunks c
             JOIN temp.live_chunks l ON l.hash = c.hash
             WHERE c.pack_id = ?1 ORDER BY c.offset",
            pack_id,
        )
    }

    /// Records a durable pack written by gc and points the index rows of its chunks at it, in
    /// one transaction. The old pack keeps its file until its rows are gone.
    pub fn move_chunks(&self, info: &crate::store::PackInfo) -> Result<()> {
        self.record_pack(
            info,
            "INSERT INTO chunks (hash, pack_id, offset, clen, ulen) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hash) DO UPDATE SET pack_id = excluded.pack_id,
                offset = excluded.offset, clen = excluded.clen, ulen = excluded.ulen",
        )
    }

    /// gc's deletion step, in one transaction: files-cache rows naming a chunk that is not live
    /// (else a later snapshot would reuse a chunk about to vanish), index rows of dead chunks,
    /// blob rows no snapshot names, and the rows of `packs` (each must hold no chunk row by
    /// then, or nothing is deleted).
    pub fn delete_dead(&self, packs: &[i64]) -> Result<DeadRows> {
        let tx = self.conn.unchecked_transaction()?;
        let mut out = DeadRows::default();
        let mut stale = Vec::new();
        {
            let mut st = tx.prepare("SELECT path, chunks FROM files_cache")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let chunks: Vec<u8> = r.get(1)?;
                let mut live = chunks.len().is_multiple_of(32);
                if live {
                    for h in chunks.chunks_exact(32) {
                        let h = Hash(h.try_into().expect("32 bytes"));
                        if !self.live_contains(&h)? {
                            live = false;
                            break;
                        }
                    }
                }
                if !live {
                    stale.push(r.get::<_, Vec<u8>>(0)?);
                }
            }
        }
        {
            let mut st = tx.prepare("DELETE FROM files_cache WHERE path = ?1")?;
            for p in &stale {
                out.cache_rows += st.execute([p])? as u64;
            }
        }
        out.chunks = tx.execute(
            "DELETE FROM chunks WHERE NOT EXISTS
                (SELECT 1 FROM temp.live_chunks l WHERE l.hash = chunks.hash)",
            [],
        )? as u64;
        out.blobs = tx.execute(
            "DELETE FROM blobs WHERE NOT EXISTS
                (SELECT 1 FROM temp.live_blobs l WHERE l.id = blobs.id)",
            [],
        )? as u64;
        {
            let mut st = tx.prepare("SELECT count(*) FROM chunks WHERE pack_id = ?1")?;
            let mut del = tx.prepare("DELETE FROM packs WHERE id = ?1")?;
            for id in packs {
                let n: i64 = st.query_row([id], |r| r.get(0))?;
                if n != 0 {
                    return Err(Error::Invalid(format!(
                        "gc: pack {id} still holds {n} indexed chunk(s); nothing was deleted"
                    )));
                }
                out.packs += del.execute([id])? as u64;
            }
        }
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> CacheEntry {
        CacheEntry {
            dev: 1,
            ino: n as u64,
            size: 10 * n as u64,
            mtime_ns: 1_700_000_000_000_000_000 + n as i64,
            ctime_ns: 1_700_000_000_000_000_001 + n as i64,
            chunks: vec![Hash([n; 32])],
        }
    }

    /// Rows written by absolute path come back by absolute path, for a root folder (every file
    /// under it, however deep), for a single file (a binding), after a restore rewrote some, and
    /// each folder's path is stored once.
    #[test]
    fn files_cache_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&d.path().join("c.sqlite")).unwrap();
        let rows: Vec<(Vec<u8>, CacheEntry)> = [
            "/srv/p/index.php",
            "/srv/p/core/a.php",
            "/srv/p/core/lib/b.php",
            "/srv/p/sites/x.com/files/c.jpg",
            "/srv/p2/other.php",
            "/etc/nginx/vhost.d/x.com",
            "/etc/nginx/vhost.d/y.com",
            "/top",
        ]
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_bytes().to_vec(), entry(i as u8)))
        .collect();
        let snap = |id: &str| SnapshotRecord {
            id: id.into(),
            site: "x.com".into(),
            kind: "manual".into(),
            label: None,
            pinned: false,
            time: Utc::now(),
            platform_path: "/srv/p".into(),
            platform_tree: None,
            site_dir: "sites/x.com".into(),
            site_tree: None,
            bindings_tree: None,
            db_kind: None,
            db_url: None,
            db_dump: None,
            files: 0,
            bytes: 0,
            bytes_read: 0,
            db_bytes: 0,
            bytes_added: 0,
            duration_ms: 0,
            note: None,
        };
        cat.commit_snapshot(&snap("aa"), &[], &rows).unwrap();
        let p = cat.load_cache(Path::new("/srv/p")).unwrap();
        let mut keys: Vec<_> = p
            .keys()
            .map(|k| String::from_utf8(k.clone()).unwrap())
            .collect();
        keys.sort();
        // Like a byte range on the path: /srv/p2 starts with /srv/p as well.
        assert_eq!(
            keys,
            [
                "/srv/p/core/a.php",
                "/srv/p/core/lib/b.php",
                "/srv/p/index.php",
                "/srv/p/sites/x.com/files/c.jpg",
                "/srv/p2/other.php"
            ]
        );
        assert_eq!(p[&b"/srv/p/core/lib/b.php".to_vec()], entry(2));
        let b = cat
            .load_cache(Path::new("/etc/nginx/vhost.d/x.com"))
            .unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[&b"/etc/nginx/vhost.d/x.com".to_vec()], entry(5));
        assert_eq!(cat.load_cache(Path::new("/top")).unwrap().len(), 1);
        assert!(cat.load_cache(Path::new("/nothing")).unwrap().is_empty());

        // A restore rewrites two rows; a new folder appears.
        cat.insert_cache(&[
            (b"/srv/p/core/a.php".to_vec(), entry(42)),
            (b"/srv/p/new/d.php".to_vec(), entry(43)),
        ])
        .unwrap();
        let p = cat.load_cache(Path::new("/srv/p/")).unwrap();
        assert_eq!(p[&b"/srv/p/core/a.php".to_vec()], entry(42));
        assert_eq!(p[&b"/srv/p/new/d.php".to_vec()], entry(43));
        let n: i64 = cat
            .conn
            .query_row("SELECT count(*) FROM files_cache", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 9);
        let dirs: i64 = cat
            .conn
            .query_row("SELECT count(*) FROM cache_dirs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(dirs, 8);

        cat.clear_cache().unwrap();
        assert!(cat.load_cache(Path::new("/srv")).unwrap().is_empty());
    }

    /// A version 1 catalogue is migrated: its files cache (absolute path keys) is dropped.
    #[test]
    fn version_1_catalogue_is_migrated() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA_V1).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute(
                "INSERT INTO files_cache VALUES (?1, 1, 2, 3, 4, 5, ?2)",
                params![b"/srv/p/a.php".to_vec(), vec![7u8; 32]],
            )
            .unwrap();
        }
        let cat = Catalog::open(&path).unwrap();
        let v: i64 = cat
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        assert!(cat.load_cache(Path::new("/srv/p")).unwrap().is_empty());
        cat.insert_cache(&[(b"/srv/p/a.php".to_vec(), entry(1))])
            .unwrap();
        assert_eq!(cat.load_cache(Path::new("/srv/p")).unwrap().len(), 1);
    }
}
