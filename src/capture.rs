//! Capture: turning a live site into a snapshot. It walks the platform (minus other sites'
//! folders), the site directory and the binding files, reads only files the files cache does
//! not vouch for, cuts and stores their content through the deduplicating chunk sink on all
//! cores, dumps the database as a stream into the same sink, stores the trees as blobs, waits
//! for every pack to be durable and indexed, and only then commits the snapshot row (invariant
//! 1). It also scans live trees without storing anything, for drift checks and diffs. It never
//! writes to a live site.

use crate::catalog::{CacheEntry, Catalog, SiteRecord, SnapshotRecord};
use crate::db::Database;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::Hash;
use crate::repo::Repo;
use crate::store::{self, ChunkSink, FILE_CHUNKS};
use crate::tree::{self, Entry, Kind, RootMeta, Tree};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// The snapshot kinds.
pub const KINDS: &[&str] = &[
    "manual",
    "scheduled",
    "checkpoint",
    "pre-restore",
    "pre-migrate",
    "imported",
];

/// How to capture.
#[derive(Debug, Clone)]
pub struct CaptureOpts {
    pub kind: String,
    pub label: Option<String>,
    pub pinned: bool,
    /// Capture whatever exists (missing platform, site folder, bindings or SQLite file are
    /// recorded as absent). Used for the pre-restore snapshot of a half-migrated site.
    pub tolerant: bool,
    pub progress: bool,
    /// Take the site folder and the database dump from elsewhere (an imported backup) instead
    /// of the live site; the platform and binding files still come from disk.
    pub source: Option<ImportSource>,
}

/// Where an imported snapshot's site folder and dump come from.
#[derive(Debug, Clone)]
pub struct ImportSource {
    /// A folder holding the site folder's contents.
    pub site_dir: PathBuf,
    /// A file holding the database dump.
    pub dump: Option<PathBuf>,
    pub time: chrono::DateTime<chrono::Utc>,
    pub note: String,
}

impl CaptureOpts {
    pub fn new(kind: &str) -> Self {
        CaptureOpts {
            kind: kind.to_string(),
            label: None,
            pinned: kind == "checkpoint",
            tolerant: false,
            progress: false,
            source: None,
        }
    }
}

/// One walked path.
struct Item {
    abs: PathBuf,
    entry: Entry,
    dev: u64,
    ino: u64,
    ctime_ns: i64,
    /// Was a regular file at the walk but is not one any more (vanished, or replaced by a
    /// symlink, folder or FIFO) when it came to be read: left out of the tree.
    gone: bool,
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

/// What one worker read: (item index, what reading it gave).
type WorkerOut = Result<Vec<(usize, ReadResult)>>;

/// Counters of one capture.
#[derive(Default)]
struct Counters {
    bytes_read: AtomicU64,
}

/// Opens a file the walk saw as a regular file, without following a symlink and without
/// blocking on a FIFO that took its place. `None` if it is no longer a regular file (gone,
/// or replaced by a symlink, folder, FIFO, ...): a symlink swapped in after the walk must never
/// make a snapshot of a site hold a file from outside it.
fn open_regular(abs: &Path) -> Result<Option<(File, fs::Metadata)>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(abs)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(Error::io(abs, e)),
    };
    let md = f.metadata().at(abs)?;
    if !md.file_type().is_file() {
        return Ok(None);
    }
    Ok(Some((f, md)))
}

/// What reading one file gave: its chunks, the bytes read, and the metadata of the file that
/// was actually read (it may have been replaced since the walk).
type ReadResult = Option<(Vec<Hash>, u64, fs::Metadata)>;

