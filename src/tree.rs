//! Trees: the recorded form of a folder (a platform, a site directory) or a set of binding
//! files. Each entry keeps path, type, mode, owner, mtime, size, symlink target and the chunk
//! list of its content, so a restore can put it back exactly; empty folders and symlinks are
//! entries too. A tree is serialized with postcard, sorted by path, and stored as a blob. This
//! module also knows which paths belong to a platform (everything but `sites/<name>/` except
//! `sites/all` and `sites/default`) and compares two trees. It never reads file contents.

use crate::error::{Error, Result};
use crate::hash::Hash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The type of a tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
}

/// One path of a tree, with everything needed to put it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the tree's root, `/`-separated, as raw bytes.
    pub path: Vec<u8>,
    /// File, folder or symlink.
    pub kind: Kind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Content size in bytes (files only).
    pub size: u64,
    /// A symlink's target, as raw bytes.
    pub target: Option<Vec<u8>>,
    /// The content's chunks, in order (files only).
    pub chunks: Vec<Hash>,
}

impl Entry {
    /// The path as text (lossy for non-UTF-8 names).
    pub fn path_str(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// The path, relative to the tree's root.
    pub fn rel_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.path))
    }

    /// Same content and metadata that matters for drift: type, mode, size, content, target.
    /// Owner and mtime are ignored (copies and checkouts change them without changing code).
    pub fn same_content(&self, o: &Entry) -> bool {
        self.kind == o.kind
            && self.mode == o.mode
            && self.target == o.target
            && (self.kind != Kind::File || (self.size == o.size && self.chunks == o.chunks))
    }
}

/// The recorded form of a folder or a set of binding files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// The entries, sorted by path.
    pub entries: Vec<Entry>,
    /// The root folder's own owner, mode and mtime (None for binding-file trees).
    pub root: Option<RootMeta>,
}

/// One entry as postcard writes it: its fields in order, integers as varints (signed ones
/// zigzagged), byte strings and lists after their length, options after a 0/1 byte, the kind
/// as its variant's index, chunk ids as their 32 bytes.
fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    varint(out, e.path.len() as u64);
    out.extend_from_slice(&e.path);
    out.push(match e.kind {
        Kind::File => 0,
        Kind::Dir => 1,
        Kind::Symlink => 2,
    });
    varint(out, u64::from(e.mode));
    varint(out, u64::from(e.uid));
    varint(out, u64::from(e.gid));
    zigzag(out, e.mtime_ns);
    varint(out, e.size);
    match &e.target {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            varint(out, t.len() as u64);
            out.extend_from_slice(t);
        }
    }
    varint(out, e.chunks.len() as u64);
    for c in &e.chunks {
        out.extend_from_slice(&c.0);
    }
}

/// An unsigned integer as a LEB128 varint (postcard's form).
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A signed integer zigzagged into a varint (postcard's form).
fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Metadata of a tree's root folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootMeta {
    /// Permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

impl Tree {
    /// Sorts the entries by path.
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
    }

    /// The tree serialized (postcard), as stored in a blob. Written field by field into a
    /// buffer of the right size: byte for byte what `postcard::to_allocvec` gives (test
    /// `encode_is_postcard`), which goes through serde one byte at a time for paths and chunk
    /// ids and took a tenth of a repeat snapshot's instructions on a 52,000-file platform.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|e| e.path.len() + e.target.as_ref().map_or(0, Vec::len) + 32 * e.chunks.len())
            .sum();
        let mut out = Vec::with_capacity(size + 48 * self.entries.len() + 40);
        varint(&mut out, self.entries.len() as u64);
        for e in &self.entries {
            encode_entry(&mut out, e);
        }
        match &self.root {
            None => out.push(0),
            Some(r) => {
                out.push(1);
                varint(&mut out, u64::from(r.mode));
                varint(&mut out, u64::from(r.uid));
                varint(&mut out, u64::from(r.gid));
                zigzag(&mut out, r.mtime_ns);
            }
        }
        out
    }

    /// A tree from its stored bytes; bytes that do not decode are corrupt.
    pub fn decode(b: &[u8]) -> Result<Tree> {
        postcard::from_bytes(b).map_err(|e| Error::Corrupt(format!("tree does not decode: {e}")))
    }

    /// The number of files.
    pub fn files(&self) -> u64 {
        self.entries.iter().filter(|e| e.kind == Kind::File).count() as u64
    }

    /// The bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.size)
            .sum()
    }

    /// Checks every path is relative and stays inside the root (a tree from an import or a
    /// damaged catalogue must not write outside its folder).
    pub fn validate(&self) -> Result<()> {
        for e in &self.entries {
            let p = e.path_str();
            crate::fsutil::check_relative(&p, "path in snapshot")?;
        }
        Ok(())
    }
}

