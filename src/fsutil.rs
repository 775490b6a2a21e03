//! Small filesystem helpers shared by every module: durable writes (temp file, fsync, rename,
//! fsync of the folder), private file modes, path validation against `..`, absolute paths and
//! escaping symlinks, and the test-only fail points used by the crash tests. Nothing here knows
//! about sites or snapshots.

use crate::error::{Error, IoContext, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Opens a folder and fsyncs it so that a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// Makes everything written to the file system holding `path` durable: one `syncfs` (file
/// contents, new files, renames and folders alike; also other programs' pending writes to it).
pub fn sync_filesystem(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(path).at(path)?;
    // SAFETY: the descriptor belongs to `f`, which stays open for the whole call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(Error::io(path, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The folder of the last file opened, kept open for the next ones: a walk or a restore
/// takes neighbouring files in turn, and opening a file by name inside its open folder
/// ([`open_at`]) resolves one name instead of every folder of its path (a file of the Rust
/// documentation tree lies eight folders below `/`).
#[derive(Default)]
pub struct OpenFolder {
    kept: Kept,
    /// The root folder of [`OpenFolder::get_beneath`], kept open: its path, and whether it
    /// was opened pinned (see [`Root::pinned`]).
    root: Option<(PathBuf, bool, File)>,
}

/// The folder files are reached from by [`OpenFolder::get_beneath`].
#[derive(Debug, Clone, Copy)]
pub struct Root<'a> {
    /// The folder as the files' paths name it (their paths start with it).
    pub named: &'a Path,
    /// Where it was resolved to when it was walked, if that is to be kept: the folder is then
    /// opened there without following any symlink (`openat2` with `RESOLVE_NO_SYMLINKS` on
    /// that absolute path), so a folder of that path swapped for a symlink since the walk is
    /// refused too. `None`: the folder is opened by `named`, following symlinks on the way.
    pub pinned: Option<&'a Path>,
}

impl<'a> Root<'a> {
    /// A root opened by its name, following symlinks on the way to it.
    pub fn named(named: &'a Path) -> Root<'a> {
        Root {
            named,
            pinned: None,
        }
    }
}

/// The folder kept open, and its path.
#[derive(Default)]
struct Kept {
    path: PathBuf,
    dir: Option<File>,
}

impl Kept {
    /// `dir`, opened with `open` unless it is the folder kept already.
    fn get(
        &mut self,
        dir: &Path,
        open: impl FnOnce() -> std::io::Result<File>,
    ) -> std::io::Result<&File> {
        if self.dir.is_none() || self.path != dir {
            self.dir = None;
            self.dir = Some(open()?);
            dir.clone_into(&mut self.path);
        }
        Ok(self.dir.as_ref().expect("open folder"))
    }
}

impl OpenFolder {
    /// The open folder `dir`, which lies inside `root`, reached from `root` without following
    /// any symlink on the way (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): a
    /// walk never descends through a symlink, so a folder that is one when a file is read was
    /// swapped for it since. Where the kernel has no `openat2` (before Linux 5.6), only `dir`
    /// itself is checked, as [`OpenFolder::get`] does.
    pub fn get_beneath(&mut self, root: Root<'_>, dir: &Path) -> std::io::Result<&File> {
        let Ok(rel) = dir.strip_prefix(root.named) else {
            return self.get(dir);
        };
        let (path, pinned) = match root.pinned {
            Some(p) => (p, true),
            None => (root.named, false),
        };
        if self
            .root
            .as_ref()
            .is_none_or(|(p, pin, _)| p != path || *pin != pinned)
        {
            self.root = None;
            let f = if pinned {
                open_pinned(path)?
            } else {
                open_dir(path)?
            };
            self.root = Some((path.to_path_buf(), pinned, f));
        }
        let root_dir = &self.root.as_ref().expect("open root").2;
        self.kept.get(dir, || match open_beneath(root_dir, rel) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => open_folder(dir),
            other => other,
        })
    }

    /// The open folder `dir` (opened if it is not the one kept; a symlink is not followed).
    pub fn get(&mut self, dir: &Path) -> std::io::Result<&File> {
        self.kept.get(dir, || open_folder(dir))
    }
}

/// Opens the folder `dir`, following symlinks on the way and `dir` itself if it is one.
fn open_dir(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
}

/// Opens the folder at the absolute path `dir` without following any symlink on the way
/// (`openat2` with `RESOLVE_NO_SYMLINKS`); where the kernel has no `openat2`, as [`open_dir`].
fn open_pinned(dir: &Path) -> std::io::Result<File> {
    match openat2(libc::AT_FDCWD, dir, libc::RESOLVE_NO_SYMLINKS) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => open_dir(dir),
        other => other,
    }
}

