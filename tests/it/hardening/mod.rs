//! Issue 11 (the part outside `db/`): restores that either complete or leave the site exactly
//! as it was, `recover` per site and `--abort`, symlinks where files are expected, import
//! modes and owners, export atomicity, retention overflow, site-folder validation, a full
//! disk, and escaped display. Shared here: whole-world fingerprints and immutable files.

mod db_rollback;
mod full_disk;
mod import;
mod inputs;
mod rollback;
mod sites;
mod swap;
mod tarballs;

use crate::support::*;
use std::path::{Path, PathBuf};

/// Everything under the world folder except the repository: path, type, mode, owner, size,
/// content and file mtimes (folder mtimes change whenever a temporary name is made beside
/// a target, so they are left out).
pub fn world_print(w: &World) -> Vec<String> {
    let root = w.dir.path();
    live_records(root, |rel, _| !rel.starts_with("repo"))
        .into_iter()
        .map(|r| {
            let mtime = if r.kind == "dir" { 0 } else { r.mtime_ns };
            format!(
                "{} {} {:o} {}:{} {} {:?} {:?} {mtime}",
                r.path_str(),
                r.kind,
                r.mode,
                r.uid,
                r.gid,
                r.size,
                r.target,
                r.sha
            )
        })
        .collect()
}

/// Asserts two world prints are equal, naming the first lines that differ.
pub fn assert_same_world(what: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let extra: Vec<_> = got.iter().filter(|l| !want.contains(l)).take(5).collect();
    let missing: Vec<_> = want.iter().filter(|l| !got.contains(l)).take(5).collect();
    panic!(
        "{what}: the world changed\nnew or changed: {extra:#?}\nmissing or changed: {missing:#?}"
    );
}

/// The state of every journal, oldest first.
pub fn journal_states(w: &World) -> Vec<String> {
    let c = w.catalog();
    let mut st = c
        .prepare("SELECT state FROM journals ORDER BY started, rowid")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The id of the one unfinished journal.
pub fn open_journal(w: &World) -> String {
    w.catalog()
        .query_row(
            "SELECT id FROM journals WHERE state IN ('open', 'rolling-back')",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// A file or folder made immutable (`chattr +i`: even root cannot rename, replace or link
/// it) until dropped.
pub struct Immutable(PathBuf);

impl Immutable {
    pub fn new(p: &Path) -> Immutable {
        chattr(p, "+i");
        Immutable(p.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        chattr(&self.0, "-i");
    }
}

/// Sets or clears a file attribute (`+i`, `-i`), asserting it took.
pub fn chattr(p: &Path, flag: &str) {
    let st = std::process::Command::new("chattr")
        .arg(flag)
        .arg(p)
        .status()
        .expect("chattr");
    assert!(st.success(), "chattr {flag} {}", p.display());
}

/// A small tmpfs mounted at `dir` until dropped (the tests run as root).
pub struct SmallDisk(pub PathBuf);

impl SmallDisk {
    pub fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", dir.display());
        SmallDisk(dir.to_path_buf())
    }

    /// Fills the disk until about `free` bytes are left (in one file, `fill`).
    pub fn leave_free(&self, free: u64) {
        let fill = self.0.join("fill");
        let _ = std::fs::remove_file(&fill);
        let avail = free_bytes(&self.0);
        if avail > free {
            std::fs::write(&fill, vec![0x5au8; (avail - free) as usize]).unwrap();
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Bytes free on the filesystem of `p` (df).
pub fn free_bytes(p: &Path) -> u64 {
    let o = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// True when running as root (mounting a tmpfs, chattr).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}
