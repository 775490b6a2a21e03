//! What one run of `snapshot --all` shares between its sites, and what a capture may skip
//! because it provably has not changed since the last one.
//!
//! - **A platform is walked and read once per run.** Every site on a platform stores the same
//!   platform tree (the platform filter leaves out every site's folder), so the first site's
//!   capture records the stored tree in a [`RunShare`] and the platform's other sites reuse it.
//!   Their snapshots show the platform as it was when the run reached its first site.
//! - **An unchanged SQLite database is not copied again.** The copy of a SQLite database is kept
//!   in the files cache under a key derived from the database's path, with the database file's
//!   device, inode, size, mtime and ctime taken before the copy. A later capture reuses that copy
//!   when all five still match and no write can be pending outside the main file: no
//!   `-journal` file (a rollback in progress, or a hot journal) and no `-wal` file holding frames
//!   (a WAL-mode database's recent commits live there until a checkpoint). Any commit changes the
//!   main file's mtime and ctime (rollback mode) or leaves frames in the WAL (WAL mode), so a
//!   match means no commit happened. MariaDB and PostgreSQL dumps are always taken: neither
//!   server offers a cheap, reliable "nothing committed since" test that covers every table
//!   engine (see docs/performance.md).

use super::BlobRow;
use crate::catalog::{CacheEntry, Catalog, FileKey};
use crate::error::Result;
use crate::hash::Hash;
use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A platform tree stored by an earlier site of the same run.
#[derive(Debug, Clone)]
pub(super) struct SharedPlatform {
    /// The stored tree blob.
    pub(super) tree: BlobRow,
    /// Files in the tree.
    pub(super) files: u64,
    /// Bytes of those files.
    pub(super) bytes: u64,
}

/// What the sites of one run share: stored platform trees, keyed by everything their walk
/// depends on (see [`platform_key`]).
#[derive(Debug, Default)]
pub struct RunShare {
    platforms: Mutex<HashMap<Vec<u8>, SharedPlatform>>,
}

impl RunShare {
    /// A share for one run.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<SharedPlatform> {
        self.platforms.lock().ok()?.get(key).cloned()
    }

    /// Forgets every shared platform (after a failed batch, whose trees may not be durable).
    pub fn forget(&self) {
        if let Ok(mut m) = self.platforms.lock() {
            m.clear();
        }
    }

    pub(super) fn put(&self, key: Vec<u8>, p: SharedPlatform) {
        if let Ok(mut m) = self.platforms.lock() {
            m.insert(key, p);
        }
    }
}

/// The key of a platform walk: the platform, its web root, the paths the filter leaves out
/// and the skipped paths the filter would otherwise keep. Two captures with the same key walk
/// the same paths.
pub(super) fn platform_key(
    platform: &Path,
    web_root: &Path,
    extra: &[PathBuf],
    skip_kept: &[&PathBuf],
) -> Vec<u8> {
    let mut k = Vec::new();
    let mut part = |b: &[u8]| {
        k.extend_from_slice(&(b.len() as u64).to_le_bytes());
        k.extend_from_slice(b);
    };
    part(platform.as_os_str().as_bytes());
    part(web_root.as_os_str().as_bytes());
    let mut extra: Vec<&PathBuf> = extra.iter().collect();
    extra.sort();
    for x in extra {
        part(x.as_os_str().as_bytes());
    }
    part(b"|");
    let mut skip = skip_kept.to_vec();
    skip.sort();
    for s in skip {
        part(s.as_os_str().as_bytes());
    }
    k
}

/// The files-cache key under which the copy of the SQLite database at `db` is kept, for copies
/// made with `structure_tables` emptied. The NUL byte keeps it apart from every real path.
pub(super) fn sqlite_copy_key(db: &Path, structure_tables: &str) -> Vec<u8> {
    let mut k = db.as_os_str().as_bytes().to_vec();
    k.extend_from_slice(b"\0sitesnap-sqlite-copy-v1-");
    k.extend_from_slice(&Hash::of(structure_tables.as_bytes()).to_hex().as_bytes()[..16]);
    k
}

/// The database file's identity and times, or `None` when a commit may be pending outside the
/// main file (a `-journal`, a `-wal` with frames) or the file cannot be looked at: then the
/// database is copied.
pub(super) fn sqlite_fingerprint(db: &Path) -> Option<CacheEntry> {
    for suffix in ["-journal", "-wal"] {
        let mut side = db.as_os_str().to_os_string().into_vec();
        side.extend_from_slice(suffix.as_bytes());
        match fs::symlink_metadata(std::ffi::OsString::from_vec(side)) {
            Ok(md) if md.len() > 0 || !md.is_file() => return None,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    let md = fs::symlink_metadata(db).ok()?;
    if !md.is_file() {
        return None;
    }
    Some(CacheEntry::new(FileKey::of(&md), Vec::new()))
}

/// The chunks and size of the kept copy of the database, if `now` (its fingerprint) matches
/// the one the copy was made under and the copy's blob is still known.
pub(super) fn reusable_copy(
    cat: &Catalog,
    key: &[u8],
    now: &CacheEntry,
) -> Result<Option<(Vec<Hash>, u64)>> {
    let path = Path::new(std::ffi::OsStr::from_bytes(key));
    let rows = cat.load_cache(path)?;
    let Some(c) = rows.get(key) else {
        return Ok(None);
    };
    if c.key != now.key() || c.has_no_chunks() {
        return Ok(None);
    }
    let chunks = c.chunks();
    // The copy's size is its blob's; a blob the catalogue no longer knows means copying again.
    Ok(cat
        .blob(&Hash::of_list(&chunks))
        .ok()
        .map(|(_, size)| (chunks, size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `-wal` with frames or any `-journal` means "copy it"; an empty `-wal` does not.
    #[test]
    fn pending_writes_outside_the_main_file_prevent_reuse() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("site.sqlite");
        fs::write(&db, b"x").unwrap();
        assert!(sqlite_fingerprint(&db).is_some());
        fs::write(d.path().join("site.sqlite-wal"), b"").unwrap();
        assert!(sqlite_fingerprint(&db).is_some());
        fs::write(d.path().join("site.sqlite-wal"), b"frames").unwrap();
        assert!(sqlite_fingerprint(&db).is_none());
        fs::remove_file(d.path().join("site.sqlite-wal")).unwrap();
        fs::write(d.path().join("site.sqlite-journal"), b"").unwrap();
        assert!(sqlite_fingerprint(&db).is_some());
        fs::write(d.path().join("site.sqlite-journal"), b"j").unwrap();
        assert!(sqlite_fingerprint(&db).is_none());
        assert!(sqlite_fingerprint(&d.path().join("missing")).is_none());
    }

    /// The key depends on the structure-only tables, and never equals a real path.
    #[test]
    fn copy_keys_differ_by_structure_tables() {
        let a = sqlite_copy_key(Path::new("/p/s.sqlite"), "cache");
        let b = sqlite_copy_key(Path::new("/p/s.sqlite"), "");
        assert_ne!(a, b);
        assert!(a.contains(&0));
    }
}