fn read_file(abs: &Path, sink: Option<&ChunkSink>, buf: &mut Vec<u8>) -> Result<ReadResult> {
    let Some((f, md)) = open_regular(abs)? else {
        return Ok(None);
    };
    if md.len() <= FILE_CHUNKS.max as u64 {
        buf.clear();
        (&f).read_to_end(buf).at(abs)?;
        let chunks = match sink {
            Some(s) => s
                .put_bytes(buf, FILE_CHUNKS)
                .map_err(|e| annotate(e, abs))?,
            None => store::hash_bytes(buf, FILE_CHUNKS),
        };
        return Ok(Some((chunks, buf.len() as u64, md)));
    }
    let (chunks, n) = match sink {
        Some(s) => s.put_stream(f, FILE_CHUNKS).map_err(|e| annotate(e, abs))?,
        None => {
            let mut out = Vec::new();
            let mut n = 0;
            for c in
                fastcdc::v2020::StreamCDC::new(f, FILE_CHUNKS.min, FILE_CHUNKS.avg, FILE_CHUNKS.max)
            {
                let c = c.map_err(|e| Error::Invalid(format!("{}: {e}", abs.display())))?;
                n += c.length as u64;
                out.push(Hash::of(&c.data));
            }
            (out, n)
        }
    };
    Ok(Some((chunks, n, md)))
}

fn annotate(e: Error, abs: &Path) -> Error {
    match e {
        Error::Invalid(m) if m.starts_with("read failed") => {
            Error::Invalid(format!("{}: {m}", abs.display()))
        }
        other => other,
    }
}

