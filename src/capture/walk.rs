//! Walking live folders: the platform (minus other sites' folders), the site directory and the
//! binding files, into sorted lists of items with their metadata. It never reads file contents.
//! An item keeps its path relative to its base folder only; its absolute path is made when
//! needed (a files-cache lookup, a read), so a walk allocates one path per entry, not two.

use super::order::{Folder, in_path_order};
use super::stat::{Failed, Listed, Stat, each_entry, lstat_at, open_folder};
use crate::catalog::FileKey;
use crate::db::Database;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::Root;
#[cfg(test)]
use crate::tree;
use crate::tree::{Entry, Kind, PlatformFilter, RootMeta, Tree};
use rustix::fd::OwnedFd;
use std::ffi::{CStr, OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The folder a walked item's path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    /// The platform (its code).
    Platform,
    /// The platform too, for the files of a site's extra path: the index of the path's
    /// [`ExtraRoot`] in [`Bases::extra`].
    Extra(u32),
    /// The site directory.
    Site,
    /// The file system's root (binding files: their absolute path without its leading `/`).
    FsRoot,
}

/// The folders the bases of one capture (or scan) stand for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bases<'a> {
    pub(super) platform: &'a Path,
    pub(super) site: &'a Path,
    /// The walk roots of a site's extra paths ([`Base::Extra`] items).
    pub(super) extra: &'a [ExtraRoot],
}

/// The folder an extra path was walked from: the platform joined with the extra path (its
/// folder, when the extra path is a file), and where that resolved to at the walk. An extra
/// path may be reached through symlinked folders inside the platform, so its files cannot be
/// reached from the platform without following symlinks; they are reached from this folder,
/// opened where it was resolved at the walk (never through a symlink swapped in since).
#[derive(Debug)]
pub(super) struct ExtraRoot {
    named: PathBuf,
    real: PathBuf,
}

impl Bases<'_> {
    /// Bases for a walk of a single folder of the kind `base` (a scan).
    pub(super) fn only(dir: &Path) -> Bases<'_> {
        Bases {
            platform: dir,
            site: dir,
            extra: &[],
        }
    }

    /// Writes the absolute path of `it` into `buf` (cleared first): its base folder joined
    /// with its relative path, byte for byte what `Path::join` gives.
    pub(super) fn abs_into(&self, it: &Item, buf: &mut Vec<u8>) {
        let root: &[u8] = match it.base {
            Base::Platform | Base::Extra(_) => self.platform.as_os_str().as_bytes(),
            Base::Site => self.site.as_os_str().as_bytes(),
            Base::FsRoot => b"/",
        };
        buf.clear();
        buf.reserve(root.len() + 1 + it.entry.path.len());
        buf.extend_from_slice(root);
        if !root.is_empty() && !root.ends_with(b"/") {
            buf.push(b'/');
        }
        buf.extend_from_slice(&it.entry.path);
    }

    /// The absolute path of `it`.
    pub(super) fn abs(&self, it: &Item) -> PathBuf {
        let mut b = Vec::new();
        self.abs_into(it, &mut b);
        PathBuf::from(OsString::from_vec(b))
    }
}

impl<'a> Bases<'a> {
    /// The folder `it` was walked from, below which nothing the walk entered was a symlink:
    /// the site directory, the platform, or the item's extra path (as resolved at the walk).
    /// `None` for binding files (their path from `/` may pass through symlinks).
    pub(super) fn root_of(self, it: &Item) -> Option<Root<'a>> {
        match it.base {
            Base::Site => Some(Root::named(self.site)),
            Base::Platform => Some(Root::named(self.platform)),
            Base::Extra(i) => self.extra.get(i as usize).map(|r| Root {
                named: &r.named,
                pinned: Some(&r.real),
            }),
            Base::FsRoot => None,
        }
    }
}