/// Opens the folder `dir`, not following it if it is a symlink.
fn open_folder(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
}

/// Opens the folder `rel` inside the open folder `root` without following a symlink on the
/// way nor leaving `root` (`openat2`, Linux 5.6; `ENOSYS` before).
fn open_beneath(root: &File, rel: &Path) -> std::io::Result<File> {
    use std::os::fd::AsRawFd;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(
        root.as_raw_fd(),
        rel,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
}

/// Opens the folder `path` (relative to the open folder `at`, or absolute) read-only with
/// `openat2` and the `resolve` flags (`ENOSYS` before Linux 5.6).
fn openat2(at: libc::c_int, path: &Path, resolve: u64) -> std::io::Result<File> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: open_how is plain integers, for which all zeroes is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: `at` is an open folder or AT_FDCWD, `c` a NUL-terminated path and `how` an
    // open_how of the size passed, all outliving the call; a descriptor it returns is owned by
    // the File made of it and by nothing else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            at,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat2 and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd as libc::c_int) })
}

/// Opens `name` inside the open folder `dir` with `flags` (and `mode` when it creates it);
/// `O_CLOEXEC` is always added. The name must be one path component.
pub fn open_at(
    dir: &File,
    name: &std::ffi::OsStr,
    flags: libc::c_int,
    mode: u32,
) -> std::io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `dir` is an open folder and `c` a NUL-terminated name, both outliving the
    // call; a descriptor it returns is owned by the File made of it and by nothing else.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Creates a folder (and parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).at(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).at(dir)
}

/// Creates a new file with mode 0600 (fails if it exists).
pub fn create_private_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .at(path)
}

/// Writes `data` to `path` atomically and durably: temp file beside it, fsync, rename, fsync of
/// the folder. The file gets `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_sibling(path, "tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .at(&tmp)?;
        f.write_all(data).at(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    sync_dir(dir)
}

/// A name beside `path` that no one else uses: `.<name>.sitesnap-<tag>-<random>`.
pub fn temp_sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.sitesnap-{tag}-{}", random_hex(4)))
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source works");
    hex::encode(buf)
}

/// Checks that `rel` is a relative path that stays inside its base: no absolute path, no `..`,
/// no empty path. `what` names the thing in the error.
pub fn check_relative(rel: &str, what: &str) -> Result<()> {
    let p = Path::new(rel);
    if rel.is_empty() {
        return Err(Error::Invalid(format!("{what} is empty")));
    }
    if p.is_absolute() {
        return Err(Error::Invalid(format!(
            "{what} '{rel}' must be relative, not absolute"
        )));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "{what} '{rel}' escapes its folder ('..' is not allowed)"
                )));
            }
        }
    }
    Ok(())
}

/// Resolves `path` and checks that no symlink among its existing ancestors leads outside `base`
/// (which must itself be canonical). Used before writing into a site or platform folder.
pub fn check_inside(base: &Path, path: &Path) -> Result<()> {
    // Walk up to the deepest existing ancestor and canonicalize it.
    let mut probe = path.to_path_buf();
    while fs::symlink_metadata(&probe).is_err() {
        if !probe.pop() {
            break;
        }
    }
    if probe.as_os_str().is_empty() {
        return Ok(());
    }
    let real = fs::canonicalize(&probe).at(&probe)?;
    if !real.starts_with(base) {
        return Err(Error::Invalid(format!(
            "{} leads outside {} (through a symlink)",
            path.display(),
            base.display()
        )));
    }
    Ok(())
}

