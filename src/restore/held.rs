//! The folder that holds the site folder (`sites/`), held open for the whole restore. It is
//! opened one component at a time from `/`, none of them a symlink; every write a restore makes
//! inside it then goes through the held handle (`/proc/self/fd/N/…`, which the kernel resolves
//! to the folder that was opened, whatever is at its path now), so a path component swapped
//! for a symlink while the restore runs cannot redirect a write. The site step also checks
//! that the folder at the path is still the one held, and fails (so the restore is rolled
//! back) when it is not.

use crate::error::{Error, IoContext, Result};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// A folder held open, and the path that reaches it through the handle.
#[derive(Debug)]
pub struct Held {
    /// The folder's own path (absolute).
    dir: PathBuf,
    /// The open folder.
    file: File,
    /// `/proc/self/fd/N`: the folder, reached through the handle.
    via: PathBuf,
}

/// The path that reaches an open file or folder through its descriptor.
fn via_fd(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

impl Held {
    /// Opens `dir` (absolute, without `.` or `..`) one component at a time from `/`, refusing
    /// a component that is a symlink or not a folder.
    pub fn open(dir: &Path) -> Result<Held> {
        let mut cur = File::open("/").at("/")?;
        let mut seen = PathBuf::from("/");
        for c in dir.components() {
            let name = match c {
                Component::RootDir => continue,
                Component::Normal(n) => n,
                _ => {
                    return Err(Error::Invalid(format!(
                        "{}: not a plain absolute path",
                        dir.display()
                    )));
                }
            };
            seen.push(name);
            let next = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
                .open(via_fd(&cur).join(name));
            cur = next.map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => Error::Refused(format!(
                    "{} is a symlink or not a folder: restore refused (nothing written through it)",
                    crate::fsutil::shown(&seen)
                )),
                _ => Error::io(&seen, e),
            })?;
        }
        let via = via_fd(&cur);
        Ok(Held {
            dir: dir.to_path_buf(),
            file: cur,
            via,
        })
    }

    /// `p` reached through the handle when it lies in the held folder, else `p` itself.
    pub fn at(&self, p: &Path) -> PathBuf {
        match p.strip_prefix(&self.dir) {
            Ok(rest) if rest.as_os_str().is_empty() => self.via.clone(),
            Ok(rest) => self.via.join(rest),
            Err(_) => p.to_path_buf(),
        }
    }

    /// Fails when the folder at the held path is no longer the one held (it was moved, or
    /// replaced by a symlink).
    pub fn check(&self) -> Result<()> {
        let held = self.file.metadata().at(&self.dir)?;
        let same = fs::symlink_metadata(&self.dir)
            .map(|m| m.is_dir() && m.dev() == held.dev() && m.ino() == held.ino())
            .unwrap_or(false);
        if same {
            return Ok(());
        }
        Err(Error::Refused(format!(
            "{} was replaced (by a symlink?) while the restore ran; nothing was written through it",
            crate::fsutil::shown(&self.dir)
        )))
    }

    /// A path through the handle shown as the folder's own path again.
    fn unmap_path(&self, p: PathBuf) -> PathBuf {
        match p.strip_prefix(&self.via) {
            Ok(rest) => self.dir.join(rest),
            Err(_) => p,
        }
    }

    /// An error with every path through the handle shown as the folder's own path.
    pub fn unmap(&self, e: Error) -> Error {
        let text = |s: String| s.replace(&*self.via.to_string_lossy(), &self.dir.to_string_lossy());
        match e {
            Error::Io { path, source } => Error::Io {
                path: self.unmap_path(path),
                source,
            },
            Error::Invalid(s) => Error::Invalid(text(s)),
            Error::Refused(s) => Error::Refused(text(s)),
            Error::Corrupt(s) => Error::Corrupt(text(s)),
            Error::RolledBack { site, step, cause } => Error::RolledBack {
                site,
                step,
                cause: Box::new(self.unmap(*cause)),
            },
            Error::RollbackFailed {
                site,
                step,
                journal,
                cause,
                undo,
            } => Error::RollbackFailed {
                site,
                step,
                journal,
                cause: Box::new(self.unmap(*cause)),
                undo: Box::new(self.unmap(*undo)),
            },
            other => other,
        }
    }
}
