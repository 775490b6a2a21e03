//! A site's extra paths at restore (a private files folder, a config sync folder outside the
//! site folder): each one the snapshot holds is built beside its target, then swapped in at the
//! site folder's step, the live one moved aside like the site folder. Extra paths the snapshot
//! does not hold are left as they are. It never touches the platform's code.

use super::plan::{Plan, PlatformAction, aside_name};
use super::write::{apply_meta, rename_durable, write_file, write_tree};
use crate::catalog::SnapshotRecord;
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::read;
use crate::repo::Repo;
use crate::tree::{Entry, Kind, RootMeta, Tree, TreePart};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The part of an extra paths tree (paths relative to the platform) at `x`: its own entry and
/// the tree under it (paths relative to `x`).
pub(super) fn subtree(t: &Tree, x: &str) -> Option<(Entry, Tree)> {
    let own = t.entries.iter().find(|e| e.path == x.as_bytes())?.clone();
    let mut prefix = x.as_bytes().to_vec();
    prefix.push(b'/');
    let entries = t
        .entries
        .iter()
        .filter_map(|e| {
            let rest = e.path.strip_prefix(&prefix[..])?;
            let mut e = e.clone();
            e.path = rest.to_vec();
            Some(e)
        })
        .collect();
    let root = Some(RootMeta {
        mode: own.mode,
        uid: own.uid,
        gid: own.gid,
        mtime_ns: own.mtime_ns,
    });
    Some((own, Tree { entries, root }))
}

/// Where extra path `i` is built: inside a recreated platform's temporary folder, else beside
/// the live one.
pub(super) fn extra_tmp(plan: &Plan, i: usize) -> PathBuf {
    if plan.platform == PlatformAction::Recreate {
        plan.platform_tmp.join(&plan.extra_paths[i])
    } else {
        plan.extra_tmps[i].clone()
    }
}

/// Writes each extra path the snapshot holds into its temporary place.
pub(super) fn prepare_extra(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    if plan.extra_paths.is_empty() {
        return Ok(());
    }
    let t = read::part_tree(repo, snap, TreePart::Extra)?.unwrap_or_default();
    for (i, x) in plan.extra_paths.iter().enumerate() {
        let Some((own, sub)) = subtree(&t, x) else {
            continue;
        };
        let tmp = extra_tmp(plan, i);
        if let Some(parent) = tmp.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        match own.kind {
            Kind::Dir => write_tree(repo, &sub, &tmp, &snap.id).map(drop)?,
            Kind::File => write_file(&mut read::chunk_reader(repo), &own, &tmp)?,
            Kind::Symlink => {
                let target = own.target.as_deref().unwrap_or_default();
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &tmp).at(&tmp)?;
                apply_meta(&tmp, &own)?;
            }
        }
    }
    Ok(())
}

/// The copies of the extra paths on the platform the site is on now, when the restore moves it
/// to another one, each with where it is moved aside: (live copy, aside).
pub(super) fn current_copies(plan: &Plan) -> Vec<(PathBuf, PathBuf)> {
    if plan.current_platform == plan.target_platform || !plan.restore_files {
        return Vec::new();
    }
    plan.extra_paths
        .iter()
        .map(|x| {
            let c = plan.current_platform.join(x);
            let a = aside_name(&c, "old", &plan.journal);
            (c, a)
        })
        .collect()
}

/// Swaps each prepared extra path in, the live one moved aside; copies left on the platform
/// the site leaves are moved aside too. Repeatable.
pub(super) fn swap_extra(plan: &Plan) -> Result<()> {
    for ((x, tmp), aside) in plan
        .extra_paths
        .iter()
        .zip(&plan.extra_tmps)
        .zip(&plan.extra_asides)
    {
        let target = plan.target_platform.join(x);
        if fs::symlink_metadata(tmp).is_ok() {
            if fs::symlink_metadata(&target).is_ok() {
                rename_durable(&target, aside)?;
            } else if fs::symlink_metadata(aside).is_err() {
                // There was nothing here: a rollback removes what is put in.
                let absent = aside_name(&target, "absent", &plan.journal);
                if fs::symlink_metadata(&absent).is_err() {
                    fsutil::create_private_file(&absent)?;
                }
            }
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).at(parent)?;
            }
            rename_durable(tmp, &target)?;
        }
    }
    for (c, a) in current_copies(plan) {
        if fs::symlink_metadata(&c).is_ok() {
            rename_durable(&c, &a)?;
        }
    }
    Ok(())
}

/// Undoes [`swap_extra`] after a failed step: each live extra path moved aside comes back (what
/// the restore put there goes to its temporary place, removed with the temporary files); one
/// that did not exist before is taken away again; copies moved off the platform the site was
/// on come back. Decided from what is on disk, so it can be repeated.
pub(super) fn undo_extra(plan: &Plan) -> Result<()> {
    for ((x, tmp), aside) in plan
        .extra_paths
        .iter()
        .zip(&plan.extra_tmps)
        .zip(&plan.extra_asides)
    {
        let target = plan.target_platform.join(x);
        let absent = aside_name(&target, "absent", &plan.journal);
        if fs::symlink_metadata(aside).is_ok() {
            if fs::symlink_metadata(&target).is_ok() {
                put_away(&target, tmp)?;
            }
            rename_durable(aside, &target)?;
        } else if fs::symlink_metadata(&absent).is_ok() {
            if fs::symlink_metadata(tmp).is_err() && fs::symlink_metadata(&target).is_ok() {
                rename_durable(&target, tmp)?;
            }
            fs::remove_file(&absent).at(&absent)?;
        }
    }
    for (c, a) in current_copies(plan) {
        if fs::symlink_metadata(&a).is_ok() && fs::symlink_metadata(&c).is_err() {
            rename_durable(&a, &c)?;
        }
    }
    Ok(())
}

/// Removes the markers of extra paths that did not exist before the restore.
pub(super) fn remove_markers(plan: &Plan) {
    for x in &plan.extra_paths {
        let target = plan.target_platform.join(x);
        let _ = fs::remove_file(aside_name(&target, "absent", &plan.journal));
    }
}

/// Moves what the restore put at `live` to `tmp` (removed with the temporary files).
fn put_away(live: &Path, tmp: &Path) -> Result<()> {
    if fs::symlink_metadata(tmp).is_ok() {
        super::write::remove_tree(tmp)?;
    }
    rename_durable(live, tmp)
}
