//! Writing trees and files out of a snapshot: folders, symlinks and files (on several
//! threads, every chunk verified), their owners, modes and times, made durable with one
//! `syncfs`; and the file-system moves a restore is made of (durable renames, removing our own
//! temporary folders). It never decides what to write: the plan and the steps do.

use super::runs::Runs;
use crate::catalog::{Catalog, FileKey};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::Hash;
use crate::read;
use crate::repo::Repo;
use crate::store::ChunkReader;
use crate::store::pack::ChunkLocation;
use crate::tree::{Entry, Kind, RootMeta, Tree};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Is the process root (so owners can be restored)? Asked once: a restore asks per file.
pub(super) fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    *ROOT.get_or_init(|| unsafe { libc::geteuid() == 0 })
}

/// The two timespecs (access, modification) `utimensat`/`futimens` take for `mtime_ns`.
fn times_of(mtime_ns: i64) -> [libc::timespec; 2] {
    let ts = libc::timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000),
    };
    [ts, ts]
}

/// Sets a path's access and modification times to `mtime_ns` (of a symlink itself unless
/// `follow`).
fn set_times(path: &Path, mtime_ns: i64, follow: bool) -> Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("{}: NUL in path", path.display())))?;
    let times = times_of(mtime_ns);
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: `c` is a NUL-terminated path that outlives the call, `times` points to the two
    // timespecs utimensat reads, and AT_FDCWD makes the path relative to the working folder.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) };
    if r != 0 {
        return Err(Error::io(path, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Sets owner (as root), mode and mtime of a written entry.
pub(super) fn apply_meta(path: &Path, e: &Entry) -> Result<()> {
    if is_root() {
        std::os::unix::fs::lchown(path, Some(e.uid), Some(e.gid)).at(path)?;
    }
    if e.kind != Kind::Symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(e.mode)).at(path)?;
    }
    set_times(path, e.mtime_ns, e.kind != Kind::Symlink)
}

/// Checks a tree can be written under a root without escaping it: relative paths, no `..`, and
/// no entry below a symlink of the same tree.
fn check_tree(t: &Tree, snap: &str) -> Result<()> {
    t.validate()
        .map_err(|e| Error::Corrupt(format!("snapshot {snap}: {e}")))?;
    let links: HashSet<&[u8]> = t
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Symlink)
        .map(|e| &e.path[..])
        .collect();
    for e in &t.entries {
        let mut p = e.rel_path();
        while let Some(parent) = p.parent() {
            if links.contains(parent.as_os_str().as_bytes()) {
                return Err(Error::Corrupt(format!(
                    "snapshot {snap}: {} lies below a symlink",
                    e.path_str()
                )));
            }
            p = parent;
        }
    }
    Ok(())
}

/// The files of a tree as written: each entry's files-cache key ([`FileKey`], read from the
/// descriptor of the file after its last change: owner, mode, times, so the next snapshot
/// finds it unchanged without the restore looking every path up again) by its index in the tree (`None`
/// for folders and symlinks).
pub type Written = Vec<Option<FileKey>>;

/// Writes `t` into the new folder `dest` (which must not exist), reading and verifying every
/// chunk; files are written by several threads. `root_meta` gives the root folder's own mode.
/// Returns each written file's [`FileKey`].
pub fn write_tree(repo: &Repo, t: &Tree, dest: &Path, snap: &str) -> Result<Written> {
    check_tree(t, snap)?;
    let (at, files): (Vec<usize>, Vec<&Entry>) = (t.entries.iter().enumerate())
        .filter(|(_, e)| e.kind == Kind::File)
        .unzip();
    let source = read::Source::of(repo);
    // Where every chunk is, asked of the index (a few queries, on a connection of its own)
    // while this thread makes the folders and symlinks.
    let locs = std::thread::scope(|s| {
        let located = s.spawn(|| locate(&source.open_catalog()?, &files));
        let made = make_folders(t, dest);
        let locs = located.join().expect("chunk lookup panicked");
        made.and(locs)
    })?;
    let stats = write_files(&source, &files, &locs, dest, snap)?;
    // Folder metadata last, deepest first, so read-only folders do not block their contents.
    for e in t.entries.iter().rev().filter(|e| e.kind == Kind::Dir) {
        apply_meta(&dest.join(e.rel_path()), e)?;
    }
    apply_root(dest, t.root.as_ref())?;
    let mut written = vec![None; t.entries.len()];
    for (i, st) in at.into_iter().zip(stats) {
        written[i] = Some(st);
    }
    Ok(written)
}

