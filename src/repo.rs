//! The repository: a folder (mode 0700) holding `catalog.sqlite`, `data/` (packs), `lock` and,
//! when encrypted, `keys/` (key files). It owns where a repository is, creating one, opening
//! one (unlocking an encrypted one's master key with a passphrase the caller got), the writer
//! lock (a kernel `flock` on `lock`, released if the holder dies, with the holder's pid, host,
//! command and start time written inside for messages; readers never take it), and sealing the
//! store's objects. Every chunk and object of an encrypted repository goes through its
//! [`ChunkCodec`] or [`Repo::encode_object`].

use crate::catalog::{Catalog, CatalogIndex};
use crate::crypto::{Binding, KeyStore, MasterKey, Passphrase};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::store::{self, Backend, ChunkCodec, ChunkReader, ChunkSink, LocalBackend, ObjectKind};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open repository: its folder, its catalogue, the backend holding its objects, and the
/// writer lock once taken.
pub struct Repo {
    /// The repository's folder.
    pub root: PathBuf,
    /// Its catalogue.
    pub cat: Catalog,
    backend: Arc<dyn Backend>,
    lock: Option<File>,
    key: Option<Unlocked>,
    /// The last few trees this command decoded (see [`crate::read::shared_tree`]).
    trees: std::sync::Mutex<Vec<(crate::hash::Hash, Arc<crate::tree::Tree>)>>,
}

/// An encrypted repository's master key and the id of the key file that opened it.
#[derive(Clone)]
struct Unlocked {
    key: Arc<MasterKey>,
    key_id: String,
}

/// Seals objects as [`Repo::encode_object`] does, without borrowing the repository (the
/// thread that refreshes a remote lock holds one).
#[derive(Clone)]
pub struct ObjectSealer(Option<Arc<MasterKey>>);

impl ObjectSealer {
    /// As [`Repo::encode_object`].
    pub fn encode(&self, kind: ObjectKind, name: &str, plain: &[u8]) -> Result<Vec<u8>> {
        match &self.0 {
            Some(k) => k.seal(object_binding(kind, name), plain),
            None => Ok(plain.to_vec()),
        }
    }
}

/// The default repository: `$SITESNAP_REPO`, else `/var/lib/sitesnap` for root, else
/// `$XDG_DATA_HOME/sitesnap` or `~/.local/share/sitesnap`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SITESNAP_REPO") {
        return PathBuf::from(p);
    }
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/sitesnap");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("sitesnap");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/sitesnap")
}

impl Repo {
    /// The catalogue file of the repository at `root`.
    pub fn catalog_path(root: &Path) -> PathBuf {
        root.join("catalog.sqlite")
    }

    /// The local folder of this repository's objects (packs). Prefer [`Repo::backend`].
    pub fn data_dir(&self) -> PathBuf {
        store::local_data_dir(&self.root)
    }

    /// A local scratch folder (unfinished uploads, database dump staging).
    pub fn tmp_dir(&self) -> PathBuf {
        store::local_tmp_dir(&self.root)
    }

