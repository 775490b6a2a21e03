//! Walking live folders: the platform (minus other sites' folders), the site directory and the
//! binding files, into sorted lists of items with their metadata. It never reads file contents.

use crate::db::Database;
use crate::error::{Error, IoContext, Result};
#[cfg(test)]
use crate::tree;
use crate::tree::{Entry, Kind, PlatformFilter, RootMeta, Tree};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One walked path.
pub(super) struct Item {
    pub(super) abs: PathBuf,
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

fn item_from(abs: PathBuf, rel: Vec<u8>, md: &fs::Metadata) -> Result<Option<Item>> {
    let ft = md.file_type();
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        return Ok(None); // sockets, fifos and devices are not site content
    };
    let target = if kind == Kind::Symlink {
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
        entry: Entry {
            path: rel,
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            size: if kind == Kind::File { md.size() } else { 0 },
            target,
            chunks: Vec::new(),
        },
        abs,
        dev: md.dev(),
        ino: md.ino(),
        ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
        gone: false,
        cacheable: false,
    }))
}

/// Is this error about an entry that vanished after its folder was listed? (A live site
/// creates and deletes files all the time; that is not a reason to fail a snapshot.)
fn vanished(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// Walks `root` (not following symlinks), keeping what `keep(abs, rel, is_dir_or_link)`
/// allows; the result is sorted by relative path. Folders are read on all cores; each entry is
/// `lstat`ed relative to its open folder (no full path resolution per file).
fn walk(root: &Path, keep: &(dyn Fn(&Path, &Path, bool) -> bool + Sync)) -> Result<Vec<Item>> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let (tx, rx) = crossbeam_channel::unbounded::<(PathBuf, Vec<u8>)>();
    // Folders queued or being read; the walk is over when it drops to zero.
    let pending = AtomicUsize::new(1);
    let failed = AtomicBool::new(false);
    tx.send((root.to_path_buf(), Vec::new())).expect("queue");
    let results: Vec<Result<Vec<Item>>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|_| {
                let (tx, rx) = (tx.clone(), rx.clone());
                let (pending, failed) = (&pending, &failed);
                s.spawn(move || -> Result<Vec<Item>> {
                    let mut out = Vec::new();
                    while let Ok((dir, rel)) = rx.recv() {
                        if dir.as_os_str().is_empty() {
                            break; // the walk is over
                        }
                        let res = if failed.load(Ordering::Relaxed) {
                            Ok(())
                        } else {
                            read_folder(&dir, &rel, keep, &mut out, &|d, r| {
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
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    out.sort_unstable_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(out)
}

/// Reads one folder of a walk (`rel` empty for the root): its entries become items, its kept
/// subfolders go to `descend`. Entries that vanish meanwhile are left out.
fn read_folder(
    dir: &Path,
    rel: &[u8],
    keep: &(dyn Fn(&Path, &Path, bool) -> bool + Sync),
    out: &mut Vec<Item>,
    descend: &dyn Fn(PathBuf, Vec<u8>),
) -> Result<()> {
    let is_root = rel.is_empty();
    let listing = match fs::read_dir(dir) {
        Err(e) if !is_root && vanished(&e) => return Ok(()),
        other => other.at(dir)?,
    };
    for e in listing {
        let e = match e {
            Err(e) if !is_root && vanished(&e) => return Ok(()),
            other => other.at(dir)?,
        };
        let name = e.file_name();
        let abs = dir.join(&name);
        let mut r = Vec::with_capacity(rel.len() + 1 + name.len());
        if !is_root {
            r.extend_from_slice(rel);
            r.push(b'/');
        }
        r.extend_from_slice(name.as_bytes());
        let ft = match e.file_type() {
            Err(e) if vanished(&e) => continue,
            other => other.at(&abs)?,
        };
        if !keep(
            &abs,
            Path::new(OsStr::from_bytes(&r)),
            ft.is_dir() || ft.is_symlink(),
        ) {
            continue;
        }
        // lstat relative to the open folder (DirEntry::metadata does not follow symlinks).
        let md = match e.metadata() {
            Err(e) if vanished(&e) => continue,
            other => other.at(&abs)?,
        };
        if md.is_dir() {
            descend(abs.clone(), r.clone());
        }
        if let Some(item) = item_from(abs, r, &md)? {
            out.push(item);
        }
    }
    Ok(())
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
    walk(platform, &|abs, rel, is_dir_or_link| {
        filter.keeps(rel, is_dir_or_link) && !skip.iter().any(|s| s == abs)
    })
}

/// Walks a site's extra paths (relative to the platform; missing ones are left out): each
/// path's own entry and everything under it, with paths relative to the platform.
pub(super) fn walk_extra(platform: &Path, extra: &[String], skip: &[PathBuf]) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for x in extra {
        let abs = platform.join(x);
        let md = match fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(Error::io(&abs, e)),
        };
        let prefix = x.as_bytes().to_vec();
        if let Some(it) = item_from(abs.clone(), prefix.clone(), &md)? {
            out.push(it);
        }
        if md.is_dir() {
            for mut it in walk_site(&abs, skip)? {
                let mut p = prefix.clone();
                p.push(b'/');
                p.extend_from_slice(&it.entry.path);
                it.entry.path = p;
                out.push(it);
            }
        }
    }
    out.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(out)
}

/// Walks a site directory, without the SQLite database files (captured through the backup API).
pub(super) fn walk_site(dir: &Path, skip: &[PathBuf]) -> Result<Vec<Item>> {
    walk(dir, &|abs, _, _| !skip.iter().any(|s| s == abs))
}

pub(super) fn walk_bindings(bindings: &[PathBuf], tolerant: bool) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for b in bindings {
        let md = match fs::symlink_metadata(b) {
            Ok(m) => m,
            Err(e) if tolerant && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(b, e)),
        };
        let rel = b
            .as_os_str()
            .as_bytes()
            .strip_prefix(b"/")
            .unwrap_or(b.as_os_str().as_bytes())
            .to_vec();
        if let Some(it) = item_from(b.clone(), rel, &md)? {
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

    #[test]
    fn walk_of_a_missing_folder_names_it() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("gone");
        let e = walk_site(&missing, &[]).err().expect("an error");
        assert!(e.to_string().contains("gone"), "{e}");
    }
}