/// Test-only fail point: when the environment variable `SITESNAP_FAILPOINT` names `point`
/// (optionally `point:N` to fire at the N-th hit), the process kills itself with SIGKILL, exactly
/// as a crash or `kill -9` would. With `@stop` appended (`point[:N]@stop`) it stops itself with
/// SIGSTOP instead, so a test can change the world at that moment and SIGCONT it. Several
/// points may be given, comma-separated. Compiled to nothing in release builds.
#[inline]
pub fn failpoint(point: &str) {
    #[cfg(debug_assertions)]
    if let Some(how) = fired(point) {
        signal_at(point, how);
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// A fail point where a step can fail instead of crash: as [`failpoint`], and with `@error`
/// appended (`point[:N]@error`) it returns an error naming the point, so a test can check what a
/// step that FAILS there leaves behind. Always `Ok` in release builds.
#[inline]
pub fn failpoint_or_error(point: &str) -> Result<()> {
    #[cfg(debug_assertions)]
    if let Some(how) = fired(point) {
        if how.fails() {
            return Err(Error::Invalid(format!(
                "fail point {point}: failed on purpose"
            )));
        }
        signal_at(point, how);
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
    Ok(())
}

/// A fail point in front of a system call: as [`failpoint`], and with `@error` appended
/// (`point[:N]@error`; `@late-error` fails the same way 2 s later) it fails as the call would
/// when permission is denied (`EACCES`), so a
/// test run as root can see what a step whose call fails leaves behind, with the message the
/// real failure gives. Always `Ok` in release builds.
#[inline]
pub fn failpoint_io(point: &str) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    if let Some(how) = fired(point) {
        if how.fails() {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        signal_at(point, how);
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
    Ok(())
}

/// What a fail point that fired does.
#[cfg(debug_assertions)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    Kill,
    Stop,
    Error,
    /// An error after a pause of [`LATE_ERROR`] (`@late-error`): a step that fails while
    /// work beside it (a dump) is well under way.
    LateError,
}

/// The pause before a `@late-error` fail point fails.
#[cfg(debug_assertions)]
const LATE_ERROR: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(debug_assertions)]
impl Fired {
    /// Is this an error (after its pause, for a late one)?
    fn fails(self) -> bool {
        match self {
            Fired::Error => true,
            Fired::LateError => {
                std::thread::sleep(LATE_ERROR);
                true
            }
            Fired::Kill | Fired::Stop => false,
        }
    }
}

/// Whether `point` fires at this hit (`SITESNAP_FAILPOINT`), and how.
#[cfg(debug_assertions)]
fn fired(point: &str) -> Option<Fired> {
    use std::sync::Mutex;
    static HITS: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
    let spec = std::env::var("SITESNAP_FAILPOINT").ok()?;
    for one in spec.split(',') {
        let (one, how) = if let Some(o) = one.strip_suffix("@stop") {
            (o, Fired::Stop)
        } else if let Some(o) = one.strip_suffix("@late-error") {
            (o, Fired::LateError)
        } else if let Some(o) = one.strip_suffix("@error") {
            (o, Fired::Error)
        } else {
            (one, Fired::Kill)
        };
        let (name, nth) = match one.split_once(':') {
            Some((n, k)) => (n, k.parse::<u64>().unwrap_or(1)),
            None => (one, 1),
        };
        if name != point {
            continue;
        }
        let mut hits = HITS.lock().unwrap();
        let count = match hits.iter_mut().find(|(n, _)| n == point) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                hits.push((point.to_string(), 1));
                1
            }
        };
        if count == nth {
            return Some(how);
        }
    }
    None
}

/// Kills or stops this process at a fail point (an `@error` one reached where a step cannot
/// fail does nothing).
#[cfg(debug_assertions)]
fn signal_at(point: &str, how: Fired) {
    let sig = match how {
        Fired::Stop => {
            eprintln!("sitesnap: fail point {point} reached, stopping");
            libc::SIGSTOP
        }
        Fired::Kill => {
            eprintln!("sitesnap: fail point {point} reached, killing myself");
            libc::SIGKILL
        }
        Fired::Error | Fired::LateError => return,
    };
    // SAFETY: kill(2) and getpid(2) take plain integers and touch no memory of ours;
    // signalling our own process is the point (a simulated crash).
    unsafe {
        libc::kill(libc::getpid(), sig);
    }
}

/// The current time; debug builds honour `SITESNAP_TEST_NOW` (RFC 3339) so retention tests can
/// fabricate snapshot times.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    #[cfg(debug_assertions)]
    if let Ok(v) = std::env::var("SITESNAP_TEST_NOW")
        && let Ok(t) = chrono::DateTime::parse_from_rfc3339(&v)
    {
        return t.with_timezone(&chrono::Utc);
    }
    chrono::Utc::now()
}

