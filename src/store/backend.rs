//! Where repository objects live. Objects are immutable and named by their content (a pack is
//! named by the SHA-256 of its bytes), so a backend never renames nor appends from the caller's
//! point of view: an object is written whole through an [`Upload`] and appears under its name
//! at once, complete and durable, or not at all. Reads are whole objects or byte ranges, so a
//! far-away backend (an S3 bucket) serves them with ranged GETs. [`LocalBackend`] keeps objects
//! in the repository's `data/` folder; it is the only code that knows that layout.

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The kinds of objects a repository holds. Each kind has its own place in each backend
/// (locally: packs in `data/<xx>/`, the others in `data/<kind folder>/<xx>/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A pack of compressed chunks (`store::pack`), named by the SHA-256 of its bytes.
    Pack,
    /// A snapshot manifest, named by the snapshot id (16 hex digits).
    Snapshot,
    /// The chunk list of a tree or dump blob, named by the blob id (64 hex digits).
    BlobList,
    /// A site registration (one object per version), named by a hash of the URI and version.
    Site,
    /// A pin marker of a pinned snapshot, named by the snapshot id.
    Pin,
    /// A key file of an encrypted repository (the master key sealed by a passphrase), named
    /// by its 16-hex-digit id. Only remotes hold these as objects (`push` copies them from the
    /// repository's `keys/`); they are not in [`ObjectKind::ALL`].
    Key,
    /// A lock of a remote (who runs `gc`/`prune` or `push` on it, since when), named by a
    /// random 16-hex-digit id. Only remotes hold these; not in [`ObjectKind::ALL`].
    Lock,
}

impl ObjectKind {
    /// Every kind, packs first.
    pub const ALL: [ObjectKind; 5] = [
        ObjectKind::Pack,
        ObjectKind::Snapshot,
        ObjectKind::BlobList,
        ObjectKind::Site,
        ObjectKind::Pin,
    ];

    /// The local folder of this kind under `data/` (`None`: packs, directly in `data/`).
    pub fn folder(self) -> Option<&'static str> {
        match self {
            ObjectKind::Pack => None,
            ObjectKind::Snapshot => Some("snapshots"),
            ObjectKind::BlobList => Some("blobs"),
            ObjectKind::Site => Some("sites"),
            ObjectKind::Pin => Some("pins"),
            ObjectKind::Key => Some("keys"),
            ObjectKind::Lock => Some("locks"),
        }
    }

    /// How many lowercase hex digits a name of this kind has.
    pub fn name_len(self) -> usize {
        match self {
            ObjectKind::Snapshot | ObjectKind::Pin | ObjectKind::Key | ObjectKind::Lock => 16,
            ObjectKind::Pack | ObjectKind::BlobList | ObjectKind::Site => 64,
        }
    }

    /// How messages call an object of this kind.
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Pack => "pack",
            ObjectKind::Snapshot => "manifest",
            ObjectKind::BlobList => "blob list",
            ObjectKind::Site => "site object",
            ObjectKind::Pin => "pin",
            ObjectKind::Key => "key file",
            ObjectKind::Lock => "lock",
        }
    }

    /// Is `name` a well-formed name for this kind?
    pub fn is_name(self, name: &str) -> bool {
        name.len() == self.name_len() && is_lower_hex(name)
    }
}

fn is_lower_hex(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A typed object name: its kind and its content name (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectName {
    /// What the object is.
    pub kind: ObjectKind,
    /// Its content name (64 hex digits for packs).
    pub name: String,
}

impl ObjectName {
    /// An object name of `kind`.
    pub fn new(kind: ObjectKind, name: &str) -> ObjectName {
        ObjectName {
            kind,
            name: name.to_string(),
        }
    }

    /// A pack's object name.
    pub fn pack(name: &str) -> ObjectName {
        ObjectName {
            kind: ObjectKind::Pack,
            name: name.to_string(),
        }
    }

    /// Is `name` a well-formed content name (64 lowercase hex digits)?
    pub fn is_content_name(name: &str) -> bool {
        ObjectKind::Pack.is_name(name)
    }
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.label(), self.name)
    }
}