/// One walked path.
pub(super) struct Item {
    /// The folder `entry.path` is relative to.
    pub(super) base: Base,
    pub(super) entry: Entry,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) ctime_ns: i64,
    /// Was a regular file at the walk but is not one any more (vanished, or replaced by a
    /// symlink, folder or FIFO) when it came to be read: left out of the tree.
    pub(super) gone: bool,
    /// Was read whole while it did not change: it gets a new files-cache row.
    pub(super) cacheable: bool,
}

impl Item {
    /// What the files cache compares for this item's file.
    pub(super) fn key(&self) -> FileKey {
        FileKey {
            dev: self.dev,
            ino: self.ino,
            size: self.entry.size,
            mtime_ns: self.entry.mtime_ns,
            ctime_ns: self.ctime_ns,
        }
    }

    /// A regular file item of `size` bytes at `rel` under `base`, for unit tests.
    #[cfg(test)]
    pub(super) fn test_file(base: Base, rel: &[u8], size: u64) -> Item {
        Item {
            base,
            entry: Entry {
                path: rel.to_vec(),
                kind: Kind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime_ns: 0,
                size,
                target: None,
                chunks: Vec::new(),
            },
            dev: 0,
            ino: 0,
            ctime_ns: 0,
            gone: false,
            cacheable: false,
        }
    }
}

/// The item for a path with status `st`; `abs` makes its absolute path (only a symlink's
/// target needs it). None for what is not site content (sockets, FIFOs, devices).
fn item_from(
    base: Base,
    rel: Vec<u8>,
    st: &Stat,
    abs: impl FnOnce() -> PathBuf,
) -> Result<Option<Item>> {
    let Some(kind) = st.kind else {
        return Ok(None);
    };
    let target = if kind == Kind::Symlink {
        let abs = abs();
        Some(
            fs::read_link(&abs)
                .at(&abs)?
                .as_os_str()
                .as_bytes()
                .to_vec(),
        )
    } else {
        None
    };
    Ok(Some(Item {
        base,
        entry: Entry {
            path: rel,
            kind,
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
            mtime_ns: st.mtime_ns,
            size: if kind == Kind::File { st.size } else { 0 },
            target,
            chunks: Vec::new(),
        },
        dev: st.dev,
        ino: st.ino,
        ctime_ns: st.ctime_ns,
        gone: false,
        cacheable: false,
    }))
}

/// Is this error about an entry that vanished after its folder was listed? (A live site
/// creates and deletes files all the time; that is not a reason to fail a snapshot.)
fn vanished(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// What a walk keeps: `keep(folder, name, rel, is_dir_or_link)` for the entry `name` of the
/// open `folder`, `rel` being its path relative to the walk's root.
type Keep<'a> = dyn Fn(&Path, &OsStr, &[u8], bool) -> bool + Sync + 'a;

/// Walks `root` (not following symlinks), keeping what `keep` allows; the items are relative
/// to `root`, which `base` stands for, and sorted by that path. Folders are read on all cores;
/// each entry is `lstat`ed relative to its open folder (no full path resolution per file).
fn walk(root: &Path, base: Base, keep: &Keep<'_>) -> Result<Vec<Item>> {
    let workers = crate::cores().clamp(1, 8);
    let (tx, rx) = crossbeam_channel::unbounded::<(PathBuf, Vec<u8>)>();
    // Folders queued or being read; the walk is over when it drops to zero.
    let pending = AtomicUsize::new(1);
    let failed = AtomicBool::new(false);
    tx.send((root.to_path_buf(), Vec::new())).expect("queue");
    let results: Vec<Result<Vec<Folder>>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|_| {
                let (tx, rx) = (tx.clone(), rx.clone());
                let (pending, failed) = (&pending, &failed);
                s.spawn(move || -> Result<Vec<Folder>> {
                    let mut out = Vec::new();
                    while let Ok((dir, rel)) = rx.recv() {
                        if dir.as_os_str().is_empty() {
                            break; // the walk is over
                        }
                        let res = if failed.load(Ordering::Relaxed) {
                            Ok(())
                        } else {
                            read_folder(&dir, &rel, base, keep, &mut out, &|d, r| {
                                pending.fetch_add(1, Ordering::SeqCst);
                                tx.send((d, r)).expect("queue");
                            })
                        };
                        if res.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                            // The last folder is done: wake everyone up to stop.
                            for _ in 0..workers {
                                let _ = tx.send((PathBuf::new(), Vec::new()));
                            }
                        }
                        res?;
                    }
                    Ok(out)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("walk worker panicked"))
            .collect()
    });
    let mut folders = Vec::new();
    for r in results {
        folders.append(&mut r?);
    }
    Ok(in_path_order(folders))
}

