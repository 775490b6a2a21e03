//! Undoing a restore that changed the live site: a step failed, or `recover --abort` was asked.
//! Each part is put back in the reverse order of the steps, and each undo is decided from what
//! is on disk, so it can be repeated after a crash in the middle of it (the journal says
//! `rolling-back` until it is done): binding files from their linked-aside copies (or removed
//! when there was none), the database reloaded from the pre-restore snapshot, the site folder
//! swapped back, a recreated platform taken away again and a repaired one given back its moved
//! files. It never deletes a live file that the restore did not put there.

use super::journal::{JournalState, STEP_PREPARED, STEP_SITE, Step};
use super::plan::{Plan, PlatformAction, aside_name};
use super::prepare::rollback;
use super::write::{remove_tree, rename_durable};
use crate::catalog::JournalRecord;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::read;
use crate::repo::Repo;
use std::fs;
use std::path::Path;

/// After `step` failed with `cause`: undoes everything, closes the journal as rolled back and
/// returns the one-line error that says what failed and that the site is as before (or that
/// the undo failed too and `recover` will finish it).
pub(super) fn after_failure(repo: &Repo, plan: &Plan, step: Step, cause: Error) -> Error {
    let res = repo
        .cat
        .mark_rolling_back(&plan.journal)
        .and_then(|()| journal(repo, &plan.journal))
        .and_then(|j| undo(repo, plan, &j));
    match res {
        Ok(()) => Error::RolledBack {
            site: plan.site.clone(),
            step: step.to_string(),
            cause: Box::new(cause),
        },
        Err(u) => Error::RollbackFailed {
            site: plan.site.clone(),
            step: step.to_string(),
            journal: plan.journal.clone(),
            cause: Box::new(cause),
            undo: Box::new(u),
        },
    }
}

/// The journal row of `id`, which must still be unfinished.
fn journal(repo: &Repo, id: &str) -> Result<JournalRecord> {
    repo.cat
        .unfinished_journal(id)?
        .ok_or_else(|| Error::Invalid(format!("no unfinished restore with journal '{id}'")))
}

/// Puts the site back as it was before the restore of journal `j` and closes the journal as
/// rolled back. Repeatable.
pub(super) fn undo(repo: &Repo, plan: &Plan, j: &JournalRecord) -> Result<()> {
    repo.cat.mark_rolling_back(&j.id)?;
    if j.step >= STEP_PREPARED {
        undo_bindings(plan)?;
        fsutil::failpoint("restore-undo-bindings");
        if j.step >= STEP_SITE {
            // The database step had started: it may be dropped or half loaded.
            undo_db(repo, plan, j)?;
            fsutil::failpoint("restore-undo-db");
        }
        undo_site(plan)?;
        super::extra::undo_extra(plan)?;
        fsutil::failpoint("restore-undo-site");
        undo_platform(plan)?;
    }
    rollback(plan);
    remove_markers(plan);
    if fs::symlink_metadata(&plan.platform_aside).is_ok() && holds_no_file(&plan.platform_aside) {
        remove_tree(&plan.platform_aside)?;
    }
    repo.cat.close_journal(&j.id, JournalState::RolledBack)
}

/// Removes the markers and linked-aside binding copies of a restore (finished or undone).
pub(super) fn remove_markers(plan: &Plan) {
    for b in &plan.bindings {
        let _ = fs::remove_file(aside_name(b, "old", &plan.journal));
        let _ = fs::remove_file(aside_name(b, "absent", &plan.journal));
    }
    let _ = fs::remove_file(plan.at(&aside_name(&plan.site_target, "absent", &plan.journal)));
    super::extra::remove_markers(plan);
}

/// Binding files: the linked-aside copy goes back; one that did not exist is removed.
fn undo_bindings(plan: &Plan) -> Result<()> {
    for (b, tmp) in plan.bindings.iter().zip(&plan.binding_tmps) {
        let old = aside_name(b, "old", &plan.journal);
        let absent = aside_name(b, "absent", &plan.journal);
        if fs::symlink_metadata(&old).is_ok() {
            rename_durable(&old, b)?;
        } else if fs::symlink_metadata(&absent).is_ok() {
            if fs::symlink_metadata(tmp).is_err() && fs::symlink_metadata(b).is_ok() {
                rename_durable(b, tmp)?;
            }
            fs::remove_file(&absent).at(&absent)?;
        }
    }
    Ok(())
}