/// An object as listed: its name and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's name.
    pub name: ObjectName,
    /// Its size in bytes.
    pub size: u64,
}

/// An upload left unfinished by a writer that stopped (a crash, a failed capture): a temporary
/// file locally, an incomplete multipart upload on S3. gc removes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    /// The backend's id for it.
    pub id: String,
    /// Bytes it holds.
    pub size: u64,
}

/// An object being written. Bytes go in through `Write`; [`Upload::flush_all`] pushes them out
/// of user-space buffers; [`Upload::commit`] makes the object durable and visible under its
/// name (known only once all bytes are written, since objects are named by content).
pub trait Upload: Write + Send {
    /// Flushes buffered bytes (not yet durable).
    fn flush_all(&mut self) -> Result<()>;
    /// Makes the object durable and visible as `name`. Idempotent for content-named objects:
    /// an object already there under `name` holds the same bytes.
    fn commit(self: Box<Self>, name: &ObjectName) -> Result<()>;
    /// Drops the unfinished object; nothing becomes visible.
    fn discard(self: Box<Self>);
}

/// Where repository objects live. Implementations are shared between threads.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Every object of `kind`, with sizes, sorted by name.
    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>>;
    /// An object's size, or `None` if it does not exist.
    fn size(&self, name: &ObjectName) -> Result<Option<u64>>;
    /// When an object was last written, or `None` if it does not exist.
    fn modified(&self, name: &ObjectName) -> Result<Option<std::time::SystemTime>>;
    /// `len` bytes of an object from `offset` (an error if the object is shorter).
    fn read_range(&self, name: &ObjectName, offset: u64, len: usize) -> Result<Vec<u8>>;
    /// A whole object.
    fn read(&self, name: &ObjectName) -> Result<Vec<u8>>;
    /// Starts writing a new object of `kind`.
    fn create(&self, kind: ObjectKind) -> Result<Box<dyn Upload>>;
    /// Removes an object, durably; `Ok(false)` if it was not there.
    fn remove(&self, name: &ObjectName) -> Result<bool>;
    /// Unfinished uploads left behind, sorted by id.
    fn incomplete(&self) -> Result<Vec<Incomplete>>;
    /// Removes one unfinished upload (durably); `Ok(false)` if it was gone.
    fn remove_incomplete(&self, id: &str) -> Result<bool>;

    /// Writes a small object whole: atomic and durable.
    fn put(&self, name: &ObjectName, data: &[u8]) -> Result<()> {
        let mut up = self.create(name.kind)?;
        if let Err(e) = up.write_all(data) {
            up.discard();
            return Err(Error::Invalid(format!("cannot write {name}: {e}")));
        }
        up.flush_all()?;
        up.commit(name)
    }

    /// Writes groups of small objects whole, in order: every object of a group is durable and
    /// visible before any object of a later group becomes visible, and `done(i)` runs once
    /// group `i` is (also when it is empty). A failure leaves the earlier groups, and
    /// possibly part of the failing one, in place. By default each group's objects are
    /// [`put`](Backend::put) from several threads.
    fn put_groups(&self, groups: &[ObjectGroup<'_>], done: &dyn Fn(usize)) -> Result<()> {
        put_groups_each(self, groups, done)
    }
}

/// Small objects written together (see [`Backend::put_groups`]): names and bytes.
pub type ObjectGroup<'a> = &'a [(ObjectName, Vec<u8>)];