/// Reads one folder of a walk (`rel` empty for the root) into `out`, its entries sorted by
/// name (the walk's threads sort the folders they read); its kept subfolders go to `descend`.
/// Entries that vanish meanwhile are left out.
fn read_folder(
    dir: &Path,
    rel: &[u8],
    base: Base,
    keep: &Keep<'_>,
    out: &mut Vec<Folder>,
    descend: &dyn Fn(PathBuf, Vec<u8>),
) -> Result<()> {
    let mut items = Vec::new();
    let res = read_entries(dir, rel, base, keep, &mut items, descend);
    // What was read before a failure or the folder vanishing stays: the subfolders already
    // given to `descend` are reached through their entries here.
    out.push(Folder::sorted(rel.to_vec(), items));
    res
}

/// The entries of one folder, for [`read_folder`]: listed and `lstat`ed relative to the open
/// folder, with no allocation per entry but its path's.
fn read_entries(
    dir: &Path,
    rel: &[u8],
    base: Base,
    keep: &Keep<'_>,
    out: &mut Vec<Item>,
    descend: &dyn Fn(PathBuf, Vec<u8>),
) -> Result<()> {
    let is_root = rel.is_empty();
    let fd = match open_folder(dir) {
        Err(e) if !is_root && vanished(&e) => return Ok(()),
        other => other.at(dir)?,
    };
    let folder = FolderRead {
        fd: &fd,
        dir,
        rel,
        base,
        keep,
        descend,
    };
    match each_entry(&fd, |name, listed| folder.entry(name, listed, out)) {
        Ok(()) => Ok(()),
        // The folder was removed while it was listed.
        Err(Failed::Listing(e)) if !is_root && vanished(&e) => Ok(()),
        Err(Failed::Listing(e)) => Err(Error::io(dir, e)),
        Err(Failed::Entry(e)) => Err(e),
    }
}

/// One open folder of a walk, its entries being read.
struct FolderRead<'a> {
    fd: &'a OwnedFd,
    dir: &'a Path,
    /// Its path relative to the walk's root (empty for the root).
    rel: &'a [u8],
    base: Base,
    keep: &'a Keep<'a>,
    descend: &'a dyn Fn(PathBuf, Vec<u8>),
}

impl FolderRead<'_> {
    /// The entry `cname` the listing gave as `listed`: its item into `out` when the walk keeps
    /// it (a folder also to `descend`); nothing when it vanished meanwhile.
    fn entry(&self, cname: &CStr, listed: Listed, out: &mut Vec<Item>) -> Result<()> {
        let (dir, rel) = (self.dir, self.rel);
        let name = OsStr::from_bytes(cname.to_bytes());
        let st = || match lstat_at(self.fd, cname) {
            Err(err) if vanished(&err) => Ok(None),
            other => other
                .map(Some)
                .map_err(|err| Error::io(dir.join(name), err)),
        };
        // The listing's kind decides what is kept; where the file system gives none, `lstat`.
        let (kind, early) = match listed {
            Listed::Known(k) => (k, None),
            Listed::Unknown => match st()? {
                Some(s) => (s.kind, Some(s)),
                None => return Ok(()),
            },
        };
        let mut r = Vec::with_capacity(rel.len() + 1 + name.len());
        if !rel.is_empty() {
            r.extend_from_slice(rel);
            r.push(b'/');
        }
        r.extend_from_slice(name.as_bytes());
        let dir_or_link = matches!(kind, Some(Kind::Dir | Kind::Symlink));
        if !(self.keep)(dir, name, &r, dir_or_link) {
            return Ok(());
        }
        let st = match early {
            Some(s) => s,
            None => match st()? {
                Some(s) => s,
                None => return Ok(()),
            },
        };
        if st.kind == Some(Kind::Dir) {
            (self.descend)(dir.join(name), r.clone());
        }
        if let Some(item) = item_from(self.base, r, &st, || dir.join(name))? {
            out.push(item);
        }
        Ok(())
    }
}

