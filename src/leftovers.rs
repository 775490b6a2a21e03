//! Leftovers of finished restores: what a restore moved aside and kept, named
//! `.<name>.sitesnap-<tag>-<journal>` next to the platform, the site folder, an extra path or
//! a binding file (see `restore::plan::aside_name`): the replaced files of a platform
//! (`replaced`, removed by restore when the pre-restore snapshot holds them, else kept) and,
//! with `--keep-old`, the old site folder and replaced platform files.
//! `gc` removes those whose restore is closed and was not run with `--keep-old`; it removes
//! none while any restore journal is open (`recover` may still need them).

use crate::catalog::JournalState;
use crate::error::{Error, Result};
use crate::repo::Repo;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One leftover folder or file of a closed restore.
#[derive(Debug, Clone)]
pub struct Leftover {
    /// Its path.
    pub path: PathBuf,
    /// Bytes of the files in it.
    pub bytes: u64,
}

/// The journal id in a leftover's name, if the name is one restore gives.
fn journal_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".sitesnap-")?;
    let (tag, journal) = tail.split_once('-')?;
    let known = matches!(tag, "replaced" | "old" | "absent");
    let hex = !journal.is_empty() && journal.bytes().all(|b| b.is_ascii_hexdigit());
    (known && hex).then_some(journal)
}

/// The folders a restore puts its asides in, for every registered site.
fn aside_parents(repo: &Repo) -> Result<BTreeSet<PathBuf>> {
    let mut dirs = BTreeSet::new();
    let mut add = |p: &Path| {
        if let Some(d) = p.parent() {
            dirs.insert(d.to_path_buf());
        }
    };
    for s in repo.cat.sites()? {
        add(&s.platform);
        add(&s.site_path());
        for e in &s.extra_paths {
            add(&s.platform.join(e));
        }
        for b in &s.bindings {
            add(b);
        }
    }
    Ok(dirs)
}

/// Leftovers `gc` may remove: named by a closed restore not run with `--keep-old`. None
/// while a restore journal is open (nothing may then be removed).
pub fn find(repo: &Repo) -> Result<Option<Vec<Leftover>>> {
    if !repo.cat.open_journals()?.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for dir in aside_parents(repo)? {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(journal) = journal_of(&name) else {
                continue;
            };
            if removable(repo, journal)? {
                let path = e.path();
                out.push(Leftover {
                    bytes: bytes_in(&path),
                    path,
                });
            }
        }
    }
    Ok(Some(out))
}

/// A closed journal of this repository whose restore did not ask to keep the old folders.
fn removable(repo: &Repo, journal: &str) -> Result<bool> {
    let Some(j) = repo.cat.journal(journal)? else {
        return Ok(false); // not ours
    };
    if !matches!(j.state, JournalState::Done | JournalState::RolledBack) {
        return Ok(false);
    }
    let plan: serde_json::Value = serde_json::from_str(&j.plan)
        .map_err(|e| Error::Corrupt(format!("journal {}: plan unreadable: {e}", j.id)))?;
    Ok(plan["keep_old"] != serde_json::Value::Bool(true))
}

/// Bytes of the regular files at or under `p` (symlinks not followed).
fn bytes_in(p: &Path) -> u64 {
    walkdir::WalkDir::new(p)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Removes leftovers (read-only folders made writable first).
pub fn remove(found: &[Leftover]) -> Result<()> {
    for l in found {
        let md = fs::symlink_metadata(&l.path).map_err(|e| Error::io(&l.path, e))?;
        if md.is_dir() {
            // Read-only folders (a platform's sites/<uri>) made writable first.
            for e in walkdir::WalkDir::new(&l.path).into_iter().flatten() {
                if e.file_type().is_dir() {
                    let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
                }
            }
            fs::remove_dir_all(&l.path).map_err(|e| Error::io(&l.path, e))?;
        } else {
            fs::remove_file(&l.path).map_err(|e| Error::io(&l.path, e))?;
        }
    }
    Ok(())
}