/// [`Backend::put_groups`] one object at a time: each group's objects are put from up to 16
/// threads (their `fsync`s are issued together, so a file system can group them).
pub fn put_groups_each<B: Backend + ?Sized>(
    backend: &B,
    groups: &[ObjectGroup<'_>],
    done: &dyn Fn(usize),
) -> Result<()> {
    for (i, g) in groups.iter().enumerate() {
        put_parallel(backend, g)?;
        done(i);
    }
    Ok(())
}

/// Puts objects durably, several at a time; the first failure is returned once every thread
/// has stopped.
fn put_parallel<B: Backend + ?Sized>(backend: &B, objects: ObjectGroup<'_>) -> Result<()> {
    if let [(name, bytes)] = objects {
        return backend.put(name, bytes);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = objects.len().min(16);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((name, bytes)) = objects.get(i) else {
                            return Ok(());
                        };
                        backend.put(name, bytes)?;
                    }
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("object writer panicked"))
            .collect::<Result<Vec<()>>>()
            .map(|_| ())
    })
}

/// Open files kept for range reads: a restore reads many chunks from few packs.
const OPEN_FILES: usize = 64;

/// Objects in a local folder (the repository's `data/`): a pack named `ab12...` is the file
/// `data/ab/ab12...`; uploads are written to `data/tmp/` and renamed into place after an fsync,
/// followed by an fsync of the folder.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    open: Mutex<HashMap<String, Arc<File>>>,
}

impl LocalBackend {
    /// A backend over the folder `data` (the repository's `data/`).
    pub fn new(data: &Path) -> LocalBackend {
        LocalBackend {
            root: data.to_path_buf(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The folder of unfinished uploads.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The file of an object.
    pub fn path(&self, name: &ObjectName) -> PathBuf {
        pack_path(&self.kind_dir(name.kind), &name.name)
    }

    /// The folder objects of `kind` fan out under (by their first two hex digits).
    fn kind_dir(&self, kind: ObjectKind) -> PathBuf {
        match kind.folder() {
            None => self.root.clone(),
            Some(f) => self.root.join(f),
        }
    }

    fn file(&self, name: &ObjectName) -> Result<Arc<File>> {
        let mut open = self.open.lock().expect("open files");
        let p = self.path(name);
        let key = p.to_string_lossy().into_owned();
        if let Some(f) = open.get(&key) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(&p).at(&p)?);
        if open.len() >= OPEN_FILES {
            open.clear();
        }
        open.insert(key, f.clone());
        Ok(f)
    }

    /// A new temporary file's path for an upload of `kind`.
    fn tmp_path(&self, kind: ObjectKind) -> PathBuf {
        self.tmp_dir()
            .join(format!("{}-{}", tmp_prefix(kind), fsutil::random_hex(8)))
    }

    /// [`Backend::put_groups`] for a batch: every object is written to a temporary file
    /// first and the missing fan-out folders are made, then one `syncfs` makes them all
    /// durable; then each group is renamed into place and made durable with one more
    /// `syncfs` (an empty group needs none). A few `syncfs` instead of two `fsync`s per
    /// object; the price is that a `syncfs` also flushes other programs' writes to the same
    /// file system. A crash before a group's `syncfs` leaves temporary files (gc removes
    /// them) or whole objects nothing refers to yet, never a visible object with lost bytes.
    fn put_staged(&self, groups: &[ObjectGroup<'_>], done: &dyn Fn(usize)) -> Result<()> {
        let mut staged: Vec<Vec<(PathBuf, PathBuf)>> = Vec::with_capacity(groups.len());
        let res = groups.iter().try_for_each(|g| {
            staged.push(Vec::with_capacity(g.len()));
            let out = staged.last_mut().expect("pushed");
            g.iter().try_for_each(|(name, bytes)| {
                out.push((self.write_tmp(name.kind, bytes)?, self.path(name)));
                Ok(())
            })
        });
        let res = res
            .and_then(|_| self.make_fanout_dirs(groups))
            .and_then(|_| {
                fsutil::failpoint("objects-staged");
                fsutil::sync_filesystem(&self.root)
            });
        if let Err(e) = res {
            staged.iter().flatten().for_each(|(t, _)| {
                let _ = fs::remove_file(t);
            });
            return Err(e);
        }
        for (i, g) in staged.iter().enumerate() {
            let res = rename_group(g).and_then(|_| match g.is_empty() {
                true => Ok(()),
                false => fsutil::sync_filesystem(&self.root),
            });
            if let Err(e) = res {
                // The temporary files not renamed yet (those renamed are gone already).
                staged[i..].iter().flatten().for_each(|(t, _)| {
                    let _ = fs::remove_file(t);
                });
                return Err(e);
            }
            done(i);
        }
        Ok(())
    }

    /// Writes `bytes` to a new temporary file (not yet durable); returns its path.
    fn write_tmp(&self, kind: ObjectKind, bytes: &[u8]) -> Result<PathBuf> {
        let tmp = self.tmp_path(kind);
        let mut f = fsutil::create_private_file(&tmp)?;
        if let Err(e) = f.write_all(bytes) {
            drop(f);
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e));
        }
        Ok(tmp)
    }

    /// Creates the kind and fan-out folders the objects of `groups` go to that do not exist
    /// yet (made durable by the caller's `syncfs`).
    fn make_fanout_dirs(&self, groups: &[ObjectGroup<'_>]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in groups.iter().copied().flatten() {
            let dir = self.kind_dir(name.kind).join(&name.name[..2]);
            if seen.insert(dir.clone()) && !dir.exists() {
                let kind_dir = self.kind_dir(name.kind);
                if !kind_dir.exists() {
                    fsutil::create_private_dir(&kind_dir)?;
                }
                fsutil::create_private_dir(&dir)?;
            }
        }
        Ok(())
    }

    fn remove_path(p: &Path) -> Result<bool> {
        match fs::remove_file(p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(p, e)),
        }
    }
}