    /// Where this repository's objects live.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// A chunk reader over this repository (one per thread).
    pub fn chunk_reader(&self) -> ChunkReader<'_> {
        ChunkReader::with_backend(self.backend.clone(), &self.cat, self.codec())
    }

    /// A chunk reader using another catalogue connection (for reader threads).
    pub fn chunk_reader_with<'a>(&self, cat: &'a Catalog) -> ChunkReader<'a> {
        ChunkReader::with_backend(self.backend.clone(), cat, self.codec())
    }

    /// Opens another catalogue file with this repository's sealing (an old catalogue during
    /// `repair catalog`).
    pub fn open_catalog(&self, path: &Path) -> Result<Catalog> {
        let mut c = Catalog::open(path)?;
        c.set_sealing(self.key.as_ref().map(|u| u.key.clone()));
        Ok(c)
    }

    /// How this repository names and stores chunks (sealed when it is encrypted).
    pub fn codec(&self) -> ChunkCodec {
        match &self.key {
            Some(u) => ChunkCodec::sealed(u.key.clone()),
            None => ChunkCodec::plain(),
        }
    }

    /// Is this repository encrypted?
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// The id of the key file that opened this (encrypted) repository.
    pub fn key_id(&self) -> Option<&str> {
        self.key.as_ref().map(|u| u.key_id.as_str())
    }

    /// The key files of this repository.
    pub fn keys(&self) -> KeyStore {
        KeyStore::of_repo(&self.root)
    }

    /// Writes a key file for another passphrase of this (encrypted) repository; returns its id.
    pub fn add_key(&self, pass: &Passphrase) -> Result<String> {
        let u = self.key.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "repository {} is not encrypted: it has no keys",
                self.root.display()
            ))
        })?;
        self.keys().add(&u.key, pass, &hostname())
    }

    /// Does the repository at `root` need a passphrase to open (is it encrypted)? True when it
    /// has key files, or its catalogue says it is encrypted.
    pub fn needs_passphrase(root: &Path) -> Result<bool> {
        if KeyStore::of_repo(root).any()? {
            return Ok(true);
        }
        let cat_path = Self::catalog_path(root);
        Ok(cat_path.is_file() && Catalog::open(&cat_path)?.is_encrypted()?)
    }

    /// Unlocks the master key of the repository at `root` if it is encrypted. `pass` is
    /// required then (an error line if missing or wrong).
    fn unlock(root: &Path, pass: Option<&Passphrase>) -> Result<Option<Unlocked>> {
        if !Self::needs_passphrase(root)? {
            return Ok(None);
        }
        let pass = pass.ok_or_else(|| {
            Error::Refused(format!(
                "repository {} is encrypted: give its passphrase with --password-file FILE, \
                 $SITESNAP_PASSWORD_FILE or on a terminal",
                root.display()
            ))
        })?;
        let (key, key_id) = KeyStore::of_repo(root).unlock(pass, root)?;
        Ok(Some(Unlocked {
            key: Arc::new(key),
            key_id,
        }))
    }

    /// Starts a chunk sink writing new packs into this repository.
    pub fn chunk_sink(&self) -> Result<ChunkSink> {
        ChunkSink::start_with(
            self.backend.clone(),
            Arc::new(CatalogIndex::new(Self::catalog_path(&self.root))),
            self.codec(),
        )
    }

    fn with_catalog(root: &Path, mut cat: Catalog, key: Option<Unlocked>) -> Repo {
        cat.set_sealing(key.as_ref().map(|u| u.key.clone()));
        Repo {
            root: root.to_path_buf(),
            cat,
            backend: Arc::new(LocalBackend::new(&store::local_data_dir(root))),
            lock: None,
            key,
            trees: Default::default(),
        }
    }

    /// Trees kept decoded at most (a restore reads a platform, a site folder, bindings and
    /// extra paths).
    const KEPT_TREES: usize = 4;

    /// A tree this command decoded before, by id.
    pub(crate) fn kept_tree(&self, id: &crate::hash::Hash) -> Option<Arc<crate::tree::Tree>> {
        let trees = self.trees.lock().expect("trees");
        trees.iter().find(|(k, _)| k == id).map(|(_, t)| t.clone())
    }

    /// Keeps a decoded tree for the rest of the command (the oldest of more than
    /// [`Self::KEPT_TREES`] goes).
    pub(crate) fn keep_tree(&self, id: crate::hash::Hash, t: Arc<crate::tree::Tree>) {
        let mut trees = self.trees.lock().expect("trees");
        trees.retain(|(k, _)| *k != id);
        if trees.len() >= Self::KEPT_TREES {
            trees.remove(0);
        }
        trees.push((id, t));
    }

    /// Creates a repository at `root` (the folder may exist but must not hold one); encrypted
    /// under a new random master key when `encrypt` gives the first passphrase.
    pub fn init(root: &Path, encrypt: Option<&Passphrase>) -> Result<Repo> {
        let cat_path = Self::catalog_path(root);
        if cat_path.exists() {
            return Err(Error::Invalid(format!(
                "{} already holds a sitesnap repository",
                root.display()
            )));
        }
        let data = store::local_data_dir(root);
        if !data_is_empty(&data)? {
            return Err(Error::Refused(format!(
                "{} holds repository data but no catalogue; run `sitesnap repair catalog` to \
                 rebuild the catalogue from it (init refuses to start over on top of it)",
                root.display()
            )));
        }
        if KeyStore::of_repo(root).any()? {
            return Err(Error::Refused(format!(
                "{} holds key files but no catalogue; run `sitesnap repair catalog` (init refuses \
                 to start over on top of them)",
                root.display()
            )));
        }
        fsutil::create_private_dir(root)?;
        let key = match encrypt {
            Some(pass) => {
                let key = MasterKey::generate()?;
                let key_id = KeyStore::of_repo(root).add(&key, pass, &hostname())?;
                Some(Unlocked {
                    key: Arc::new(key),
                    key_id,
                })
            }
            None => None,
        };
        fsutil::create_private_dir(&data)?;
        fsutil::create_private_dir(&store::local_tmp_dir(root))?;
        drop(fsutil::create_private_file(&cat_path)?);
        let lock = root.join("lock");
        if !lock.exists() {
            drop(fsutil::create_private_file(&lock)?);
        }
        let cat = Catalog::open(&cat_path)?;
        if key.is_some() {
            cat.set_encrypted()?;
        }
        for f in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
            let p = root.join(f);
            if p.exists() {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).at(&p)?;
            }
        }
        fsutil::sync_dir(root)?;
        Ok(Self::with_catalog(root, cat, key))
    }

    /// Opens an existing repository (no lock taken). An encrypted one needs `pass`.
    pub fn open(root: &Path, pass: Option<&Passphrase>) -> Result<Repo> {
        let cat_path = Self::catalog_path(root);
        if !cat_path.is_file() {
            return Err(Error::NoRepository(root.to_path_buf()));
        }
        let key = Self::unlock(root, pass)?;
        let cat = Catalog::open(&cat_path)?;
        Ok(Self::with_catalog(root, cat, key))
    }

    /// Takes the exclusive writer lock, waiting up to `wait`. A lock file left by a holder that
    /// died (the kernel released its flock) is reported as stale and taken over.
    pub fn lock(&mut self, command: &str, wait: Duration) -> Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let path = self.root.join("lock");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .at(&path)?;
        let start = Instant::now();
        loop {
            match f.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= wait {
                        let mut holder = String::new();
                        let _ = f.read_to_string(&mut holder);
                        let holder = holder.trim();
                        return Err(Error::Locked(if holder.is_empty() {
                            "another sitesnap process".to_string()
                        } else {
                            holder.to_string()
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        let mut old = String::new();
        f.read_to_string(&mut old).at(&path)?;
        let old = old.trim();
        if !old.is_empty() {
            eprintln!("sitesnap: notice: broke a stale lock ({old}; that process is gone)");
        }
        let host = hostname();
        let info = format!(
            "pid {} on {host} ({command}, since {})",
            std::process::id(),
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S")
        );
        // The holder line is best effort: on a full disk the flock alone is the lock, so `gc`
        // and `verify` can still run and make room.
        let written = f
            .set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|_| f.write_all(info.as_bytes()))
            .and_then(|()| f.sync_data());
        if written.is_err() {
            let _ = f.set_len(0);
        }
        self.lock = Some(f);
        Ok(())
    }

    /// Does this handle hold the writer lock?
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// The file a catalogue is rebuilt into before it replaces `catalog.sqlite`.
    pub fn rebuild_path(root: &Path) -> PathBuf {
        root.join("catalog.sqlite.new")
    }

    /// Opens the repository at `root` for `repair catalog`: takes the writer lock, and opens a
    /// fresh, empty catalogue at [`Repo::rebuild_path`] (one left by a killed repair is
    /// removed first). The old `catalog.sqlite` is neither needed nor touched.
    pub fn open_rebuilding(root: &Path, wait: Duration, pass: Option<&Passphrase>) -> Result<Repo> {
        let data = store::local_data_dir(root);
        if !data.is_dir() {
            return Err(Error::NoRepository(root.to_path_buf()));
        }
        let new = Self::rebuild_path(root);
        let key = Self::unlock(root, pass)?;
        // Take the lock before touching anything: the lock needs a handle, so first one on a
        // throwaway in-memory catalogue.
        let mut repo = Self::with_catalog(root, Catalog::open(Path::new(":memory:"))?, key.clone());
        repo.lock("repair catalog", wait)?;
        for f in [new.clone(), sidecar(&new, "-wal"), sidecar(&new, "-shm")] {
            match fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&f, e)),
            }
        }
        drop(fsutil::create_private_file(&new)?);
        repo.cat = Catalog::open(&new)?;
        repo.cat.set_sealing(key.as_ref().map(|u| u.key.clone()));
        if key.is_some() {
            repo.cat.set_encrypted()?;
        }
        Ok(repo)
    }

    /// Puts a catalogue rebuilt by [`Repo::open_rebuilding`] in place of `catalog.sqlite`
    /// with one atomic rename, and returns the repository opened on it (still locked). The
    /// rebuilt file is first made self-contained (no write-ahead log) and durable; the old
    /// catalogue's log is checkpointed into it and removed, so it cannot be replayed into the
    /// new file.
    pub fn install_rebuilt(mut self) -> Result<Repo> {
        let root = self.root.clone();
        let new = Self::rebuild_path(&root);
        self.cat.make_self_contained()?;
        let lock = self.lock.take();
        let key = self.key.clone();
        drop(self);
        fs::File::open(&new).at(&new)?.sync_all().at(&new)?;
        fsutil::failpoint("repair-before-rename");
        let old = Self::catalog_path(&root);
        if old.is_file() {
            // Best effort: an unreadable old catalogue has nothing to checkpoint.
            if let Ok(c) = Catalog::open(&old) {
                let _ = c.make_self_contained();
            }
        }
        for f in [sidecar(&old, "-wal"), sidecar(&old, "-shm")] {
            match fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&f, e)),
            }
        }
        fs::rename(&new, &old).at(&old)?;
        fsutil::sync_dir(&root)?;
        fsutil::failpoint("repair-renamed");
        let mut repo = Self::with_catalog(&root, Catalog::open(&old)?, key);
        repo.lock = lock;
        Ok(repo)
    }

    /// The bytes to store for a new object of `kind` (manifest, blob list, site object, pin)
    /// named `name` whose plain encoding is `plain`. Every such object is written through
    /// here, and read back through [`Repo::decode_object`]. Identity for an unencrypted
    /// repository; sealed and bound to its kind and name in an encrypted one.
    pub fn encode_object(&self, kind: ObjectKind, name: &str, plain: &[u8]) -> Result<Vec<u8>> {
        match &self.key {
            Some(u) => u.key.seal(object_binding(kind, name), plain),
            None => Ok(plain.to_vec()),
        }
    }

    /// A sealer of objects that outlives this borrow (see [`ObjectSealer`]).
    pub fn object_sealer(&self) -> ObjectSealer {
        ObjectSealer(self.key.as_ref().map(|u| u.key.clone()))
    }

    /// The plain bytes of a stored object (the inverse of [`Repo::encode_object`]).
    pub fn decode_object(&self, kind: ObjectKind, name: &str, stored: &[u8]) -> Result<Vec<u8>> {
        match &self.key {
            Some(u) => {
                let what = format!("{} object {name}", kind.folder().unwrap_or("pack"));
                u.key.open(object_binding(kind, name), stored, &what)
            }
            None => Ok(stored.to_vec()),
        }
    }

    /// A name derived from `input` for an object whose plain hash would reveal what it names
    /// (a site object's URI): hex SHA-256 in an unencrypted repository, hex HMAC-SHA-256
    /// under the MAC key in an encrypted one.
    pub fn keyed_name(&self, input: &[u8]) -> String {
        match &self.key {
            Some(u) => u.key.keyed_name(input),
            None => crate::hash::Hash::of(input).to_hex(),
        }
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        if let Some(f) = self.lock.take() {
            // Clear the holder line before the flock goes with the file.
            let _ = f.set_len(0);
            let _ = f.unlock();
        }
    }
}

