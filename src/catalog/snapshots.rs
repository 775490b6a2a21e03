//! Snapshots and the blobs they name: committing a snapshot atomically, listing, resolving
//! ids, pinning and deleting.

use super::cache::{CacheEntry, write_cache_rows};
use super::kinds::SnapshotKind;
use super::{Catalog, blob_to_hashes, hashes_to_blob, time_str};
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::ChunkList;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use std::path::PathBuf;

/// One snapshot row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotRecord {
    /// The snapshot id (hex).
    pub id: String,
    /// The site's URI.
    pub site: String,
    /// How it was taken (manual, scheduled, pre-restore, ...).
    pub kind: SnapshotKind,
    /// A label given by the user.
    pub label: Option<String>,
    /// Kept by every retention policy.
    pub pinned: bool,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// The platform's path at capture.
    pub platform_path: PathBuf,
    /// The platform tree blob.
    #[serde(serialize_with = "ser_opt_hash")]
    pub platform_tree: Option<Hash>,
    /// The site directory, relative to the platform.
    pub site_dir: String,
    /// The site directory tree blob.
    #[serde(serialize_with = "ser_opt_hash")]
    pub site_tree: Option<Hash>,
    /// The binding files tree blob.
    #[serde(serialize_with = "ser_opt_hash")]
    pub bindings_tree: Option<Hash>,
    /// The database engine.
    pub db_kind: Option<String>,
    /// The database URL (password redacted).
    pub db_url: Option<String>,
    /// The database dump blob.
    #[serde(serialize_with = "ser_opt_hash")]
    pub db_dump: Option<Hash>,
    /// Files captured.
    pub files: u64,
    /// Bytes of the captured files.
    pub bytes: u64,
    /// Bytes read (files not in the files cache).
    pub bytes_read: u64,
    /// Bytes of the database dump.
    pub db_bytes: u64,
    /// Compressed bytes of new chunks.
    pub bytes_added: u64,
    /// How long the capture took.
    pub duration_ms: u64,
    /// A note (e.g. why it was taken).
    pub note: Option<String>,
    /// The platform's web root at capture, relative to the platform (None: taken before
    /// sitesnap recorded it).
    pub web_root: Option<String>,
    /// The site's extra paths at capture, relative to the platform.
    pub extra_paths: Vec<String>,
    /// The extra paths tree blob (paths relative to the platform).
    #[serde(serialize_with = "ser_opt_hash")]
    pub extra_tree: Option<Hash>,
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

impl Catalog {
    /// A blob's chunk list as stored (direct, or its list chunks: see
    /// [`ChunkList::expand`]) and its size.
    pub fn blob(&self, id: &Hash) -> Result<(ChunkList, u64)> {
        type Row = (Vec<u8>, i64, Option<i64>, Option<i64>);
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT chunks, size, count, levels FROM blobs WHERE id = ?1",
                [&id.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let (chunks, size, count, levels) = row.ok_or_else(|| {
            Error::Corrupt(format!("blob {} is missing from the catalogue", id.short()))
        })?;
        let ids = blob_to_hashes(&chunks)?;
        let list = match count {
            None => ChunkList::Direct(ids),
            Some(n) => ChunkList::Indirect {
                count: n as u64,
                levels: levels.unwrap_or(1).clamp(0, u32::MAX as i64) as u32,
                lists: ids,
            },
        };
        Ok((list, size as u64))
    }

    /// Inserts a snapshot together with the blobs it names and the files-cache rows its capture
    /// produced, in one transaction: the snapshot becomes visible atomically.
    pub fn commit_snapshot(
        &self,
        s: &SnapshotRecord,
        blobs: &[BlobRow],
        cache: &[(Vec<u8>, CacheEntry)],
    ) -> Result<()> {
        self.commit_snapshots(&[(s, blobs, cache)])
            .map_err(|f| f.error)
    }

    /// Inserts several snapshots (each with its blobs and files-cache rows) in one
    /// transaction: all become visible together, or none. A failure says whether the
    /// catalogue surely holds none of them.
    pub fn commit_snapshots(&self, items: &[SnapshotCommit<'_>]) -> CommitResult {
        let before = |error: Error| CommitFailed {
            error,
            rolled_back: true,
        };
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| before(e.into()))?;
        for (s, blobs, cache) in items {
            // On an error `tx` is dropped, which rolls it back.
            insert_snapshot(&tx, s, blobs, cache).map_err(before)?;
        }
        tx.commit().map_err(|e| CommitFailed {
            error: e.into(),
            rolled_back: false,
        })
    }
}

/// A commit of snapshot rows that failed. `rolled_back`: the error came before `COMMIT`, so
/// the transaction was rolled back and the catalogue holds none of it. Otherwise `COMMIT`
/// itself failed, and SQLite may still find the transaction committed (a write that reached
/// the disk before an I/O error).
#[derive(Debug)]
pub struct CommitFailed {
    pub error: Error,
    pub rolled_back: bool,
}

/// The outcome of [`Catalog::commit_snapshots`].
pub type CommitResult = std::result::Result<(), CommitFailed>;

/// A blob as a snapshot's commit names it: its id, its chunk list as stored, its size.
pub type BlobRow = (Hash, ChunkList, u64);

/// One snapshot of a commit: its record, the blobs it names, its files-cache rows.
pub type SnapshotCommit<'a> = (
    &'a SnapshotRecord,
    &'a [BlobRow],
    &'a [(Vec<u8>, CacheEntry)],
);

