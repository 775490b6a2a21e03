//! The files cache: per file, its device, inode, size and times with its chunk list, so an
//! unchanged file is not read again. One row per folder in `cache_dirs`: the folder's path and
//! its files' entries in one blob (`folder.rs`), so loading a platform of 50,000 files reads a
//! row per folder, not one per file.

mod folder;

use super::Catalog;
use crate::error::Result;
use crate::hash::Hash;
pub use folder::{Cached, FilesCache};
use folder::{Chunks, Put, decode, encode, split_path};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;

/// What the files cache compares to vouch for a file: its device, inode, size and times. A
/// file whose key is the one its entry holds is taken as unchanged (any write changes its
/// ctime, and so does a change of mode or owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKey {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (ns).
    pub mtime_ns: i64,
    /// Change time (ns).
    pub ctime_ns: i64,
}

impl FileKey {
    /// The key of a file with metadata `md`.
    pub fn of(md: &std::fs::Metadata) -> FileKey {
        use std::os::unix::fs::MetadataExt;
        FileKey {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
        }
    }
}

/// A files-cache entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (ns).
    pub mtime_ns: i64,
    /// Change time (ns).
    pub ctime_ns: i64,
    /// The file's chunk list.
    pub chunks: Vec<Hash>,
}

impl CacheEntry {
    /// The entry of a file with key `key` holding `chunks`.
    pub fn new(key: FileKey, chunks: Vec<Hash>) -> CacheEntry {
        let FileKey {
            dev,
            ino,
            size,
            mtime_ns,
            ctime_ns,
        } = key;
        CacheEntry {
            dev,
            ino,
            size,
            mtime_ns,
            ctime_ns,
            chunks,
        }
    }

    /// What the entry vouches for.
    pub fn key(&self) -> FileKey {
        FileKey {
            dev: self.dev,
            ino: self.ino,
            size: self.size,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
        }
    }
}

/// Writes files-cache entries keyed by absolute path: each folder's blob gets them (a file it
/// held already is replaced; of one path given twice, the last), in one statement per folder.
pub(super) fn write_cache_rows(conn: &Connection, rows: &[(Vec<u8>, CacheEntry)]) -> Result<()> {
    // Per folder, its files in the order given: a capture gives them in path order, which is
    // name order inside each folder, so the stable sort below finds them sorted.
    let mut by_dir: HashMap<&[u8], Vec<Put<'_>>, foldhash::fast::RandomState> = HashMap::default();
    for (p, c) in rows {
        let (dir, name) = split_path(p);
        by_dir.entry(dir).or_default().push(Put {
            name,
            dev: c.dev,
            ino: c.ino,
            size: c.size,
            mtime_ns: c.mtime_ns,
            ctime_ns: c.ctime_ns,
            chunks: Chunks::Ids(&c.chunks),
        });
    }
    let mut dirs: Vec<_> = by_dir.into_iter().collect();
    dirs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut get = conn.prepare_cached("SELECT files FROM cache_dirs WHERE path = ?1")?;
    let mut put = conn.prepare_cached(
        "INSERT INTO cache_dirs (path, files) VALUES (?1, ?2)
         ON CONFLICT (path) DO UPDATE SET files = excluded.files",
    )?;
    for (dir, mut new) in dirs {
        new.sort_by(|a, b| a.name.cmp(b.name));
        // Of one name given twice, the last given (a stable sort keeps their order).
        new.reverse();
        new.dedup_by(|later, earlier| later.name == earlier.name);
        new.reverse();
        let old = get
            .query_row([dir], |r| Ok(bytes(r.get_ref(0)?)))
            .optional()?
            .flatten();
        // A blob that does not decode is replaced.
        let old = old.as_deref().and_then(decode).unwrap_or_default();
        put.execute(params![dir, encode(&merge(old, new))])?;
    }
    Ok(())
}

/// Two lists of files sorted by name into one; `new`'s entry wins for a name in both.
fn merge<'a>(old: Vec<Put<'a>>, new: Vec<Put<'a>>) -> Vec<Put<'a>> {
    if old.is_empty() {
        return new;
    }
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut o, mut n) = (old.into_iter().peekable(), new.into_iter().peekable());
    loop {
        let next = match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some(_), None) => o.next(),
            (None, Some(_)) => n.next(),
            (Some(a), Some(b)) => match a.name.cmp(b.name) {
                std::cmp::Ordering::Less => o.next(),
                std::cmp::Ordering::Greater => n.next(),
                std::cmp::Ordering::Equal => {
                    o.next();
                    n.next()
                }
            },
        };
        out.extend(next);
    }
    out
}

/// A version 9 files-cache row: folder id, file name, device, inode, size, mtime, ctime, and
/// its chunk ids' bytes.
type V9Row = (u32, Vec<u8>, [i64; 5], Vec<u8>);

/// Converts a version 9 files cache (a row per file, keyed by folder id + name) into one blob
/// per folder, in the migration's transaction. A row of another shape is left out: its file is
/// read again.
pub(super) fn migrate_rows(tx: &Connection) -> Result<()> {
    let mut st = tx.prepare(
        "SELECT path, dev, ino, size, mtime_ns, ctime_ns, chunks FROM files_cache ORDER BY path",
    )?;
    let mut set = tx.prepare("UPDATE cache_dirs SET files = ?2 WHERE id = ?1")?;
    let mut rows = st.query([])?;
    // The rows of one folder (keys sort by folder id, then name).
    let mut folder: Vec<V9Row> = Vec::new();
    while let Some(r) = rows.next()? {
        let Some(row) = v9_row(r) else { continue };
        if folder.first().is_some_and(|f| f.0 != row.0) {
            write_v9_folder(&mut set, &folder)?;
            folder.clear();
        }
        folder.push(row);
    }
    write_v9_folder(&mut set, &folder)
}