/// What a sealed object is bound to: its kind's folder and its name.
fn object_binding(kind: ObjectKind, name: &str) -> Binding<'_> {
    Binding::Object(kind.folder().unwrap_or("packs"), name)
}

/// `path` with `suffix` appended to its file name (SQLite's `-wal`/`-shm` files).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Does a repository's `data/` folder hold nothing (absent, or only an empty `tmp/`)?
fn data_is_empty(data: &Path) -> Result<bool> {
    if !data.is_dir() {
        return Ok(true);
    }
    for e in fs::read_dir(data).at(data)? {
        let e = e.at(data)?;
        if e.file_name() != "tmp" {
            return Ok(false);
        }
        let tmp = e.path();
        if !tmp.is_dir() || fs::read_dir(&tmp).at(&tmp)?.next().is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// This machine's host name as recorded in manifests, key files and locks: `$SITESNAP_HOST` when
/// set and not empty (several servers sharing one bucket under one host name, or tests playing
/// two servers on one machine), else the system's host name ("unknown-host" if it cannot be
/// read).
pub fn hostname() -> String {
    if let Ok(h) = std::env::var("SITESNAP_HOST")
        && !h.trim().is_empty()
    {
        return h.trim().to_string();
    }
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is a live, writable buffer and its exact length is passed, so
    // gethostname writes only inside it.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if r != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