/// Paths a walk leaves out, as (file name, folder): an entry is left out when both match, so
/// a folder's entries are compared by name first and their paths are never built.
struct Skip<'a>(Vec<(&'a OsStr, &'a Path)>);

impl<'a> Skip<'a> {
    fn new(paths: &'a [PathBuf]) -> Self {
        Skip(
            paths
                .iter()
                .filter_map(|p| Some((p.file_name()?, p.parent()?)))
                .collect(),
        )
    }

    /// Is `dir`'s entry `name` one of the left-out paths? (As `Path` equality: by components.)
    fn has(&self, dir: &Path, name: &OsStr) -> bool {
        self.0.iter().any(|(n, d)| *n == name && *d == dir)
    }
}

/// The platform filter as byte prefixes, for the walk's hot path: an entry whose relative path
/// starts with none of them is kept without asking the filter (which parses paths into
/// components). When the filter's paths are not plain (`.` or `..` in them), every entry is
/// asked.
struct QuickFilter<'a> {
    filter: &'a PlatformFilter,
    /// Where the filter may leave something out: `<web root>/sites/` and each extra path.
    prefixes: Option<Vec<Vec<u8>>>,
}

impl<'a> QuickFilter<'a> {
    fn new(filter: &'a PlatformFilter) -> Self {
        let plain = |p: &Path| -> Option<Vec<u8>> {
            let mut out = Vec::new();
            for c in p.components() {
                let Component::Normal(n) = c else { return None };
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(n.as_bytes());
            }
            Some(out)
        };
        let prefixes = (|| {
            let mut sites = plain(&filter.web_root)?;
            if !sites.is_empty() {
                sites.push(b'/');
            }
            sites.extend_from_slice(b"sites/");
            let mut v = vec![sites];
            for x in &filter.extra {
                v.push(plain(x)?);
            }
            Some(v)
        })();
        QuickFilter { filter, prefixes }
    }

    /// Exactly `filter.keeps(rel, is_dir_or_link)`.
    fn keeps(&self, rel: &[u8], is_dir_or_link: bool) -> bool {
        if let Some(prefixes) = &self.prefixes
            && !prefixes.iter().any(|p| rel.starts_with(p))
        {
            return true;
        }
        self.filter
            .keeps(Path::new(OsStr::from_bytes(rel)), is_dir_or_link)
    }
}

/// The SQLite database file and its side files, which walks leave out (the database is
/// captured through the backup API). Both as named in the URL and through its canonical
/// folder, since the walk sees the canonical platform path and the URL may go through a
/// symlink.
pub fn db_side_files(db: Option<&Database>) -> Vec<PathBuf> {
    let Some(p) = db.and_then(|d| d.sqlite_path()) else {
        return Vec::new();
    };
    let mut bases = vec![p.to_path_buf()];
    if let (Some(dir), Some(name)) = (p.parent(), p.file_name())
        && let Ok(real) = fs::canonicalize(dir)
    {
        bases.push(real.join(name));
    }
    let mut out = Vec::new();
    for b in bases {
        for s in ["", "-wal", "-shm", "-journal"] {
            let mut os = b.clone().into_os_string();
            os.push(s);
            out.push(PathBuf::from(os));
        }
    }
    out
}

