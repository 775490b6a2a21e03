//! The files cache: per file, its device, inode, size and times with its chunk list, so an
//! unchanged file is not read again. Rows are keyed by folder id + file name.

use super::{Catalog, blob_to_hashes, hashes_to_blob};
use crate::error::{Error, Result};
use crate::hash::Hash;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;

/// A files-cache row.
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

/// The files-cache rows of a tree, keyed by absolute path.
pub type CacheMap = HashMap<Vec<u8>, CacheEntry, foldhash::fast::RandomState>;

/// An absolute path split at its last `/`: (folder, name).
fn split_path(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (&[], p),
    }
}

/// A files-cache column that is not the blob it must be.
fn cache_type(e: rusqlite::types::FromSqlError) -> Error {
    Error::Corrupt(format!("files cache: {e}"))
}

/// Writes files-cache rows keyed by absolute path: each row's key is its folder's id in
/// `cache_dirs` (4 bytes, big-endian; the folder is added if new) followed by the file name.
pub(super) fn write_cache_rows(conn: &Connection, rows: &[(Vec<u8>, CacheEntry)]) -> Result<()> {
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

impl Catalog {
    /// Loads the files-cache rows for every path under `root` (inclusive), keyed by absolute
    /// path; rows naming a chunk recorded as damaged are left out.
    pub fn load_cache(&self, root: &Path) -> Result<CacheMap> {
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
        let mut map = CacheMap::default();
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
                // Borrowed from the row: no copy of the key or the chunk list's bytes.
                let key = r.get_ref(0)?.as_blob().map_err(cache_type)?;
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
                let chunks = r.get_ref(6)?.as_blob().map_err(cache_type)?;
                map.insert(
                    path,
                    CacheEntry {
                        dev: r.get::<_, i64>(1)? as u64,
                        ino: r.get::<_, i64>(2)? as u64,
                        size: r.get::<_, i64>(3)? as u64,
                        mtime_ns: r.get(4)?,
                        ctime_ns: r.get(5)?,
                        chunks: blob_to_hashes(chunks)?,
                    },
                );
            }
            i = j;
        }
        // A row naming a damaged chunk is not trusted: the file is read again, so a live file
        // that still has the content stores that chunk anew.
        let damaged = self.damaged_chunks()?;
        if !damaged.is_empty() {
            map.retain(|_, e| !e.chunks.iter().any(|c| damaged.contains(c)));
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

    /// Empties the files cache.
    pub fn clear_cache(&self) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM files_cache", [])?;
        tx.execute("DELETE FROM cache_dirs", [])?;
        tx.commit()?;
        Ok(())
    }
}
