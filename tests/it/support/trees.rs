//! Directory trees: listings, and the per-entry records (`Rec`) compared against snapshots.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A comparable listing of a tree: path, type, mode, size, content hash or link target, mtime.
pub fn listing(root: &Path) -> Vec<String> {
    listing_filtered(root, |_| true)
}

pub fn listing_filtered(root: &Path, keep: impl Fn(&Path) -> bool) -> Vec<String> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| keep(e.path().strip_prefix(root).unwrap()))
    {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let what = if md.file_type().is_symlink() {
            format!("link {}", fs::read_link(e.path()).unwrap().display())
        } else if md.is_dir() {
            "dir".to_string()
        } else {
            format!(
                "file {} {}",
                md.len(),
                hex::encode(sha2::Sha256::digest(fs::read(e.path()).unwrap()))
            )
        };
        let mtime = if md.file_type().is_symlink() || md.is_dir() {
            0
        } else {
            md.mtime()
        };
        out.push(format!(
            "{rel} {what} mode={:o} uid={} gid={} mtime={mtime}",
            md.mode() & 0o7777,
            md.uid(),
            md.gid()
        ));
    }
    out
}

// ------------------------------------------------------------------------------------------
// Additions for the snapshot, bad-input and crash tests: exact tree records (nanosecond
// mtimes, owners, content hashes, byte paths), reading a snapshot back through the library,
// catalogue state for "nothing written" checks, and running the binary as another user.

/// One path of a tree, as the tests compare live trees with snapshots: everything a restore
/// must put back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rec {
    pub path: Vec<u8>,
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub size: u64,
    pub target: Option<Vec<u8>>,
    /// Hex SHA-256 of a file's content.
    pub sha: Option<String>,
}

impl Rec {
    pub fn path_str(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

pub fn sha_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn rec_of(abs: &Path, rel: Vec<u8>) -> Option<Rec> {
    use std::os::unix::fs::MetadataExt;
    let md = fs::symlink_metadata(abs).unwrap_or_else(|e| panic!("{}: {e}", abs.display()));
    let ft = md.file_type();
    let (kind, target, sha, size) = if ft.is_symlink() {
        let t = fs::read_link(abs).unwrap().as_os_str().as_bytes().to_vec();
        ("link", Some(t), None, 0)
    } else if ft.is_dir() {
        ("dir", None, None, 0)
    } else if ft.is_file() {
        let data = fs::read(abs).unwrap_or_else(|e| panic!("{}: {e}", abs.display()));
        ("file", None, Some(sha_hex(&data)), data.len() as u64)
    } else {
        return None; // fifos, sockets, devices are not site content
    };
    Some(Rec {
        path: rel,
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        size,
        target,
        sha,
    })
}

/// Every path under `root` (not the root itself) that `keep(rel, is_dir)` allows (a refused
/// folder is not entered), sorted by path bytes.
pub fn live_records(root: &Path, keep: impl Fn(&Path, bool) -> bool) -> Vec<Rec> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| keep(e.path().strip_prefix(root).unwrap(), e.file_type().is_dir()))
    {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        if let Some(r) = rec_of(e.path(), rel) {
            out.push(r);
        }
    }
    out.sort();
    out
}

/// Records of binding files, named by their absolute path without the leading `/`.
pub fn live_bindings(files: &[&Path]) -> Vec<Rec> {
    let mut out: Vec<Rec> = files
        .iter()
        .filter_map(|f| {
            let rel = f
                .as_os_str()
                .as_bytes()
                .strip_prefix(b"/")
                .unwrap()
                .to_vec();
            rec_of(f, rel)
        })
        .collect();
    out.sort();
    out
}

/// The platform part of a platform root, written independently of the library's filter:
/// everything except folders `sites/<name>` other than `sites/all` and `sites/default`.
pub fn platform_keep(rel: &Path, is_dir: bool) -> bool {
    let parts: Vec<&[u8]> = rel.iter().map(|c| c.as_bytes()).collect();
    if parts.len() >= 2 && parts[0] == b"sites" {
        let name = parts[1];
        if name == b"all" || name == b"default" {
            return true;
        }
        return parts.len() == 2 && !is_dir;
    }
    true
}

/// The live site folder minus the SQLite database file and its side files.
pub fn site_keep(db_name: &'static str) -> impl Fn(&Path, bool) -> bool {
    move |rel: &Path, _| {
        let s = rel.as_os_str().as_bytes();
        let db = db_name.as_bytes();
        !(s.starts_with(db) && matches!(&s[db.len()..], b"" | b"-wal" | b"-shm" | b"-journal"))
    }
}