/// The database: reloaded from the pre-restore snapshot's dump (an SQLite file inside the
/// site folder comes back with the folder).
fn undo_db(repo: &Repo, plan: &Plan, j: &JournalRecord) -> Result<()> {
    if !plan.restore_db || (plan.sqlite_in_site.is_some() && plan.restore_files) {
        return Ok(());
    }
    let site = repo.cat.site(&plan.site)?;
    let at = plan.db_platform();
    let Some(db) = site.database_at(at)? else {
        return Ok(());
    };
    let pre = j
        .pre_restore
        .as_deref()
        .map(|id| repo.cat.resolve_snapshot(id))
        .transpose()?;
    let Some(dump) = pre.and_then(|p| p.db_dump) else {
        return Err(Error::Refused(format!(
            "the pre-restore snapshot of {} holds no database dump to reload {}",
            plan.site,
            db.redacted()
        )));
    };
    db.load_checked(&mut || Ok(Box::new(read::blob_reader(repo, &dump)?)))
        .map(|_| ())
}

/// The site folder: the live one moved aside comes back; one put where there was none is
/// taken away; the copy on another platform comes back.
fn undo_site(plan: &Plan) -> Result<()> {
    if !plan.restore_files {
        return Ok(());
    }
    // Through the held handle, like the site step.
    let (target, tmp, aside) = (
        &plan.at(&plan.site_target),
        &plan.at(&plan.site_tmp),
        &plan.at(&plan.site_aside),
    );
    let absent = plan.at(&aside_name(&plan.site_target, "absent", &plan.journal));
    if fs::symlink_metadata(aside).is_ok() {
        if fs::symlink_metadata(target).is_ok() {
            put_away(target, tmp)?;
        }
        rename_durable(aside, target)?;
    } else if fs::symlink_metadata(&absent).is_ok() {
        if fs::symlink_metadata(target).is_ok() && fs::symlink_metadata(tmp).is_err() {
            rename_durable(target, tmp)?;
        }
        fs::remove_file(&absent).at(&absent)?;
    }
    if let (Some(c), Some(a)) = (&plan.current_copy, &plan.current_aside)
        && fs::symlink_metadata(a).is_ok()
        && fs::symlink_metadata(c).is_err()
    {
        rename_durable(a, c)?;
    }
    Ok(())
}

/// Moves what the restore put at `live` to `tmp` (removed with the temporary files).
fn put_away(live: &Path, tmp: &Path) -> Result<()> {
    if fs::symlink_metadata(tmp).is_ok() {
        remove_tree(tmp)?;
    }
    rename_durable(live, tmp)
}

/// The platform: a recreated one goes back to its temporary name (removed after); a repaired
/// one gets its moved files back.
fn undo_platform(plan: &Plan) -> Result<()> {
    match plan.platform {
        PlatformAction::Recreate => {
            if fs::symlink_metadata(&plan.platform_tmp).is_err()
                && fs::symlink_metadata(&plan.target_platform).is_ok()
            {
                rename_durable(&plan.target_platform, &plan.platform_tmp)?;
            }
            Ok(())
        }
        PlatformAction::Repair => undo_repair(plan),
        _ => Ok(()),
    }
}

/// Undoes a platform repair: what was brought in from the prepared copy goes back there, and
/// what was moved into the aside folder comes back (parents first, children move with them).
/// A folder whose mode was fixed in place keeps its new mode.
fn undo_repair(plan: &Plan) -> Result<()> {
    let Some(d) = &plan.platform_diff else {
        return Ok(());
    };
    let root = &plan.target_platform;
    let mut bring: Vec<&String> = d.removed.iter().chain(&d.changed).collect();
    bring.sort();
    for rel in bring {
        let live = root.join(rel);
        let src = plan.platform_tmp.join(rel);
        if fs::symlink_metadata(&live).is_ok() && fs::symlink_metadata(&src).is_err() {
            if let Some(parent) = src.parent() {
                fs::create_dir_all(parent).at(parent)?;
            }
            rename_durable(&live, &src)?;
        }
    }
    let mut gone: Vec<&String> = d.added.iter().chain(&d.changed).collect();
    gone.sort();
    for rel in gone {
        let from = plan.platform_aside.join(rel);
        let to = root.join(rel);
        if fs::symlink_metadata(&from).is_ok() && fs::symlink_metadata(&to).is_err() {
            rename_durable(&from, &to)?;
        }
    }
    Ok(())
}

/// True when a folder holds only folders.
fn holds_no_file(dir: &Path) -> bool {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .all(|e| e.map(|e| e.file_type().is_dir()).unwrap_or(false))
}