/// The prefix of an unfinished upload's temporary file.
fn tmp_prefix(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Pack => "pack",
        ObjectKind::Snapshot => "manifest",
        ObjectKind::BlobList => "blobs",
        ObjectKind::Site => "site",
        ObjectKind::Pin => "pin",
        ObjectKind::Key => "key",
        ObjectKind::Lock => "lock",
    }
}

/// From this many objects on, [`LocalBackend::put_groups`] makes a batch durable with `syncfs`
/// (a `snapshot --all` batch of sites); a single snapshot's few objects are `fsync`ed one by
/// one, which flushes nothing but them.
const SYNCFS_MIN_OBJECTS: usize = 8;

/// Renames a group's temporary files into place (made durable by the caller).
fn rename_group(group: &[(PathBuf, PathBuf)]) -> Result<()> {
    for (tmp, dest) in group {
        fs::rename(tmp, dest).at(dest)?;
    }
    Ok(())
}

/// Path of a pack file by name under a local `data/` folder.
pub fn pack_path(data: &Path, name: &str) -> PathBuf {
    data.join(&name[..2]).join(name)
}

/// Files directly inside `dir` that are content-named objects starting with `prefix`.
fn list_fanout_dir(dir: &Path, prefix: &str, kind: ObjectKind) -> Result<Vec<ObjectInfo>> {
    let mut out = Vec::new();
    for f in fs::read_dir(dir).at(dir)? {
        let f = f.at(dir)?;
        let n = f.file_name().to_string_lossy().into_owned();
        if kind.is_name(&n) && n.starts_with(prefix) {
            let md = f.metadata().at(f.path())?;
            if md.is_file() {
                out.push(ObjectInfo {
                    name: ObjectName { kind, name: n },
                    size: md.len(),
                });
            }
        }
    }
    Ok(out)
}