/// Makes the new folder `dest`, the folders of `t` in it (owner-writable until the end) and
/// its symlinks.
fn make_folders(t: &Tree, dest: &Path) -> Result<()> {
    fs::create_dir(dest).at(dest)?;
    for e in t.entries.iter().filter(|e| e.kind == Kind::Dir) {
        let p = dest.join(e.rel_path());
        fs::create_dir(&p).at(&p)?;
    }
    for e in t.entries.iter().filter(|e| e.kind == Kind::Symlink) {
        let p = dest.join(e.rel_path());
        let target = e.target.as_deref().unwrap_or_default();
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &p).at(&p)?;
        apply_meta(&p, e)?;
    }
    Ok(())
}

/// Writes the file entries `files` under `dest` on one worker per core (at most 4), each
/// chunk read where `locs` says; returns their [`FileKey`]s in the same order.
fn write_files(
    source: &read::Source,
    files: &[&Entry],
    locs: &HashMap<Hash, ChunkLocation>,
    dest: &Path,
    snap: &str,
) -> Result<Vec<FileKey>> {
    let failed = AtomicBool::new(false);
    // Two workers per core were tried (docs/performance.md): a little faster while other
    // builds loaded the machine, no faster than main in a comparison run, and 35 MiB more
    // memory (each worker keeps its own opened frames).
    let workers = crate::cores().clamp(1, 4).min(files.len().max(1));
    let runs = Runs::new(files, workers);
    let job = FilesJob {
        files,
        locs,
        dest,
        snap,
        born: Born::of(dest)?,
        runs: &runs,
        failed: &failed,
    };
    let results: Vec<Result<Vec<(usize, FileKey)>>> = std::thread::scope(|s| {
        let job = &job;
        let hs: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let cat = source.open_catalog()?;
                    job.work(w, &mut source.reader(&cat))
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("restore worker panicked"))
            .collect()
    });
    let mut stats: Vec<Option<FileKey>> = vec![None; files.len()];
    for (i, st) in results
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
    {
        stats[i] = Some(st);
    }
    Ok(stats
        .into_iter()
        .map(|st| st.expect("every file written"))
        .collect())
}

/// What the workers of one [`write_files`] share.
struct FilesJob<'a> {
    files: &'a [&'a Entry],
    locs: &'a HashMap<Hash, ChunkLocation>,
    dest: &'a Path,
    snap: &'a str,
    born: Born,
    /// The files in runs, handed to the workers.
    runs: &'a Runs,
    /// Set by the first worker that fails: the others stop.
    failed: &'a AtomicBool,
}

impl FilesJob<'_> {
    /// Worker `w`: takes runs of files until none is left or a worker failed; returns the
    /// [`FileKey`] of each file it wrote, by its index in `files`.
    fn work(&self, w: usize, reader: &mut ChunkReader) -> Result<Vec<(usize, FileKey)>> {
        let mut folder = fsutil::OpenFolder::default();
        let mut stats = Vec::new();
        loop {
            if self.failed.load(Ordering::Relaxed) {
                return Ok(stats);
            }
            let Some(run) = self.runs.take(w) else {
                return Ok(stats);
            };
            for (k, e) in run.clone().zip(&self.files[run]) {
                let p = self.dest.join(e.rel_path());
                let dir = p.parent().unwrap_or(self.dest);
                let written = open_folder(&mut folder, dir).and_then(|d| {
                    write_file_located(reader, self.locs, self.born, At::Folder(d), e, &p)
                });
                match written {
                    Ok(st) => stats.push((k, st)),
                    Err(err) => {
                        self.failed.store(true, Ordering::Relaxed);
                        return Err(match err {
                            Error::Corrupt(m) => Error::Corrupt(format!(
                                "snapshot {}, file {}: {m}",
                                self.snap,
                                e.path_str()
                            )),
                            other => other,
                        });
                    }
                }
                crate::progress::add(e.size, 1);
            }
        }
    }
}

