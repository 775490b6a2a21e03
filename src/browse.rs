//! Browsing a stored snapshot without restoring it (`ls`, `dump`): its parts (`platform/`,
//! `site/`, `extra/`, `bindings/` and the database dump), the entries under a path, one file's
//! content or the dump as a verified stream. Read-only; paths come from the user and are only
//! compared with stored paths, never joined onto a live folder.

use crate::catalog::SnapshotRecord;
use crate::error::{Error, Result};
use crate::read;
use crate::repo::Repo;
use crate::store::BlobReader;
use crate::tree::{Entry, Kind, TreePart};
use serde::Serialize;

/// A path inside a snapshot: the part it is in and its path relative to that part's root
/// (`""` for the root itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapPath {
    /// The tree it is in.
    pub part: TreePart,
    /// Relative to the part's root, `/`-separated, no leading or trailing `/`.
    pub rel: String,
}

impl SnapPath {
    /// Parses `platform/...`, `site/...`, `extra/...`, `bindings/...`, or an absolute path
    /// (a binding file, as registered).
    pub fn parse(spec: &str) -> Result<SnapPath> {
        if let Some(abs) = spec.strip_prefix('/') {
            return Ok(SnapPath::new(TreePart::Bindings, abs));
        }
        let (head, rest) = spec.split_once('/').unwrap_or((spec, ""));
        let part = TreePart::ALL
            .into_iter()
            .find(|p| p.as_str() == head)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "path '{spec}': start it with platform/, site/, extra/, bindings/ or / (a binding file)"
                ))
            })?;
        Ok(SnapPath::new(part, rest))
    }

    fn new(part: TreePart, rel: &str) -> SnapPath {
        let rel: Vec<&str> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        SnapPath {
            part,
            rel: rel.join("/"),
        }
    }

    /// How the path is shown: binding files by their absolute path.
    pub fn display(&self, rel: &str) -> String {
        match (self.part, rel) {
            (TreePart::Bindings, r) => format!("/{r}"),
            (p, "") => p.as_str().to_string(),
            (p, r) => format!("{}/{r}", p.as_str()),
        }
    }
}

/// One line of `ls`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The path as `ls`/`dump` accept it.
    pub path: String,
    /// `file`, `dir`, `symlink`, or `dump` (the database).
    pub kind: &'static str,
    /// Permission bits.
    pub mode: u32,
    /// Bytes (a folder or part: the bytes of the files below it).
    pub size: u64,
    /// Modification time, nanoseconds since the epoch (0 for parts and the dump).
    pub mtime_ns: i64,
    /// A symlink's target.
    pub target: Option<String>,
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
    }
}

fn listed(at: &SnapPath, e: &Entry) -> Listed {
    Listed {
        path: at.display(&e.path_str()),
        kind: kind_name(e.kind),
        mode: e.mode,
        size: e.size,
        mtime_ns: e.mtime_ns,
        target: e
            .target
            .as_ref()
            .map(|t| String::from_utf8_lossy(t).into_owned()),
    }
}

/// The parts a snapshot holds, with their sizes, and its database dump.
pub fn parts(repo: &Repo, snap: &SnapshotRecord) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for part in TreePart::ALL {
        if let Some(t) = read::part_tree(repo, snap, part)? {
            out.push(Listed {
                path: format!("{}/", part.as_str()),
                kind: "dir",
                mode: 0o755,
                size: t.bytes(),
                mtime_ns: 0,
                target: None,
            });
        }
    }
    if snap.db_dump.is_some() {
        out.push(Listed {
            path: "database".into(),
            kind: "dump",
            mode: 0o600,
            size: snap.db_bytes,
            mtime_ns: 0,
            target: None,
        });
    }
    Ok(out)
}

/// The entries under `at` (direct children, or every one below with `recursive`); a file
/// lists itself. An unknown path is an error naming it and the snapshot.
pub fn ls(
    repo: &Repo,
    snap: &SnapshotRecord,
    at: &SnapPath,
    recursive: bool,
) -> Result<Vec<Listed>> {
    let tree = read::part_tree(repo, snap, at.part)?.ok_or_else(|| missing(snap, at))?;
    // Binding files are a flat list of absolute paths (no folder entries): list them all.
    let recursive = recursive || at.part == TreePart::Bindings;
    if let Some(e) = tree.entries.iter().find(|e| e.path_str() == at.rel)
        && e.kind != Kind::Dir
    {
        return Ok(vec![listed(at, e)]);
    }
    let prefix = if at.rel.is_empty() {
        String::new()
    } else {
        format!("{}/", at.rel)
    };
    let below: Vec<&Entry> = tree
        .entries
        .iter()
        .filter(|e| e.path_str().starts_with(&prefix))
        .collect();
    if below.is_empty() && !at.rel.is_empty() {
        let is_dir = tree.entries.iter().any(|e| e.path_str() == at.rel);
        if !is_dir {
            return Err(missing(snap, at));
        }
    }
    Ok(below
        .into_iter()
        .filter(|e| recursive || !e.path_str()[prefix.len()..].contains('/'))
        .map(|e| listed(at, e))
        .collect())
}

fn missing(snap: &SnapshotRecord, at: &SnapPath) -> Error {
    Error::Invalid(format!(
        "snapshot {} holds no {}",
        snap.id,
        at.display(&at.rel)
    ))
}

/// A verified stream of one stored file's content.
pub fn open_file<'a>(
    repo: &'a Repo,
    snap: &SnapshotRecord,
    at: &SnapPath,
) -> Result<BlobReader<'a>> {
    let tree = read::part_tree(repo, snap, at.part)?.ok_or_else(|| missing(snap, at))?;
    let e = tree
        .entries
        .into_iter()
        .find(|e| e.path_str() == at.rel)
        .ok_or_else(|| missing(snap, at))?;
    match e.kind {
        Kind::File => Ok(read::chunks_reader(repo, e.chunks)),
        Kind::Dir => Err(Error::Invalid(format!(
            "{} in snapshot {} is a folder (list it with `ls`)",
            at.display(&at.rel),
            snap.id
        ))),
        Kind::Symlink => Err(Error::Invalid(format!(
            "{} in snapshot {} is a symlink to {}",
            at.display(&at.rel),
            snap.id,
            String::from_utf8_lossy(e.target.as_deref().unwrap_or_default())
        ))),
    }
}

/// A verified stream of the snapshot's database dump (SQL for MariaDB and PostgreSQL, the
/// database file for SQLite).
pub fn open_dump<'a>(repo: &'a Repo, snap: &SnapshotRecord) -> Result<BlobReader<'a>> {
    let id = snap
        .db_dump
        .ok_or_else(|| Error::Invalid(format!("snapshot {} holds no database dump", snap.id)))?;
    read::blob_reader(repo, &id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_parts() {
        let p = SnapPath::parse("site/files//a.txt").unwrap();
        assert_eq!((p.part, p.rel.as_str()), (TreePart::Site, "files/a.txt"));
        let b = SnapPath::parse("/etc/nginx/vhost.d/x").unwrap();
        assert_eq!(
            (b.part, b.rel.as_str()),
            (TreePart::Bindings, "etc/nginx/vhost.d/x")
        );
        assert_eq!(b.display(&b.rel), "/etc/nginx/vhost.d/x");
        assert_eq!(SnapPath::parse("platform").unwrap().rel, "");
        assert!(SnapPath::parse("files/a.txt").is_err());
    }
}