/// The parts of a snapshot stored as trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TreePart {
    /// The platform's code (without any site's folder).
    Platform,
    /// The site directory.
    Site,
    /// The binding files (vhost, drush alias, ...), by absolute path.
    Bindings,
    /// The site's extra paths (private files, config sync), relative to the platform.
    Extra,
}

impl TreePart {
    /// Every tree part, in the order they are captured, restored and exported.
    pub const ALL: [TreePart; 4] = [
        TreePart::Platform,
        TreePart::Site,
        TreePart::Bindings,
        TreePart::Extra,
    ];

    /// The part's name in messages and archive folders: `platform`, `site`, `bindings`,
    /// `extra`.
    pub fn as_str(self) -> &'static str {
        match self {
            TreePart::Platform => "platform",
            TreePart::Site => "site",
            TreePart::Bindings => "bindings",
            TreePart::Extra => "extra",
        }
    }
}

impl std::fmt::Display for TreePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Is `rel` (relative to a platform root) part of the platform's code? Everything except
/// `sites/<name>` folders other than `sites/all` and `sites/default`, and except symlinks
/// directly in `sites/` (Aegir's site alias links such as `sites/www.example.com -> example.com`).
/// `is_dir_or_link`: the path is a folder or a symlink.
pub fn in_platform(rel: &Path, is_dir_or_link: bool) -> bool {
    let mut it = rel.components();
    match (it.next(), it.next()) {
        (Some(a), Some(b)) if a.as_os_str() == "sites" => {
            let name = b.as_os_str();
            if name == "all" || name == "default" {
                return true;
            }
            // A plain file directly in sites/ (sites.php) belongs to the platform; a folder
            // (or anything under one) belongs to a site.
            let deeper = it.next().is_some();
            !(deeper || is_dir_or_link)
        }
        _ => true,
    }
}

/// Which paths of a platform are its code, on every platform shape: a classic Drupal platform
/// (web root = platform root) or a composer one whose web root is a subfolder (`web/`,
/// `docroot/`). Left out: every `<web root>/sites/<name>/` except `all` and `default` (a plain
/// file such as `sites.php` stays in), and the extra paths of the sites on the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformFilter {
    /// The web root, relative to the platform (empty: the platform root).
    pub web_root: PathBuf,
    /// Paths owned by sites outside their site folders, relative to the platform.
    pub extra: Vec<PathBuf>,
}

impl PlatformFilter {
    /// A filter for a platform whose web root is `web_root` (relative; `""` is the root).
    pub fn new(web_root: &str) -> Self {
        PlatformFilter {
            web_root: PathBuf::from(web_root),
            extra: Vec::new(),
        }
    }

    /// Also leaves out these paths (relative to the platform) and everything under them.
    pub fn with_extra<S: AsRef<str>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        for p in paths {
            let p = PathBuf::from(p.as_ref());
            if !p.as_os_str().is_empty() && !self.extra.contains(&p) {
                self.extra.push(p);
            }
        }
        self
    }

    /// Is `rel` (relative to the platform root) part of the platform's code?
    /// `is_dir_or_link`: the path is a folder or a symlink.
    pub fn keeps(&self, rel: &Path, is_dir_or_link: bool) -> bool {
        if self.extra.iter().any(|x| rel.starts_with(x)) {
            return false;
        }
        match rel.strip_prefix(&self.web_root) {
            Ok(inner) => in_platform(inner, is_dir_or_link),
            Err(_) => true,
        }
    }

    /// `t` without the paths this filter leaves out (a snapshot taken before the platform's
    /// web root or a site's extra paths were known may hold them).
    pub fn apply(&self, t: &Tree) -> Tree {
        Tree {
            root: t.root,
            entries: t
                .entries
                .iter()
                .filter(|e| self.keeps(e.rel_path(), e.kind != Kind::File))
                .cloned()
                .collect(),
        }
    }
}

/// Difference between two trees.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TreeDiff {
    /// Paths only in the newer tree.
    pub added: Vec<String>,
    /// Paths only in the older tree.
    pub removed: Vec<String>,
    /// Paths in both whose content, type, mode or target differ.
    pub changed: Vec<String>,
}

impl TreeDiff {
    /// Nothing added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// The changed paths, `+`/`-`/`~` per line, at most `limit` of each.
    pub fn summary(&self, limit: usize) -> String {
        let mut lines = Vec::new();
        for (tag, list) in [
            ("+", &self.added),
            ("-", &self.removed),
            ("~", &self.changed),
        ] {
            for p in list.iter().take(limit) {
                lines.push(format!("  {tag} {p}"));
            }
            if list.len() > limit {
                lines.push(format!("  {tag} ... and {} more", list.len() - limit));
            }
        }
        lines.join("\n")
    }
}