/// Fills in the chunk lists of the file items: from the files cache when path, device, inode,
/// size, mtime and ctime match, else by reading the file on worker threads. Returns the new
/// cache rows (only when storing).
fn fill(
    items: &mut [Item],
    sink: Option<&ChunkSink>,
    cache: &HashMap<Vec<u8>, CacheEntry>,
    counters: &Counters,
    pb: &ProgressBar,
) -> Result<Vec<(Vec<u8>, CacheEntry)>> {
    let mut jobs = Vec::new();
    for (i, it) in items.iter_mut().enumerate() {
        if it.entry.kind != Kind::File {
            continue;
        }
        if let Some(c) = cache.get(it.abs.as_os_str().as_bytes())
            && c.dev == it.dev
            && c.ino == it.ino
            && c.size == it.entry.size
            && c.mtime_ns == it.entry.mtime_ns
            && c.ctime_ns == it.ctime_ns
        {
            it.entry.chunks = c.chunks.clone();
            pb.inc(it.entry.size);
            continue;
        }
        jobs.push(i);
    }
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(jobs.len())
        .max(1);
    let shared: &[Item] = items;
    let results: Vec<WorkerOut> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> WorkerOut {
                    let mut out = Vec::new();
                    let mut buf = Vec::new();
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = jobs.get(j) else { break };
                        match read_file(&shared[i].abs, sink, &mut buf) {
                            Ok(r) => {
                                let n = r.as_ref().map_or(0, |r| r.1);
                                counters.bytes_read.fetch_add(n, Ordering::Relaxed);
                                pb.inc(n);
                                out.push((i, r));
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("capture worker panicked"))
            .collect()
    });
    let mut rows = Vec::new();
    for r in results {
        for (i, read) in r? {
            let it = &mut items[i];
            let Some((chunks, n, md)) = read else {
                it.gone = true;
                continue;
            };
            // Record the file that was read, with its metadata (an atomic replace since the
            // walk brings a new inode, mode, owner and times).
            it.entry.mode = md.mode() & 0o7777;
            it.entry.uid = md.uid();
            it.entry.gid = md.gid();
            it.entry.mtime_ns = md.mtime() * 1_000_000_000 + md.mtime_nsec();
            it.dev = md.dev();
            it.ino = md.ino();
            it.ctime_ns = md.ctime() * 1_000_000_000 + md.ctime_nsec();
            let steady = n == md.len();
            it.entry.size = n;
            it.entry.chunks = chunks;
            // A file that changed while it was read is read again next time.
            if sink.is_some() && steady {
                rows.push((
                    it.abs.as_os_str().as_bytes().to_vec(),
                    CacheEntry {
                        dev: it.dev,
                        ino: it.ino,
                        size: n,
                        mtime_ns: it.entry.mtime_ns,
                        ctime_ns: it.ctime_ns,
                        chunks: it.entry.chunks.clone(),
                    },
                ));
            }
        }
    }
    Ok(rows)
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

/// Walks a platform: its code, without any site's folder (and without `skip`).
fn walk_platform(platform: &Path, skip: &[PathBuf]) -> Result<Vec<Item>> {
    walk(platform, &|abs, rel, is_dir_or_link| {
        tree::in_platform(rel, is_dir_or_link) && !skip.iter().any(|s| s == abs)
    })
}

/// Walks a site directory, without the SQLite database files (captured through the backup API).
fn walk_site(dir: &Path, skip: &[PathBuf]) -> Result<Vec<Item>> {
    walk(dir, &|abs, _, _| !skip.iter().any(|s| s == abs))
}

fn walk_bindings(bindings: &[PathBuf], tolerant: bool) -> Result<Vec<Item>> {
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
fn root_meta(root: &Path) -> Option<RootMeta> {
    let md = fs::metadata(root).ok()?;
    Some(RootMeta {
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
    })
}

fn to_tree(items: Vec<Item>, root: Option<RootMeta>) -> Tree {
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

/// Scans a live platform into a tree without storing anything (content hashed only where the
/// files cache cannot vouch for it).
pub fn scan_platform(cat: &Catalog, platform: &Path, skip: &[PathBuf]) -> Result<Tree> {
    let items = walk_platform(platform, skip)?;
    hash_only(items, &cat.load_cache(platform)?, root_meta(platform))
}

/// Scans a live site directory into a tree without storing anything.
pub fn scan_site_dir(cat: &Catalog, dir: &Path, db: Option<&Database>) -> Result<Tree> {
    let items = walk_site(dir, &db_side_files(db))?;
    hash_only(items, &cat.load_cache(dir)?, root_meta(dir))
}

/// Scans live binding files into a tree without storing anything.
pub fn scan_bindings(cat: &Catalog, bindings: &[PathBuf]) -> Result<Tree> {
    let mut cache = HashMap::new();
    for b in bindings {
        cache.extend(cat.load_cache(b)?);
    }
    hash_only(walk_bindings(bindings, true)?, &cache, None)
}

/// Fills walked items from the files cache or by hashing their content, storing nothing.
fn hash_only(
    mut items: Vec<Item>,
    cache: &HashMap<Vec<u8>, CacheEntry>,
    root: Option<RootMeta>,
) -> Result<Tree> {
    let counters = Counters::default();
    fill(&mut items, None, cache, &counters, &ProgressBar::hidden())?;
    Ok(to_tree(items, root))
}

fn progress_bar(enabled: bool, what: &str) -> ProgressBar {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{msg} {bytes} {binary_bytes_per_sec} {elapsed}")
            .expect("template"),
    );
    pb.set_message(what.to_string());
    pb
}

/// Stores a tree as a blob; returns (blob id, chunks, size).
fn store_tree(sink: &ChunkSink, t: &Tree) -> Result<(Hash, Vec<Hash>, u64)> {
    let bytes = t.encode();
    let chunks = sink.put_bytes(&bytes, store::TREE_CHUNKS)?;
    Ok((Hash::of_list(&chunks), chunks, bytes.len() as u64))
}

/// A new snapshot id: 16 random hex digits not used yet.
pub fn new_snapshot_id(cat: &Catalog) -> Result<String> {
    loop {
        let id = fsutil::random_hex(8);
        if !cat.snapshot_id_taken(&id)? && !id.starts_with("0000") {
            return Ok(id);
        }
    }
}

/// Captures `site`, currently on `platform`, into a new snapshot and commits it.
pub fn snapshot(
    repo: &Repo,
    site: &SiteRecord,
    platform: &Path,
    opts: &CaptureOpts,
) -> Result<SnapshotRecord> {
    let started = Instant::now();
    if !KINDS.contains(&opts.kind.as_str()) {
        return Err(Error::Usage(format!(
            "unknown snapshot kind '{}' (one of {})",
            opts.kind,
            KINDS.join(", ")
        )));
    }
    if opts.kind != "pre-restore"
        && let Some(j) = repo.cat.open_journal_for(&site.uri)?
    {
        return Err(Error::JournalOpen {
            site: site.uri.clone(),
            journal: j.id,
        });
    }
    let db = site.database_at(platform)?;
    let live_site_path = platform.join(&site.site_dir);
    let site_path = match &opts.source {
        Some(src) => src.site_dir.clone(),
        None => live_site_path.clone(),
    };
    // Everything that can be checked is checked before anything is written.
    let platform_exists = platform.is_dir();
    if !platform_exists && !opts.tolerant {
        return Err(Error::Invalid(format!(
            "platform {} of site '{}' does not exist",
            platform.display(),
            site.uri
        )));
    }
    let site_exists = site_path.is_dir();
    if !site_exists && !opts.tolerant {
        return Err(Error::Invalid(format!(
            "site directory {} of site '{}' does not exist",
            site_path.display(),
            site.uri
        )));
    }
    if site_exists && opts.source.is_none() {
        let canon = fs::canonicalize(platform).at(platform)?;
        fsutil::check_inside(&canon, &site_path)?;
    }
    let mut skip = db_side_files(db.as_ref());
    let import_dump = opts.source.as_ref().and_then(|s| s.dump.clone());
    skip.extend(import_dump.clone());
    let dump_db = match &db {
        Some(_) if opts.source.is_some() => import_dump.is_some(),
        Some(Database::Sqlite(p)) if opts.tolerant && !p.exists() => false,
        Some(d) => {
            d.check()?;
            true
        }
        None => false,
    };

    let pb = progress_bar(opts.progress, &format!("{} ", site.uri));
    let counters = Counters::default();
    let cat = &repo.cat;
    let mut platform_items = if platform_exists {
        let mut skip_p = skip.clone();
        skip_p.push(live_site_path.clone());
        walk_platform(platform, &skip_p)?
    } else {
        Vec::new()
    };
    let mut site_items = if site_exists {
        walk_site(&site_path, &skip)?
    } else {
        Vec::new()
    };
    let mut binding_items = walk_bindings(&site.bindings, opts.tolerant)?;
    fsutil::failpoint("walked");
    let total: u64 = platform_items
        .iter()
        .chain(&site_items)
        .chain(&binding_items)
        .map(|i| i.entry.size)
        .sum();
    pb.set_length(total);

    let sink = ChunkSink::start(&repo.data_dir(), &Repo::catalog_path(&repo.root))?;
    let res = (|| -> Result<SnapshotRecord> {
        // One pass over platform, site and binding files, so both cores stay busy to the end
        // instead of draining between the parts. The site folder lies inside the platform, so
        // the platform's cache rows cover it.
        let mut cache = if platform_exists {
            cat.load_cache(platform)?
        } else {
            HashMap::new()
        };
        for b in &site.bindings {
            cache.extend(cat.load_cache(b)?);
        }
        let (np, ns) = (platform_items.len(), site_items.len());
        let mut all = std::mem::take(&mut platform_items);
        all.append(&mut site_items);
        all.append(&mut binding_items);
        let mut cache_rows = fill(&mut all, Some(&sink), &cache, &counters, &pb)?;
        drop(cache);
        binding_items = all.split_off(np + ns);
        site_items = all.split_off(np);
        platform_items = all;
        // In path order, the catalogue's files-cache B-tree is appended to, not split.
        cache_rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        fsutil::failpoint("files-stored");

        let mut db_bytes = 0;
        let mut db_dump = None;
        let mut blobs = Vec::new();
        if dump_db {
            let d = db.as_ref().expect("database");
            let (chunks, size) = match &import_dump {
                Some(f) => sink.put_stream(fs::File::open(f).at(f)?, store::DUMP_CHUNKS)?,
                None => d.dump(&repo.tmp_dir(), &mut |r| {
                    sink.put_stream(r, store::DUMP_CHUNKS)
                })?,
            };
            if size == 0 {
                return Err(Error::Database {
                    url: d.redacted(),
                    msg: "the dump is empty".into(),
                });
            }
            db_bytes = size;
            let id = Hash::of_list(&chunks);
            db_dump = Some(id);
            blobs.push((id, chunks, size));
        }
        fsutil::failpoint("db-stored");

        let platform_tree = to_tree(platform_items, root_meta(platform));
        // An imported folder's root is our temporary extraction: its metadata means nothing.
        let site_root = opts
            .source
            .is_none()
            .then(|| root_meta(&site_path))
            .flatten();
        let site_tree = to_tree(site_items, site_root);
        let bindings_tree = to_tree(binding_items, None);
        let files = platform_tree.files() + site_tree.files() + bindings_tree.files();
        let bytes = platform_tree.bytes() + site_tree.bytes() + bindings_tree.bytes() + db_bytes;
        let mut tree_id = |t: &Tree, present: bool| -> Result<Option<Hash>> {
            if !present {
                return Ok(None);
            }
            let b = store_tree(&sink, t)?;
            let id = b.0;
            blobs.push(b);
            Ok(Some(id))
        };
        let p_id = tree_id(&platform_tree, platform_exists)?;
        let s_id = tree_id(&site_tree, site_exists)?;
        let b_id = tree_id(&bindings_tree, true)?;
        // Invariant 1: every pack is durable and indexed before the snapshot row exists.
        sink.finish()?;
        fsutil::failpoint("before-commit");
        let rec = SnapshotRecord {
            id: new_snapshot_id(cat)?,
            site: site.uri.clone(),
            kind: opts.kind.clone(),
            label: opts.label.clone(),
            pinned: opts.pinned,
            time: opts.source.as_ref().map_or_else(fsutil::now, |s| s.time),
            platform_path: platform.to_path_buf(),
            platform_tree: p_id,
            site_dir: site.site_dir.clone(),
            site_tree: s_id,
            bindings_tree: b_id,
            db_kind: db.as_ref().map(|d| d.kind().to_string()),
            db_url: db.as_ref().map(|d| d.redacted()),
            db_dump,
            files,
            bytes,
            bytes_read: counters.bytes_read.load(Ordering::Relaxed),
            db_bytes,
            bytes_added: sink.stats.bytes_added.load(Ordering::Relaxed),
            duration_ms: started.elapsed().as_millis() as u64,
            note: opts.source.as_ref().map(|s| s.note.clone()),
        };
        if opts.source.is_some() {
            // An imported site folder is a temporary extraction: nothing to cache.
            let tmp = site_path.as_os_str().as_bytes();
            cache_rows.retain(|(p, _)| !p.starts_with(tmp));
        }
        cat.commit_snapshot(&rec, &blobs, &cache_rows)?;
        fsutil::failpoint("after-commit");
        Ok(rec)
    })();
    pb.finish_and_clear();
    if res.is_err() {
        // Stop the writer thread without indexing its last pack (packs it closed earlier are
        // durable and indexed: reused by the next capture, else garbage for gc).
        sink.abort();
    }
    res
}

/// Reads a blob's bytes back (verified chunk by chunk).
pub fn read_blob(repo: &Repo, id: &Hash) -> Result<Vec<u8>> {
    let (chunks, size) = repo.cat.blob(id)?;
    let mut out = Vec::with_capacity(size as usize);
    let mut r = store::ChunkReader::new(&repo.data_dir(), &repo.cat);
    r.copy_chunks(&chunks, &mut out)?;
    Ok(out)
}

/// Loads one of a snapshot's trees; a failure names the snapshot and the tree.
pub fn snapshot_tree(repo: &Repo, snap: &SnapshotRecord, which: &str, id: &Hash) -> Result<Tree> {
    load_tree(repo, id).map_err(|e| match e {
        Error::Corrupt(m) => Error::Corrupt(format!("snapshot {}, {which} tree: {m}", snap.id)),
        other => other,
    })
}

/// Loads a stored tree.
pub fn load_tree(repo: &Repo, id: &Hash) -> Result<Tree> {
    let t = Tree::decode(&read_blob(repo, id)?)?;
    t.validate()?;
    Ok(t)
}

/// Opens a stored blob for streaming, one verified chunk at a time.
pub fn blob_reader<'a>(repo: &'a Repo, id: &Hash) -> Result<store::BlobReader<'a>> {
    let (chunks, _) = repo.cat.blob(id)?;
    Ok(store::BlobReader::new(&repo.data_dir(), &repo.cat, chunks))
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

        let got: Vec<Vec<u8>> = walk_platform(root, &[])
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