/// Test-only pause point: when `SITESNAP_PAUSE` names `point` and `SITESNAP_PAUSE_FILE` names a
/// file, the process creates that file (holding its pid) and waits until someone deletes it.
/// The lock tests use it to hold the repository lock for exactly as long as they need. Compiled
/// to nothing in release builds.
#[inline]
pub fn pausepoint(point: &str) {
    #[cfg(debug_assertions)]
    {
        if std::env::var("SITESNAP_PAUSE").ok().as_deref() != Some(point) {
            return;
        }
        let Some(file) = std::env::var_os("SITESNAP_PAUSE_FILE") else {
            return;
        };
        let file = PathBuf::from(file);
        if fs::write(&file, std::process::id().to_string()).is_err() {
            return;
        }
        while file.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Bytes free for an unprivileged writer on the filesystem holding `path` (or its nearest
/// existing ancestor), and that filesystem's device number.
pub fn available_bytes(path: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut probe = path.to_path_buf();
    while fs::symlink_metadata(&probe).is_err() {
        if !probe.pop() {
            return Err(Error::Invalid(format!(
                "{}: no existing folder above it",
                path.display()
            )));
        }
    }
    let dev = fs::metadata(&probe).at(&probe)?.dev();
    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(probe.as_os_str()))
        .map_err(|_| Error::Invalid(format!("{}: NUL in path", probe.display())))?;
    // SAFETY: all-zero bytes are a valid `statvfs` (plain integers), which statvfs(3) fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path that outlives the call and `st` is a valid,
    // writable statvfs buffer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(Error::io(&probe, std::io::Error::last_os_error()));
    }
    Ok((st.f_bavail as u64 * st.f_frsize as u64, dev))
}

pub use crate::shown::{shown, shown_text};

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder below the root is opened, the root itself too; a symlink anywhere on the way
    /// below the root is refused, and so is one as the folder itself; the folder kept open is
    /// the one asked for.
    #[test]
    fn get_beneath_never_follows_a_symlink_below_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("site");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"inside").unwrap();
        fs::create_dir_all(d.path().join("out/b")).unwrap();
        fs::write(d.path().join("out/b/f"), b"outside").unwrap();
        std::os::unix::fs::symlink(d.path().join("out"), root.join("link")).unwrap();
        let mut of = OpenFolder::default();
        let read = |f: &File| {
            let file = open_at(f, std::ffi::OsStr::new("f"), libc::O_RDONLY, 0).unwrap();
            std::io::read_to_string(file).unwrap()
        };
        let named = Root::named(&root);
        assert_eq!(
            read(of.get_beneath(named, &root.join("a/b")).unwrap()),
            "inside"
        );
        assert!(of.get_beneath(named, &root).is_ok());
        assert!(of.get_beneath(named, &root.join("link/b")).is_err());
        assert!(of.get_beneath(named, &root.join("link")).is_err());
        // Plain `get` checks only the last folder: it follows `link` on the way.
        assert_eq!(read(of.get(&root.join("link/b")).unwrap()), "outside");
        assert!(of.get(&root.join("link")).is_err());
    }

    /// A pinned root is opened where it was resolved, without following a symlink on the way
    /// there: the files' paths may name it through a symlink (`via`), but once a folder of
    /// its resolved path is a symlink itself, nothing below it is reached.
    #[test]
    fn a_pinned_root_is_reached_without_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real/x");
        fs::create_dir_all(real.join("a")).unwrap();
        fs::write(real.join("a/f"), b"inside").unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("via")).unwrap();
        let named = d.path().join("via/x");
        let root = Root {
            named: &named,
            pinned: Some(&real),
        };
        let mut of = OpenFolder::default();
        let f = of.get_beneath(root, &named.join("a")).unwrap();
        let file = open_at(f, std::ffi::OsStr::new("f"), libc::O_RDONLY, 0).unwrap();
        assert_eq!(std::io::read_to_string(file).unwrap(), "inside");
        // `real` swapped for a symlink to a copy of it.
        fs::rename(d.path().join("real"), d.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(d.path().join("moved"), d.path().join("real")).unwrap();
        let mut of = OpenFolder::default();
        assert!(of.get_beneath(root, &named.join("a")).is_err());
        assert!(
            of.get_beneath(Root::named(&named), &named.join("a"))
                .is_ok()
        );
    }
}
