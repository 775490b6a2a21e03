//! `restore <id> --target DIR [--include GLOB]...`: a snapshot's files (or some of them) and its
//! dump written into a new folder, for a single file or subtree back, or a look at an old
//! state. It never touches the live site: no pre-restore snapshot, no journal, no lock; the
//! folder must be new (or empty) and outside every platform the site was or is on. Written
//! into a temporary sibling and renamed into place, so a failure leaves no half folder.

use super::write::write_tree;
use crate::browse::SnapPath;
use crate::catalog::SnapshotRecord;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::read;
use crate::repo::Repo;
use crate::tree::{Entry, Kind, Tree, TreePart};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What `to_target` wrote (or would write).
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    /// The folder.
    pub target: PathBuf,
    /// Regular files written (the dump counts as one).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Every path written, as `ls` shows it.
    pub paths: Vec<String>,
}

/// Which snapshot paths to write: all of them, or those a pattern matches (a matched folder
/// brings everything below it). Patterns are shell globs over `ls` paths (`site/files/*.pdf`,
/// `platform/**/*.info`, `/etc/nginx/*`, `database`).
#[derive(Debug, Clone, Default)]
pub struct Include(Vec<glob::Pattern>);

impl Include {
    /// Parses the patterns; a bad one is a usage error naming it.
    pub fn new(globs: &[String]) -> Result<Include> {
        let ps = globs
            .iter()
            .map(|g| {
                glob::Pattern::new(g).map_err(|e| Error::Usage(format!("--include '{g}': {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Include(ps))
    }

    /// Does `path` (or a folder above it) match?
    fn wants(&self, path: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let opts = glob::MatchOptions {
            require_literal_separator: true,
            ..Default::default()
        };
        let mut p = Some(Path::new(path));
        while let Some(x) = p {
            let s = x.to_string_lossy();
            if !s.is_empty() && self.0.iter().any(|g| g.matches_with(&s, opts)) {
                return true;
            }
            p = x.parent();
        }
        false
    }
}

/// Refuses a target inside a platform the snapshot or the site now uses, or one that exists
/// and is not an empty folder. Returns the target as an absolute path.
pub fn check_target(target: &Path, platforms: &[PathBuf]) -> Result<PathBuf> {
    let abs = std::path::absolute(target).at(target)?;
    let name = abs
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a folder name", abs.display())))?;
    let parent = abs.parent().unwrap_or(Path::new("/"));
    let parent = fs::canonicalize(parent).at(parent)?;
    let real = parent.join(name);
    for p in platforms {
        let p = fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        if real.starts_with(&p) || p.starts_with(&real) {
            return Err(Error::Refused(format!(
                "{}: inside (or around) the live platform {}; --target must be a folder outside the site",
                real.display(),
                p.display()
            )));
        }
    }
    match fs::read_dir(&real).map(|mut d| d.next().is_none()) {
        Ok(true) => Ok(real),
        Ok(false) => Err(Error::Refused(format!(
            "{}: not empty; --target must be a new or empty folder",
            real.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(real),
        Err(e) => Err(Error::io(&real, e)),
    }
}

/// The entries of `t` that `inc` wants, with the folders above them (made up when the tree
/// has none, as for binding files).
fn filtered(t: &Tree, at: &SnapPath, inc: &Include) -> Tree {
    let mut entries: Vec<Entry> = Vec::new();
    let mut dirs: BTreeSet<Vec<u8>> = BTreeSet::new();
    for e in &t.entries {
        if !inc.wants(&at.display(&e.path_str())) {
            continue;
        }
        let mut p = e.rel_path().parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.as_os_str().as_encoded_bytes().to_vec());
            p = d.parent();
        }
        entries.push(e.clone());
    }
    for d in dirs {
        if !entries.iter().any(|e| e.path == d) {
            let dir = t.entries.iter().find(|e| e.path == d).cloned();
            entries.push(dir.unwrap_or_else(|| made_up_dir(d)));
        }
    }
    let mut out = Tree {
        entries,
        root: t.root,
    };
    out.sort();
    out
}

fn made_up_dir(path: Vec<u8>) -> Entry {
    // SAFETY: getuid/getgid take no arguments and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Entry {
        path,
        kind: Kind::Dir,
        mode: 0o700,
        uid,
        gid,
        mtime_ns: fsutil::now().timestamp_nanos_opt().unwrap_or(0),
        size: 0,
        target: None,
        chunks: Vec::new(),
    }
}

/// Writes what `inc` selects of `snap` into `target` (checked with [`check_target`] first):
/// `platform/`, `site/`, `extra/`, `bindings/<absolute path>` and the dump as
/// `database.sql` (`database.sqlite` for SQLite). With `dry_run`, only says what it would write.
pub fn to_target(
    repo: &Repo,
    snap: &SnapshotRecord,
    target: &Path,
    inc: &Include,
    dry_run: bool,
) -> Result<TargetOutcome> {
    let mut out = TargetOutcome {
        target: target.to_path_buf(),
        files: 0,
        bytes: 0,
        paths: Vec::new(),
    };
    let mut trees = Vec::new();
    for part in TreePart::ALL {
        let Some(t) = read::part_tree(repo, snap, part)? else {
            continue;
        };
        let at = SnapPath::parse(part.as_str())?;
        let f = filtered(&t, &at, inc);
        for e in f.entries.iter().filter(|e| e.kind != Kind::Dir) {
            out.paths.push(at.display(&e.path_str()));
        }
        out.files += f.files();
        out.bytes += f.bytes();
        if !f.entries.is_empty() {
            trees.push((part, f));
        }
    }
    let dump = snap.db_dump.filter(|_| inc.wants("database"));
    if dump.is_some() {
        out.paths.push("database".into());
        out.files += 1;
        out.bytes += snap.db_bytes;
    }
    if out.paths.is_empty() {
        return Err(Error::Invalid(format!(
            "--include matches nothing in snapshot {}",
            snap.id
        )));
    }
    if !dry_run {
        write_all(repo, snap, target, &trees, dump)?;
    }
    Ok(out)
}

fn write_all(
    repo: &Repo,
    snap: &SnapshotRecord,
    target: &Path,
    trees: &[(TreePart, Tree)],
    dump: Option<crate::hash::Hash>,
) -> Result<()> {
    let tmp = fsutil::temp_sibling(target, "restore");
    fsutil::create_private_dir(&tmp)?;
    let written = (|| -> Result<()> {
        for (part, t) in trees {
            let dest = tmp.join(part.as_str());
            write_tree(repo, t, &dest, &snap.id)?;
        }
        if let Some(id) = dump {
            let name = match snap.db_kind.as_deref() {
                Some("sqlite") => "database.sqlite",
                _ => "database.sql",
            };
            let p = tmp.join(name);
            let mut f = fsutil::create_private_file(&p)?;
            let mut r = read::blob_reader(repo, &id)?;
            std::io::copy(&mut r, &mut f).map_err(|e| read_error(e, &p, snap))?;
            f.sync_all().at(&p)?;
        }
        super::write::sync_tree(&tmp)?;
        if target.exists() {
            fs::remove_dir(target).at(target)?;
        }
        fs::rename(&tmp, target).at(target)?;
        fs::set_permissions(target, fs::Permissions::from_mode(0o700)).at(target)?;
        fsutil::sync_dir(target.parent().unwrap_or(Path::new("/")))
    })();
    if written.is_err() && tmp.exists() {
        let _ = super::write::remove_tree(&tmp);
    }
    written
}

/// A read error of the dump stream: a corrupt chunk names the snapshot, anything else the file.
fn read_error(e: std::io::Error, p: &Path, snap: &SnapshotRecord) -> Error {
    match e.get_ref().and_then(|x| x.downcast_ref::<Error>()) {
        Some(Error::Corrupt(m)) => {
            Error::Corrupt(format!("snapshot {}, database dump: {m}", snap.id))
        }
        _ => Error::io(p, e),
    }
}
