//! `diff --content`: the unified diff (by the `similar` crate) of each changed, added or
//! removed small text file, with secrets masked (see `mask`). Binary files and files over
//! [`MAX_TEXT`] bytes are named, not shown. Stored contents are read through `read` (verified
//! chunk by chunk); live contents from the live site.

use super::mask::mask;
use crate::error::{Error, Result};
use crate::read::chunks_reader;
use crate::repo::Repo;
use crate::tree::{Entry, Kind, Tree, TreeDiff, TreePart};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Files larger than this (on either side) are named, not shown.
pub const MAX_TEXT: u64 = 256 * 1024;

/// What `diff --content` shows for one file.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Content {
    /// A unified diff, secrets masked.
    Text {
        /// The unified diff.
        diff: String,
    },
    /// The contents differ only in masked secrets.
    SecretsOnly,
    /// Not text (a NUL byte, or not UTF-8) on either side.
    Binary,
    /// Over [`MAX_TEXT`] bytes on either side.
    TooLarge {
        /// The larger side's size.
        size: u64,
    },
}

/// The content difference of one file.
#[derive(Debug, Serialize)]
pub struct FileDiff {
    /// Which part of the snapshot the file is in.
    pub part: TreePart,
    /// The path within that part.
    pub path: String,
    /// What differs.
    pub content: Content,
}

/// Where one side's file contents are read from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The repository (the entry's chunks).
    Stored,
    /// The live folder the part's paths are relative to.
    Live(&'a Path),
}

/// One part of both sides: the trees, their difference and where contents come from.
pub struct PartPair<'a> {
    pub part: TreePart,
    pub old: &'a Tree,
    pub new: &'a Tree,
    pub diff: &'a TreeDiff,
    pub old_src: Source<'a>,
    pub new_src: Source<'a>,
}

/// The content differences of the regular files of one part that changed, were added or
/// were removed (folders, symlinks and special files are left out).
pub fn part_content(repo: &Repo, p: &PartPair) -> Result<Vec<FileDiff>> {
    let old = by_path(p.old);
    let new = by_path(p.new);
    let mut out = Vec::new();
    let paths = p
        .diff
        .changed
        .iter()
        .chain(&p.diff.added)
        .chain(&p.diff.removed);
    for path in paths {
        let (o, n) = (file(&old, path), file(&new, path));
        if o.is_none() && n.is_none() {
            continue;
        }
        let content = compare(repo, (o, p.old_src), (n, p.new_src))?;
        if let Some(content) = content {
            out.push(FileDiff {
                part: p.part,
                path: path.clone(),
                content,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn by_path(t: &Tree) -> BTreeMap<String, &Entry> {
    t.entries.iter().map(|e| (e.path_str(), e)).collect()
}

/// The entry at `path` if it is a regular file.
fn file<'a>(m: &BTreeMap<String, &'a Entry>, path: &str) -> Option<&'a Entry> {
    m.get(path).copied().filter(|e| e.kind == Kind::File)
}

type Side<'a> = (Option<&'a Entry>, Source<'a>);

/// Compares one file's two sides (a missing side is empty); None when the texts are equal.
fn compare(repo: &Repo, old: Side, new: Side) -> Result<Option<Content>> {
    let size = old.0.map_or(0, |e| e.size).max(new.0.map_or(0, |e| e.size));
    if size > MAX_TEXT {
        return Ok(Some(Content::TooLarge { size }));
    }
    let (Some(a), Some(b)) = (read_side(repo, old)?, read_side(repo, new)?) else {
        return Ok(Some(Content::Binary));
    };
    let (ma, mb) = (mask(&a), mask(&b));
    if ma == mb {
        return Ok((a != b).then_some(Content::SecretsOnly));
    }
    let path = old.0.or(new.0).map(|e| e.path_str()).unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&ma, &mb)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    Ok(Some(Content::Text { diff }))
}

/// One side's text (empty when the file is absent); None when it is not text.
fn read_side(repo: &Repo, (entry, src): Side) -> Result<Option<String>> {
    let Some(e) = entry else {
        return Ok(Some(String::new()));
    };
    let mut bytes = Vec::new();
    match src {
        Source::Stored => {
            chunks_reader(repo, e.chunks.clone())
                .take(MAX_TEXT + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| Error::Corrupt(format!("{}: {err}", e.path_str())))?;
        }
        Source::Live(root) => {
            let p: PathBuf = root.join(e.rel_path());
            File::open(&p)
                .and_then(|f| f.take(MAX_TEXT + 1).read_to_end(&mut bytes))
                .map_err(|err| Error::io(&p, err))?;
        }
    }
    if bytes.contains(&0) {
        return Ok(None);
    }
    Ok(String::from_utf8(bytes).ok())
}