/// The open folder `dir` of a file to write (kept open in `folder` for its neighbours). Fail
/// point `restore-folder` (hit once per file; `@error`: the open fails with `EACCES`).
fn open_folder<'f>(folder: &'f mut fsutil::OpenFolder, dir: &Path) -> Result<&'f File> {
    fsutil::failpoint_io("restore-folder")
        .and_then(|()| folder.get(dir))
        .at(dir)
}

/// Gives a written tree's root folder its recorded owner, mode and mtime (again, after
/// something was added inside it).
pub(super) fn apply_root(dest: &Path, root: Option<&RootMeta>) -> Result<()> {
    if let Some(r) = root {
        let e = Entry {
            path: Vec::new(),
            kind: Kind::Dir,
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            mtime_ns: r.mtime_ns,
            size: 0,
            target: None,
            chunks: Vec::new(),
        };
        apply_meta(dest, &e)?;
    }
    Ok(())
}

/// Where the chunks of `files` are stored, by chunk id (a chunk the index lacks is left out:
/// reading it then fails with the index's own error).
fn locate(cat: &Catalog, files: &[&Entry]) -> Result<HashMap<Hash, ChunkLocation>> {
    let mut wanted: Vec<Hash> = files
        .iter()
        .flat_map(|e| e.chunks.iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    cat.chunk_locations(&wanted)
}

/// Writes one file entry at `p` (which must not exist), reading and verifying its chunks,
/// then gives it its recorded metadata.
pub(super) fn write_file(reader: &mut ChunkReader, e: &Entry, p: &Path) -> Result<()> {
    write_file_located(reader, &HashMap::new(), Born::UNKNOWN, At::Path, e, p).map(drop)
}

/// Where a new file is created: at its full path, or by name inside an open folder.
#[derive(Clone, Copy)]
enum At<'a> {
    /// At the path itself.
    Path,
    /// By name inside the open folder ([`fsutil::open_at`]); the path is for messages.
    Folder(&'a File),
}

impl At<'_> {
    /// Creates the file at `p` (it must not exist; a symlink in its place is not followed)
    /// with `mode`, for writing.
    fn create(self, p: &Path, mode: u32) -> Result<File> {
        match self {
            At::Path => fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(p)
                .at(p),
            At::Folder(dir) => {
                let name = p.file_name().unwrap_or_default();
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
                fsutil::open_at(dir, name, flags, mode).at(p)
            }
        }
    }
}

/// What a file created in a freshly made tree is given without being asked: the owner its
/// root folder passes on (the process's user, and the group the new folders give new files:
/// the root folder's own, since it was made the same way), and the mode bits the umask lets
/// through. A file whose recorded owner and mode are exactly that is created complete,
/// without `fchown` and `fchmod` (two of the five calls a small file costs).
#[derive(Clone, Copy)]
struct Born {
    /// The owner new files get, if known.
    owner: Option<(u32, u32)>,
    /// The process's umask, if known.
    umask: Option<u32>,
}

impl Born {
    /// Nothing known: every file gets its owner and mode set.
    const UNKNOWN: Born = Born {
        owner: None,
        umask: None,
    };

    /// What files created inside the new folder `dest` get.
    fn of(dest: &Path) -> Result<Born> {
        let md = fs::metadata(dest).at(dest)?;
        Ok(Born {
            owner: Some((md.uid(), md.gid())),
            umask: process_umask(),
        })
    }

    /// The mode to create `e` with, and whether the file is then complete as created.
    fn create_mode(&self, e: &Entry) -> (u32, bool) {
        let owner_ok = !is_root() || self.owner == Some((e.uid, e.gid));
        let mode_ok = e.mode & !0o777 == 0 && self.umask.is_some_and(|m| e.mode & m == 0);
        if owner_ok && mode_ok {
            (e.mode, true)
        } else {
            (0o600, false)
        }
    }
}