impl Backend for LocalBackend {
    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>> {
        let root = self.kind_dir(kind);
        let mut out = Vec::new();
        if kind != ObjectKind::Pack && !root.is_dir() {
            return Ok(out);
        }
        for d in fs::read_dir(&root).at(&root)? {
            let d = d.at(&root)?;
            let name = d.file_name().to_string_lossy().into_owned();
            if name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) && d.path().is_dir() {
                out.extend(list_fanout_dir(&d.path(), &name, kind)?);
            }
        }
        out.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        Ok(out)
    }

    fn size(&self, name: &ObjectName) -> Result<Option<u64>> {
        let p = self.path(name);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    fn modified(&self, name: &ObjectName) -> Result<Option<std::time::SystemTime>> {
        let p = self.path(name);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.modified().at(&p)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    fn read_range(&self, name: &ObjectName, offset: u64, len: usize) -> Result<Vec<u8>> {
        let f = self.file(name)?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset).at(self.path(name))?;
        Ok(buf)
    }

    fn read(&self, name: &ObjectName) -> Result<Vec<u8>> {
        let p = self.path(name);
        fs::read(&p).at(&p)
    }

    fn create(&self, kind: ObjectKind) -> Result<Box<dyn Upload>> {
        let tmp = self.tmp_path(kind);
        let file = fsutil::create_private_file(&tmp)?;
        Ok(Box::new(LocalUpload {
            dir: self.kind_dir(kind),
            tmp,
            file: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
        }))
    }

    fn remove(&self, name: &ObjectName) -> Result<bool> {
        let p = self.path(name);
        self.open
            .lock()
            .expect("open files")
            .remove(p.to_string_lossy().as_ref());
        let removed = Self::remove_path(&p)?;
        if removed && let Some(d) = p.parent() {
            fsutil::sync_dir(d)?;
        }
        Ok(removed)
    }

    fn incomplete(&self) -> Result<Vec<Incomplete>> {
        let tmp = self.tmp_dir();
        let mut out = Vec::new();
        if !tmp.is_dir() {
            return Ok(out);
        }
        for f in fs::read_dir(&tmp).at(&tmp)? {
            let f = f.at(&tmp)?;
            let md = fs::symlink_metadata(f.path()).at(f.path())?;
            if !md.is_dir() {
                out.push(Incomplete {
                    id: f.file_name().to_string_lossy().into_owned(),
                    size: md.len(),
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Below [`SYNCFS_MIN_OBJECTS`] objects, one `fsync` per object and folder, as
    /// [`put`](Backend::put) does; from there on a whole batch with three `syncfs` at most
    /// (see [`LocalBackend::put_staged`]).
    fn put_groups(&self, groups: &[ObjectGroup<'_>], done: &dyn Fn(usize)) -> Result<()> {
        if groups.iter().map(|g| g.len()).sum::<usize>() < SYNCFS_MIN_OBJECTS {
            return put_groups_each(self, groups, done);
        }
        self.put_staged(groups, done)
    }

    fn remove_incomplete(&self, id: &str) -> Result<bool> {
        if id.contains('/') || id == ".." || id == "." {
            return Err(Error::Invalid(format!("bad upload id '{id}'")));
        }
        let tmp = self.tmp_dir();
        let removed = Self::remove_path(&tmp.join(id))?;
        if removed {
            fsutil::sync_dir(&tmp)?;
        }
        Ok(removed)
    }
}

/// A local upload: a private file in `data/tmp/`.
struct LocalUpload {
    dir: PathBuf,
    tmp: PathBuf,
    file: Option<std::io::BufWriter<File>>,
}

impl Write for LocalUpload {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("open upload").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("open upload").flush()
    }
}

impl Upload for LocalUpload {
    fn flush_all(&mut self) -> Result<()> {
        self.flush().at(&self.tmp)
    }

    fn commit(mut self: Box<Self>, name: &ObjectName) -> Result<()> {
        let file = self.file.take().expect("open upload");
        let file = file
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().at(&self.tmp)?;
        drop(file);
        let dir = self.dir.join(&name.name[..2]);
        if !dir.exists() {
            let new_kind_dir = !self.dir.exists();
            if new_kind_dir {
                fsutil::create_private_dir(&self.dir)?;
            }
            fsutil::create_private_dir(&dir)?;
            fsutil::sync_dir(&self.dir)?;
            if new_kind_dir && let Some(up) = self.dir.parent() {
                fsutil::sync_dir(up)?;
            }
        }
        let dest = dir.join(&name.name);
        fs::rename(&self.tmp, &dest).at(&dest)?;
        fsutil::sync_dir(&dir)
    }

    fn discard(mut self: Box<Self>) {
        drop(self.file.take());
        let _ = fs::remove_file(&self.tmp);
    }
}