/// Inserts one snapshot's blobs, files-cache rows and row inside `tx`.
fn insert_snapshot(
    tx: &rusqlite::Transaction<'_>,
    s: &SnapshotRecord,
    blobs: &[BlobRow],
    cache: &[(Vec<u8>, CacheEntry)],
) -> Result<()> {
    {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO blobs (id, chunks, size, count, levels) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (id, list, size) in blobs {
            let count = match list {
                ChunkList::Direct(_) => None,
                ChunkList::Indirect { count, .. } => Some(*count as i64),
            };
            // One level stays NULL, as schema 8 wrote it.
            let levels = Some(list.levels() as i64).filter(|l| *l > 1);
            st.execute(params![
                &id.0[..],
                hashes_to_blob(list.stored()),
                *size as i64,
                count,
                levels
            ])?;
        }
    }
    write_cache_rows(tx, cache)?;
    crate::fsutil::failpoint_or_error("cache-written")?;
    let oh = |h: &Option<Hash>| h.map(|h| h.0.to_vec());
    tx.execute(
            "INSERT INTO snapshots (id, site, kind, label, pinned, time, platform_path, platform_tree,
                site_dir, site_tree, bindings_tree, db_kind, db_url, db_dump, files, bytes, bytes_read,
                db_bytes, bytes_added, duration_ms, note, web_root, extra_paths, extra_tree)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
                ?22, ?23, ?24)",
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
                s.web_root,
                serde_json::to_string(&s.extra_paths).expect("paths serialize"),
                oh(&s.extra_tree),
            ],
        )?;
    Ok(())
}

impl Catalog {
    const SNAP_COLS: &'static str =
        "id, site, kind, label, pinned, time, platform_path, platform_tree,
        site_dir, site_tree, bindings_tree, db_kind, db_url, db_dump, files, bytes, bytes_read,
        db_bytes, bytes_added, duration_ms, note, web_root, extra_paths, extra_tree";

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
            web_root: r.get(21)?,
            extra_paths: serde_json::from_str(&r.get::<_, String>(22)?).unwrap_or_default(),
            extra_tree: oh(r.get(23)?),
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

    /// Is `id` already a snapshot's id?
    pub fn snapshot_id_taken(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM snapshots WHERE id = ?1")?
            .exists([id])?)
    }

    /// Deletes snapshot rows, in one transaction (their data stays until gc).
    pub fn delete_snapshots(&self, ids: &[String]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for id in ids {
            tx.execute("DELETE FROM snapshots WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Pins or unpins a snapshot.
    pub fn set_pinned(&self, id: &str, pinned: bool) -> Result<()> {
        self.conn.execute(
            "UPDATE snapshots SET pinned = ?2 WHERE id = ?1",
            params![id, pinned as i64],
        )?;
        Ok(())
    }
}