/// The process's umask, as the kernel reports it (Linux 4.7 and later); `None` if unknown.
fn process_umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// [`write_file`] with the chunks' places already looked up in `locs` (the others are looked
/// up one by one). The metadata is set through the open descriptor (no path lookups), and
/// read back from it when it is all set.
fn write_file_located(
    reader: &mut ChunkReader,
    locs: &HashMap<Hash, ChunkLocation>,
    born: Born,
    at: At<'_>,
    e: &Entry,
    p: &Path,
) -> Result<FileKey> {
    let (mode, complete) = born.create_mode(e);
    let mut f = at.create(p, mode)?;
    // Each chunk is written as it comes: one write for a small file, no buffer to fill.
    for h in &e.chunks {
        let d = match locs.get(h) {
            Some(loc) => reader.read_at(h, loc)?,
            None => reader.read(h)?,
        };
        f.write_all(&d).at(p)?;
    }
    if complete {
        set_file_times(&f, p, e.mtime_ns)?;
    } else {
        apply_file_meta(&f, p, e)?;
    }
    Ok(FileKey::of(&f.metadata().at(p)?))
}

/// Gives an open file its recorded owner (as root), mode and mtime, in that order (a change
/// of owner clears set-id bits).
fn apply_file_meta(f: &File, p: &Path, e: &Entry) -> Result<()> {
    if is_root() {
        std::os::unix::fs::fchown(f, Some(e.uid), Some(e.gid)).at(p)?;
    }
    f.set_permissions(fs::Permissions::from_mode(e.mode))
        .at(p)?;
    set_file_times(f, p, e.mtime_ns)
}

/// Sets an open file's access and modification times to `mtime_ns`.
fn set_file_times(f: &File, p: &Path, mtime_ns: i64) -> Result<()> {
    let times = times_of(mtime_ns);
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to `f`, which outlives the call, and `times` points to
    // the two timespecs futimens reads.
    if unsafe { libc::futimens(f.as_raw_fd(), times.as_ptr()) } != 0 {
        return Err(Error::io(p, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Makes a freshly written tree durable before it is renamed into place: one `syncfs` of the
/// filesystem holding it (an fsync per file costs milliseconds each on many small files).
pub(super) fn sync_tree(root: &Path) -> Result<()> {
    crate::fsutil::sync_filesystem(root)
}

/// Removes a folder we created (temporary or aside), making read-only folders writable first.
pub(super) fn remove_tree(p: &Path) -> Result<()> {
    if fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    for e in walkdir::WalkDir::new(p).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
        }
    }
    if fs::symlink_metadata(p).at(p)?.is_dir() {
        fs::remove_dir_all(p).at(p)
    } else {
        fs::remove_file(p).at(p)
    }
}

/// Renames `from` to `to` and syncs both parent folders.
pub(super) fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).at(to)?;
    if let Some(d) = to.parent() {
        fsutil::sync_dir(d)?;
    }
    if let Some(d) = from.parent()
        && Some(d) != to.parent()
    {
        fsutil::sync_dir(d)?;
    }
    Ok(())
}

/// Gives `dest` the owner and mode of `like` (or `mode` and its parent folder's owner).
pub(super) fn copy_owner_mode(like: Option<&Path>, dest: &Path, mode: u32) -> Result<()> {
    let (mode, owner) = match like.and_then(|l| fs::metadata(l).ok()) {
        Some(md) => (md.mode() & 0o7777, Some((md.uid(), md.gid()))),
        None => (
            mode,
            dest.parent()
                .and_then(|p| fs::metadata(p).ok())
                .map(|m| (m.uid(), m.gid())),
        ),
    };
    if is_root()
        && let Some((u, g)) = owner
    {
        std::os::unix::fs::chown(dest, Some(u), Some(g)).at(dest)?;
    }
    fs::set_permissions(dest, fs::Permissions::from_mode(mode)).at(dest)
}