/// A version 9 row as written, or `None`.
fn v9_row(r: &rusqlite::Row<'_>) -> Option<V9Row> {
    let key = bytes(r.get_ref(0).ok()?)?;
    let chunks = bytes(r.get_ref(6).ok()?)?;
    let mut n = [0i64; 5];
    for (k, v) in n.iter_mut().enumerate() {
        *v = r.get_ref(k + 1).ok()?.as_i64().ok()?;
    }
    if key.len() < 4 || !chunks.len().is_multiple_of(32) {
        return None;
    }
    let id = u32::from_be_bytes(key[..4].try_into().expect("4 bytes"));
    Some((id, key[4..].to_vec(), n, chunks))
}

/// Writes one folder's version 9 rows (sorted by name) as its blob.
fn write_v9_folder(set: &mut rusqlite::Statement<'_>, files: &[V9Row]) -> Result<()> {
    let Some(id) = files.first().map(|f| f.0) else {
        return Ok(());
    };
    let puts: Vec<Put<'_>> = files
        .iter()
        .map(|(_, name, n, chunks)| Put {
            name,
            dev: n[0] as u64,
            ino: n[1] as u64,
            size: n[2] as u64,
            mtime_ns: n[3],
            ctime_ns: n[4],
            chunks: Chunks::Bytes(chunks),
        })
        .collect();
    set.execute(params![id, encode(&puts)])?;
    Ok(())
}

/// The bytes of a folder's `files` column: `None` when NULL or not bytes at all (a catalogue
/// edited by hand), which count as no entries.
fn bytes(v: rusqlite::types::ValueRef<'_>) -> Option<Vec<u8>> {
    match v {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => Some(b.to_vec()),
        _ => None,
    }
}

/// `root`'s bytes without trailing `/` (the file system's root: empty).
fn trimmed(root: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    let mut r = root.as_os_str().as_bytes();
    while let Some(rest) = r.strip_suffix(b"/") {
        r = rest;
    }
    r
}

impl Catalog {
    /// Loads the files-cache entries of every file under `root` (inclusive: `root` may be a
    /// file, a binding), looked up by absolute path; entries naming a chunk recorded as damaged
    /// are left out.
    pub fn load_cache(&self, root: &Path) -> Result<FilesCache> {
        let r = trimmed(root);
        let below_lo = [r, b"/"].concat();
        let below_hi = [r, b"0"].concat(); // `0` follows `/`
        let (parent, name) = split_path(r);
        let mut st = self.conn.prepare_cached(
            "SELECT path, files FROM cache_dirs WHERE files IS NOT NULL
             AND ((path >= ?1 AND path < ?2) OR path = ?3 OR path = ?4)",
        )?;
        let mut rows = st.query(params![below_lo, below_hi, r, parent])?;
        let mut cache = FilesCache::default();
        while let Some(row) = rows.next()? {
            let dir: Vec<u8> = row.get(0)?;
            let Some(blob) = bytes(row.get_ref(1)?) else {
                continue;
            };
            // Of root's own folder, only root itself (the file system's root has none).
            let only = (dir == parent && !r.is_empty()).then_some(name);
            cache.add_blob(dir, blob, only);
        }
        // An entry naming a damaged chunk is not trusted: the file is read again, so a live
        // file that still has the content stores that chunk anew.
        let damaged = self.damaged_chunks()?;
        if !damaged.is_empty() {
            cache.retain_chunks(|c| {
                !c.chunks_exact(32)
                    .any(|h| damaged.contains(&Hash(h.try_into().expect("32 bytes"))))
            });
        }
        Ok(cache)
    }

    /// Writes files-cache entries (after a restore put those files in place).
    pub fn insert_cache(&self, rows: &[(Vec<u8>, CacheEntry)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        write_cache_rows(&tx, rows)?;
        tx.commit()?;
        Ok(())
    }

    /// Empties the files cache.
    pub fn clear_cache(&self) -> Result<()> {
        self.conn.execute("DELETE FROM cache_dirs", [])?;
        Ok(())
    }

    /// gc: drops, in `tx`, every files-cache entry naming a chunk `live` refuses (else a later
    /// snapshot would reuse a chunk about to vanish); a folder's blob that does not decode goes
    /// whole. Returns the entries dropped.
    pub(super) fn drop_stale_cache(
        &self,
        tx: &Connection,
        live: impl Fn(&Hash) -> Result<bool>,
    ) -> Result<u64> {
        let mut changed: Vec<(i64, Option<Vec<u8>>)> = Vec::new();
        let mut dropped = 0u64;
        {
            let mut st = tx.prepare("SELECT id, files FROM cache_dirs WHERE files IS NOT NULL")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let blob = bytes(r.get_ref(1)?).unwrap_or_default();
                let Some(files) = decode(&blob) else {
                    changed.push((r.get(0)?, None));
                    continue;
                };
                let mut keep = Vec::with_capacity(files.len());
                for f in &files {
                    if f.chunks.all(&live)? {
                        keep.push(*f);
                    }
                }
                if keep.len() < files.len() {
                    dropped += (files.len() - keep.len()) as u64;
                    let blob = (!keep.is_empty()).then(|| encode(&keep));
                    changed.push((r.get(0)?, blob));
                }
            }
        }
        let mut set = tx.prepare("UPDATE cache_dirs SET files = ?2 WHERE id = ?1")?;
        for (id, blob) in changed {
            set.execute(params![id, blob])?;
        }
        Ok(dropped)
    }
}
