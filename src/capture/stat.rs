//! What a walk keeps of an entry's status, and listing and `lstat`ing a folder's entries
//! without an allocation per entry: `getdents64` into one buffer per folder, then `statx`
//! relative to the open folder by the name in that buffer. Through `std::fs::read_dir` each
//! entry cost a name allocation for the listing, another for `file_name`, and a shared count
//! taken and dropped; a repeat snapshot of a 50,000-file platform spent a fifth of its walk
//! outside the kernel.

use crate::tree::Kind;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, StatxFlags};
use rustix::io::Errno;
use std::ffi::CStr;
use std::fs;
use std::mem::MaybeUninit;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// An entry's status as the walk records it (the fields `std::fs::Metadata` would give).
#[derive(Debug, Clone, Copy)]
pub(super) struct Stat {
    /// None for sockets, FIFOs and devices (not site content).
    pub(super) kind: Option<Kind>,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime_ns: i64,
    pub(super) ctime_ns: i64,
    pub(super) size: u64,
    pub(super) dev: u64,
    pub(super) ino: u64,
}

fn kind_of(ft: FileType) -> Option<Kind> {
    match ft {
        FileType::RegularFile => Some(Kind::File),
        FileType::Directory => Some(Kind::Dir),
        FileType::Symlink => Some(Kind::Symlink),
        _ => None,
    }
}

impl Stat {
    /// From `std`'s metadata (of `symlink_metadata`: not following a symlink).
    pub(super) fn of(md: &fs::Metadata) -> Stat {
        Stat {
            kind: kind_of(FileType::from_raw_mode(md.mode())),
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
            size: md.size(),
            dev: md.dev(),
            ino: md.ino(),
        }
    }

    fn of_statx(s: &rustix::fs::Statx) -> Stat {
        let ns = |t: rustix::fs::StatxTimestamp| t.tv_sec * 1_000_000_000 + i64::from(t.tv_nsec);
        Stat {
            kind: kind_of(FileType::from_raw_mode(u32::from(s.stx_mode))),
            mode: u32::from(s.stx_mode) & 0o7777,
            uid: s.stx_uid,
            gid: s.stx_gid,
            mtime_ns: ns(s.stx_mtime),
            ctime_ns: ns(s.stx_ctime),
            size: s.stx_size,
            // As std makes `st_dev` of a statx result, so the files cache's rows match.
            dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
            ino: s.stx_ino,
        }
    }

    fn of_stat(s: &rustix::fs::Stat) -> Stat {
        Stat {
            kind: kind_of(FileType::from_raw_mode(s.st_mode)),
            mode: s.st_mode & 0o7777,
            uid: s.st_uid,
            gid: s.st_gid,
            mtime_ns: s.st_mtime * 1_000_000_000 + s.st_mtime_nsec as i64,
            ctime_ns: s.st_ctime * 1_000_000_000 + s.st_ctime_nsec as i64,
            size: s.st_size as u64,
            dev: s.st_dev,
            ino: s.st_ino,
        }
    }
}

/// `lstat` of `name` inside the open folder `dir` (`fstatat` where `statx` is missing or
/// refused, as in some containers).
pub(super) fn lstat_at(dir: impl AsFd, name: &CStr) -> std::io::Result<Stat> {
    let flags = AtFlags::SYMLINK_NOFOLLOW;
    match rustix::fs::statx(&dir, name, flags, StatxFlags::BASIC_STATS) {
        Ok(s) => Ok(Stat::of_statx(&s)),
        Err(Errno::NOSYS) => rustix::fs::statat(&dir, name, flags)
            .map(|s| Stat::of_stat(&s))
            .map_err(Into::into),
        Err(e) => Err(e.into()),
    }
}

/// Opens folder `dir` for listing (following a symlink, as `read_dir` does).
pub(super) fn open_folder(dir: &Path) -> std::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(dir, flags, Mode::empty())?)
}

/// Bytes of directory entries read per `getdents64` call.
const LIST_BUFFER: usize = 32 << 10;

/// Calls `each(name, kind)` for every entry of the open folder `fd` but `.` and `..`; `kind`
/// is what the listing says. Stops at the first error of the listing or of `each`.
pub(super) fn each_entry<E>(
    fd: &OwnedFd,
    mut each: impl FnMut(&CStr, Listed) -> Result<(), E>,
) -> Result<(), Failed<E>> {
    let mut buf = [MaybeUninit::<u8>::uninit(); LIST_BUFFER];
    let mut list = RawDir::new(fd, &mut buf);
    while let Some(e) = list.next() {
        let e = e.map_err(|e| Failed::Listing(e.into()))?;
        let name = e.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let listed = match e.file_type() {
            FileType::Unknown => Listed::Unknown,
            ft => Listed::Known(kind_of(ft)),
        };
        each(name, listed).map_err(Failed::Entry)?;
    }
    Ok(())
}

/// Why [`each_entry`] stopped.
#[derive(Debug)]
pub(super) enum Failed<E> {
    /// Listing the folder failed.
    Listing(std::io::Error),
    /// The call for one entry failed.
    Entry(E),
}

/// An entry's kind as a folder listing gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listed {
    /// The listing's kind (None: a socket, FIFO or device).
    Known(Option<Kind>),
    /// The file system does not give kinds in listings: only `lstat` tells.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// The status through `statx` and through `fstatat` are what `std` gives for files,
    /// folders and symlinks (device numbers included: the files cache compares them).
    #[test]
    fn status_matches_std() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"hello").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("f", d.path().join("l")).unwrap();
        let fd = open_folder(d.path()).unwrap();
        let mut names = Vec::new();
        each_entry::<()>(&fd, |n, k| {
            names.push((n.to_bytes().to_vec(), k));
            Ok(())
        })
        .unwrap();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(names.len(), 3);
        for (name, listed) in names {
            let p = d.path().join(std::ffi::OsStr::from_bytes(&name));
            let want = Stat::of(&std::fs::symlink_metadata(&p).unwrap());
            let c = std::ffi::CString::new(name).unwrap();
            let got = lstat_at(&fd, &c).unwrap();
            let old = Stat::of_stat(
                &rustix::fs::statat(&fd, c.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).unwrap(),
            );
            for s in [got, old] {
                assert_eq!(format!("{s:?}"), format!("{want:?}"), "{}", p.display());
            }
            if let Listed::Known(k) = listed {
                assert_eq!(k, want.kind);
            }
        }
    }
}