/// Walks a platform: its code, without any site's folder or extra path (and without `skip`).
pub(super) fn walk_platform(
    platform: &Path,
    filter: &PlatformFilter,
    skip: &[PathBuf],
) -> Result<Vec<Item>> {
    let quick = QuickFilter::new(filter);
    let skip = Skip::new(skip);
    walk(
        platform,
        Base::Platform,
        &|dir, name, rel, is_dir_or_link| quick.keeps(rel, is_dir_or_link) && !skip.has(dir, name),
    )
}

/// Walks a site's extra paths (relative to the platform; missing ones are left out): each
/// path's own entry and everything under it, with paths relative to the platform, and the
/// folder each was walked from (the items' [`Base::Extra`] indexes).
pub(super) fn walk_extra(
    platform: &Path,
    extra: &[String],
    skip: &[PathBuf],
) -> Result<(Vec<Item>, Vec<ExtraRoot>)> {
    let mut out = Vec::new();
    let mut roots = Vec::new();
    for x in extra {
        let abs = platform.join(x);
        let md = match fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(Error::io(&abs, e)),
        };
        let named = match abs.parent() {
            Some(parent) if !md.is_dir() => parent.to_path_buf(),
            _ => abs.clone(),
        };
        let real = match fs::canonicalize(&named) {
            Ok(r) => r,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(Error::io(&named, e)),
        };
        let base = Base::Extra(roots.len() as u32);
        roots.push(ExtraRoot { named, real });
        let prefix = x.as_bytes().to_vec();
        if let Some(it) = item_from(base, prefix.clone(), &Stat::of(&md), || abs.clone())? {
            out.push(it);
        }
        if md.is_dir() {
            for mut it in walk_site(&abs, skip)? {
                let mut p = prefix.clone();
                p.push(b'/');
                p.extend_from_slice(&it.entry.path);
                it.entry.path = p;
                it.base = base;
                out.push(it);
            }
        }
    }
    out.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok((out, roots))
}

/// Walks a site directory, without the SQLite database files (captured through the backup API).
pub(super) fn walk_site(dir: &Path, skip: &[PathBuf]) -> Result<Vec<Item>> {
    let skip = Skip::new(skip);
    walk(dir, Base::Site, &|d, name, _, _| !skip.has(d, name))
}

/// Reads the binding files' metadata (missing ones are left out when `tolerant`). A binding
/// is an absolute path (`site add` refuses others): its item is relative to `/`.
pub(super) fn walk_bindings(bindings: &[PathBuf], tolerant: bool) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for b in bindings {
        let Some(rel) = b.as_os_str().as_bytes().strip_prefix(b"/") else {
            return Err(Error::Invalid(format!(
                "binding file '{}' must be an absolute path",
                b.display()
            )));
        };
        let md = match fs::symlink_metadata(b) {
            Ok(m) => m,
            Err(e) if tolerant && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(b, e)),
        };
        if let Some(it) = item_from(Base::FsRoot, rel.to_vec(), &Stat::of(&md), || b.clone())? {
            out.push(it);
        }
    }
    out.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(out)
}

/// The owner, mode and mtime of a tree's root folder.
pub(super) fn root_meta(root: &Path) -> Option<RootMeta> {
    let md = fs::metadata(root).ok()?;
    Some(RootMeta {
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
    })
}