/// What changed from `old` to `new` (content, type, mode, target; not mtime or owner).
pub fn diff(old: &Tree, new: &Tree) -> TreeDiff {
    let o: BTreeMap<&[u8], &Entry> = old.entries.iter().map(|e| (&e.path[..], e)).collect();
    let n: BTreeMap<&[u8], &Entry> = new.entries.iter().map(|e| (&e.path[..], e)).collect();
    let mut d = TreeDiff::default();
    for (p, e) in &n {
        match o.get(p) {
            None => d.added.push(e.path_str()),
            Some(oe) if !oe.same_content(e) => d.changed.push(e.path_str()),
            _ => {}
        }
    }
    for (p, e) in &o {
        if !n.contains_key(p) {
            d.removed.push(e.path_str());
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written encoding is postcard's, byte for byte: every kind, options both ways,
    /// integers at the varint limits and negative times, empty and long paths and lists.
    #[test]
    fn encode_is_postcard() {
        let mut entries = Vec::new();
        let ints = [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ];
        let times = [
            0i64,
            -1,
            1,
            63,
            -64,
            64,
            i64::MIN,
            i64::MAX,
            1_700_000_000_123_456_789,
        ];
        for (i, (&n, &t)) in ints.iter().zip(times.iter().cycle()).enumerate() {
            let kind = [Kind::File, Kind::Dir, Kind::Symlink][i % 3];
            entries.push(Entry {
                path: vec![b'a' + (i as u8); i * 40],
                kind,
                mode: n as u32,
                uid: (n >> 3) as u32,
                gid: u32::MAX - n as u32,
                mtime_ns: t,
                size: n,
                target: (kind == Kind::Symlink).then(|| vec![0xff; i * 50]),
                chunks: (0..i * 3).map(|k| Hash([k as u8; 32])).collect(),
            });
        }
        let root = RootMeta {
            mode: 0o2775,
            uid: 1234,
            gid: 5678,
            mtime_ns: -5,
        };
        for t in [
            Tree::default(),
            Tree {
                entries: entries.clone(),
                root: Some(root),
            },
            Tree {
                entries,
                root: None,
            },
        ] {
            assert_eq!(t.encode(), postcard::to_allocvec(&t).unwrap());
            assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
        }
    }

    #[test]
    fn platform_filter() {
        assert!(in_platform(Path::new("index.php"), false));
        assert!(in_platform(Path::new("sites"), true));
        assert!(in_platform(Path::new("sites/sites.php"), false));
        assert!(in_platform(Path::new("sites/all"), true));
        assert!(in_platform(Path::new("sites/all/modules/x.module"), false));
        assert!(in_platform(
            Path::new("sites/default/default.settings.php"),
            false
        ));
        assert!(!in_platform(Path::new("sites/example.com"), true));
        assert!(!in_platform(
            Path::new("sites/example.com/settings.php"),
            false
        ));
        assert!(in_platform(Path::new("modules/sites/x"), false));
    }

    #[test]
    fn composer_platform_filter() {
        let f = PlatformFilter::new("web").with_extra(["private/a.test"]);
        assert!(f.keeps(Path::new("composer.json"), false));
        assert!(f.keeps(Path::new("vendor/autoload.php"), false));
        assert!(f.keeps(Path::new("web"), true));
        assert!(f.keeps(Path::new("web/sites"), true));
        assert!(f.keeps(Path::new("web/sites/sites.php"), false));
        assert!(f.keeps(Path::new("web/sites/all/modules/x"), false));
        assert!(f.keeps(Path::new("web/sites/default/settings.php"), false));
        assert!(!f.keeps(Path::new("web/sites/b.test"), true));
        assert!(!f.keeps(Path::new("web/sites/b.test/settings.php"), false));
        assert!(f.keeps(Path::new("private"), true));
        assert!(!f.keeps(Path::new("private/a.test"), true));
        assert!(!f.keeps(Path::new("private/a.test/x.txt"), false));
        assert!(f.keeps(Path::new("private/b.test"), true));
        // Outside the web root, a folder named sites is code.
        assert!(f.keeps(Path::new("sites/x"), true));
        let classic = PlatformFilter::new("");
        assert!(!classic.keeps(Path::new("sites/x"), true));
        assert!(classic.keeps(Path::new("sites/all"), true));
    }

    #[test]
    fn tree_roundtrip_and_diff() {
        let e = |p: &str, c: u8| Entry {
            path: p.as_bytes().to_vec(),
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 1,
            size: 1,
            target: None,
            chunks: vec![Hash([c; 32])],
        };
        let a = Tree {
            entries: vec![e("a", 1), e("b", 2)],
            root: None,
        };
        let b = Tree {
            entries: vec![e("b", 3), e("c", 4)],
            root: Some(RootMeta {
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime_ns: 5,
            }),
        };
        assert_eq!(Tree::decode(&a.encode()).unwrap(), a);
        let d = diff(&a, &b);
        assert_eq!(d.added, vec!["c"]);
        assert_eq!(d.removed, vec!["a"]);
        assert_eq!(d.changed, vec!["b"]);
    }
}
