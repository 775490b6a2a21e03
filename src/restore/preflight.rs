//! Checks before a restore touches anything: the targets are real folders (not symlinks), the
//! filesystems have room for the new trees and the SQLite file, the SQLite path is not a
//! symlink, and the database account can load the dump (the dump is checked as data and the
//! account's privileges are tried, see `db::preflight`). A refusal here changes nothing.

use super::plan::{Plan, PlatformAction};
use crate::catalog::SnapshotRecord;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::read;
use crate::repo::Repo;
use crate::tree::{Kind, TreePart};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Room left for what is not counted exactly (folders, inodes, the filesystem's own margin).
const SPACE_MARGIN: u64 = 1 << 20;

/// Runs every check; the first that fails is the one-line refusal.
pub(super) fn preflight(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    check_targets(plan)?;
    check_space(repo, snap, plan)?;
    check_database(repo, snap, plan)
}

/// Refuses a symlink (or a non-folder) where a restore writes a folder.
fn check_targets(plan: &Plan) -> Result<()> {
    if !plan.restore_files {
        return Ok(());
    }
    let mut dirs: Vec<PathBuf> = vec![plan.target_platform.clone()];
    let mut p = plan.target_platform.clone();
    for c in Path::new(&plan.site_dir).components() {
        p.push(c);
        dirs.push(p.clone());
    }
    dirs.extend(plan.current_copy.clone());
    for d in dirs {
        match fs::symlink_metadata(&d) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Refused(format!(
                    "{} is a symlink, not a real folder: restore refused (nothing changed)",
                    d.display()
                )));
            }
            Ok(m) if !m.is_dir() => {
                return Err(Error::Refused(format!(
                    "{} is not a folder: restore refused (nothing changed)",
                    d.display()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses when a filesystem lacks room for what the restore builds beside its targets.
fn check_space(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    let mut need: Vec<(PathBuf, u64)> = Vec::new();
    let tree_bytes = |part: TreePart| -> Result<u64> {
        Ok(read::shared_part_tree(repo, snap, part)?
            .map(|t| {
                t.entries
                    .iter()
                    .map(|e| if e.kind == Kind::File { e.size } else { 0 } + 512)
                    .sum()
            })
            .unwrap_or(0))
    };
    if plan.restore_files {
        if matches!(
            plan.platform,
            PlatformAction::Recreate | PlatformAction::Repair
        ) {
            need.push((
                plan.target_platform.clone(),
                tree_bytes(TreePart::Platform)?,
            ));
        }
        need.push((plan.site_target.clone(), tree_bytes(TreePart::Site)?));
    }
    if let (Some(tmp), Some(dump)) = (&plan.sqlite_tmp, snap.db_dump) {
        need.push((tmp.clone(), read::blob_size(repo, &dump)?));
    }
    let mut by_dev: BTreeMap<u64, (PathBuf, u64, u64)> = BTreeMap::new();
    for (path, bytes) in need {
        let (free, dev) = fsutil::available_bytes(&path)?;
        by_dev.entry(dev).or_insert((path, free, 0)).2 += bytes;
    }
    for (path, free, bytes) in by_dev.into_values() {
        if bytes + SPACE_MARGIN > free {
            return Err(Error::Refused(format!(
                "{}: No space left on device for this restore: it needs {} bytes, {} are free (nothing changed)",
                path.display(),
                bytes + SPACE_MARGIN,
                free
            )));
        }
    }
    Ok(())
}

/// The database: an SQLite path must not be a symlink; a server account must be able to load
/// the dump, which must be data.
fn check_database(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    let (true, Some(dump)) = (plan.restore_db, snap.db_dump) else {
        return Ok(());
    };
    let site = repo.cat.site(&plan.site)?;
    let at = plan.db_platform();
    match site.database_at(at)? {
        Some(Database::Sqlite(p)) => {
            if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::Refused(format!(
                    "SQLite database {} is a symlink: restore refused (nothing changed)",
                    p.display()
                )));
            }
            Ok(())
        }
        Some(db) => {
            let summary = db.check_dump(&mut read::blob_reader(repo, &dump)?)?;
            db.preflight(&summary).map_err(Error::from)
        }
        None => Ok(()),
    }
}