pub(super) fn to_tree(items: Vec<Item>, root: Option<RootMeta>) -> Tree {
    let mut t = Tree {
        root,
        entries: items
            .into_iter()
            .filter(|i| !i.gone)
            .map(|i| i.entry)
            .collect(),
    };
    t.sort();
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// The parallel walk yields exactly what a plain sorted walkdir with the same filter yields:
    /// same paths, same order, pruned folders not entered, symlinks not followed.
    #[test]
    fn walk_matches_a_sorted_walkdir() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for i in 0..40 {
            let dir = root.join(format!("m{}/sub{}/deep", i % 7, i % 3));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("f{i}.php")), format!("{i}")).unwrap();
        }
        fs::create_dir_all(root.join("sites/all/modules")).unwrap();
        fs::create_dir_all(root.join("sites/example.com/files")).unwrap();
        fs::write(root.join("sites/example.com/files/a.jpg"), "x").unwrap();
        fs::write(root.join("sites/sites.php"), "<?php").unwrap();
        fs::create_dir_all(root.join("empty/inner")).unwrap();
        symlink("m1", root.join("link-to-dir")).unwrap();
        symlink("nowhere", root.join("dangling")).unwrap();

        let got: Vec<Vec<u8>> = walk_platform(root, &PlatformFilter::new(""), &[])
            .unwrap()
            .into_iter()
            .map(|i| i.entry.path)
            .collect();
        let want: Vec<Vec<u8>> = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()))
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| {
                let ft = e.file_type();
                tree::in_platform(
                    e.path().strip_prefix(root).unwrap(),
                    ft.is_dir() || ft.is_symlink(),
                )
            })
            .map(|e| {
                let e = e.unwrap();
                e.path()
                    .strip_prefix(root)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            })
            .collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got, want_sorted);
        assert!(got.contains(&b"sites/sites.php".to_vec()));
        assert!(got.contains(&b"link-to-dir".to_vec()));
        assert!(!got.iter().any(|p| p.starts_with(b"sites/example.com")));
        assert!(!got.iter().any(|p| p.starts_with(b"link-to-dir/")));
        assert_eq!(got.len(), want.len());
    }

    /// The walk's byte-prefix filter answers exactly as the platform filter on every path,
    /// with plain and odd web roots and extra paths.
    #[test]
    fn quick_filter_agrees_with_the_platform_filter() {
        let paths = [
            "",
            "sites",
            "sites/",
            "sites/all",
            "sites/all/x",
            "sites/default",
            "sites/sites.php",
            "sites/a.com",
            "sites/a.com/files/x",
            "sitesx",
            "sitesx/y",
            "web",
            "web/sites",
            "web/sites/a.com",
            "web/sites/a.com/f",
            "web/sites/all/m",
            "web/sites/sites.php",
            "private",
            "private/x",
            "privatex",
            "priv",
            "files/private",
            "a/b/c",
            "webx/sites/a",
            "web/private",
            "web/private/y",
        ];
        let filters = [
            PlatformFilter::new(""),
            PlatformFilter::new("web"),
            PlatformFilter::new("web/").with_extra(["private/", "web/private"]),
            PlatformFilter::new("./web").with_extra(["private"]),
            PlatformFilter::new("").with_extra(["../x", "priv"]),
        ];
        for f in &filters {
            let q = QuickFilter::new(f);
            for p in paths {
                for d in [false, true] {
                    assert_eq!(
                        q.keeps(p.as_bytes(), d),
                        f.keeps(Path::new(p), d),
                        "{f:?} {p} {d}"
                    );
                }
            }
        }
    }

    /// An item's absolute path is its base joined with its path, as `Path::join` makes it, and
    /// a left-out path matches its own entry only.
    #[test]
    fn absolute_paths_and_skips_match_path_semantics() {
        let item = |base, rel: &str| Item::test_file(base, rel.as_bytes(), 0);
        for (plat, site) in [("/srv/p", "/srv/p/sites/a"), ("/srv/p/", "/x/"), ("/", "/")] {
            let b = Bases {
                platform: Path::new(plat),
                site: Path::new(site),
                extra: &[],
            };
            for rel in ["a", "a/b.php", "sites/x/y"] {
                assert_eq!(b.abs(&item(Base::Platform, rel)), Path::new(plat).join(rel));
                assert_eq!(b.abs(&item(Base::Site, rel)), Path::new(site).join(rel));
                assert_eq!(
                    b.abs(&item(Base::FsRoot, rel)).as_os_str().as_bytes(),
                    format!("/{rel}").as_bytes()
                );
            }
        }
        let skips = [
            PathBuf::from("/srv/p/db.sqlite"),
            PathBuf::from("/srv/p/./q/db.sqlite"),
            PathBuf::from("/srv/p/r/"),
        ];
        let skip = Skip::new(&skips);
        for (dir, name) in [
            ("/srv/p", "db.sqlite"),
            ("/srv/p/q", "db.sqlite"),
            ("/srv/p", "r"),
            ("/srv/p", "db.sqlite-wal"),
            ("/srv", "db.sqlite"),
            ("/srv/p/r", "db.sqlite"),
        ] {
            let want = skips.iter().any(|s| *s == Path::new(dir).join(name));
            assert_eq!(
                skip.has(Path::new(dir), OsStr::new(name)),
                want,
                "{dir} {name}"
            );
        }
    }

    /// Where the file system's listing gives no kinds, each entry's `lstat` decides: what the
    /// filter sees (folder or symlink, or not), what is descended into, and the items are as
    /// with kinds given; an entry gone before its `lstat` is left out.
    #[test]
    fn entries_listed_without_a_kind_are_kept_by_their_lstat() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f"), b"x").unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("f", d.path().join("l")).unwrap();
        let fd = open_folder(d.path()).unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let keep = |_: &Path, n: &OsStr, _: &[u8], dir_or_link: bool| {
            seen.lock().unwrap().push((n.to_os_string(), dir_or_link));
            true
        };
        let down = std::sync::Mutex::new(Vec::new());
        let descend = |p: PathBuf, r: Vec<u8>| down.lock().unwrap().push((p, r));
        let folder = FolderRead {
            fd: &fd,
            dir: d.path(),
            rel: b"top",
            base: Base::Site,
            keep: &keep,
            descend: &descend,
        };
        let mut got = Vec::new();
        for listed in [Listed::Unknown, Listed::Known(None)] {
            let mut out = Vec::new();
            for n in [c"f", c"sub", c"l", c"gone"] {
                let listed = match (listed, n.to_bytes()) {
                    (Listed::Unknown, _) => Listed::Unknown,
                    (_, b"f") => Listed::Known(Some(Kind::File)),
                    (_, b"sub") => Listed::Known(Some(Kind::Dir)),
                    (_, b"l") => Listed::Known(Some(Kind::Symlink)),
                    _ => Listed::Known(Some(Kind::File)),
                };
                folder.entry(n, listed, &mut out).unwrap();
            }
            let items: Vec<(String, Kind, Option<Vec<u8>>)> = out
                .into_iter()
                .map(|i| {
                    (
                        String::from_utf8(i.entry.path).unwrap(),
                        i.entry.kind,
                        i.entry.target,
                    )
                })
                .collect();
            got.push(items);
        }
        assert_eq!(got[0], got[1]);
        assert_eq!(
            got[0],
            [
                ("top/f".to_string(), Kind::File, None),
                ("top/sub".to_string(), Kind::Dir, None),
                ("top/l".to_string(), Kind::Symlink, Some(b"f".to_vec())),
            ]
        );
        // The filter saw the same kinds both ways; "gone" only when the listing named a kind.
        let seen = seen.into_inner().unwrap();
        let unknown: Vec<_> = seen[..3].to_vec();
        assert_eq!(
            unknown,
            [
                (OsString::from("f"), false),
                (OsString::from("sub"), true),
                (OsString::from("l"), true)
            ]
        );
        assert_eq!(&seen[3..6], &unknown[..]);
        assert_eq!(seen.len(), 7);
        let down = down.into_inner().unwrap();
        assert_eq!(down.len(), 2);
        assert!(
            down.iter()
                .all(|(p, r)| p == &d.path().join("sub") && r == b"top/sub")
        );
    }

    #[test]
    fn walk_of_a_missing_folder_names_it() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("gone");
        let e = walk_site(&missing, &[]).err().expect("an error");
        assert!(e.to_string().contains("gone"), "{e}");
    }
}
