//! Restore: putting a site back exactly as a snapshot recorded it, on the platform it was on.
//! It owns the plan (platform kept / recreated / drifted / repaired, site directory, database,
//! binding files), the pre-restore snapshot, the journal and `recover`. Order of work: plan;
//! pre-restore snapshot of the current state; journal opened; every new tree, binding file and
//! SQLite file built in temporary folders beside their targets (reading and verifying every
//! chunk, so corrupt data is found before the live site is touched); then one journaled step at
//! a time, each a rename or a load that can be repeated: platform, site directory, database,
//! bindings; then the catalogue. It never deletes a live folder: the live site directory is
//! moved aside, and only removed once the restore is complete and the pre-restore snapshot
//! holds it. It never changes an existing platform unless told to (`--repair-platform`).

mod extra;
mod held;
mod journal;
mod plan;
mod preflight;
mod prepare;
mod runs;
mod steps;
mod target;
mod undo;
mod write;

use crate::capture::{self, CaptureOpts};
use crate::catalog::SnapshotKind;
use crate::catalog::{JournalRecord, SnapshotRecord};
use crate::catalog::{ShortId, short_id};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::repo::Repo;
use journal::STEP_PREPARED;
use prepare::{Fresh, prepare, rollback};
use serde::Serialize;
use std::path::PathBuf;
use steps::finish;

pub use journal::JournalState;
pub use plan::{Plan, PlatformAction, RestoreOpts, TreeDiffSer, plan};
pub use target::{Include, TargetOutcome, check_target, to_target};
pub use write::write_tree;

/// The outcome of a restore.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The plan carried out.
    pub plan: Plan,
    /// The pre-restore snapshot's id.
    pub pre_restore: String,
    /// The command that undoes this restore.
    pub undo: String,
    /// Replaced folders removed.
    pub removed_old: Vec<PathBuf>,
    /// Replaced folders kept.
    pub kept_old: Vec<PathBuf>,
    /// What went wrong without failing the restore (the files cache not refreshed).
    pub warnings: Vec<String>,
}

/// Carries out a restore: pre-restore snapshot, journal, prepare, steps, catalogue.
pub fn run(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<Outcome> {
    if plan.platform == PlatformAction::Drift {
        let d = plan.platform_diff.clone().unwrap_or_default();
        return Err(Error::Refused(format!(
            "platform {} differs from snapshot {} ({} added, {} removed, {} changed); rerun with --repair-platform to bring back the snapshot's files",
            plan.target_platform.display(),
            snap.id.short(),
            d.added.len(),
            d.removed.len(),
            d.changed.len()
        )));
    }
    let site = repo.cat.site(&plan.site)?;
    // 0. Checks before anything changes: targets, free space, the database account.
    preflight::preflight(repo, snap, plan)?;
    // 1. The pre-restore snapshot: the current state, whatever it is, so this is undoable.
    let mut o = CaptureOpts::new(SnapshotKind::PreRestore);
    o.tolerant = true;
    o.label = Some(format!("before restoring {}", snap.id.short()));
    o.progress = true;
    let pre = capture::snapshot(repo, &site, &plan.current_platform, &o)?;
    fsutil::failpoint("restore-pre-snapshot");
    // 2. The journal.
    repo.cat.create_journal(&JournalRecord {
        id: plan.journal.clone(),
        site: plan.site.clone(),
        snapshot: snap.id.clone(),
        pre_restore: Some(pre.id.clone()),
        plan: serde_json::to_string(plan).expect("plan serializes"),
        step: 0,
        state: JournalState::Open,
    })?;
    // 3. The folder of the site folder held open, then everything prepared beside its target;
    // any failure here leaves the live site as it was.
    let mut held = plan.clone();
    let prepared = held.hold().and_then(|()| {
        fsutil::pausepoint("restore-held");
        prepare(repo, snap, &held)
    });
    let fresh = match prepared {
        Ok(fresh) => fresh,
        Err(e) => {
            rollback(&held);
            repo.cat
                .close_journal(&plan.journal, JournalState::RolledBack)?;
            return Err(held.unmap(e));
        }
    };
    repo.cat
        .update_journal(&plan.journal, STEP_PREPARED, None)?;
    fsutil::failpoint("restore-prepared");
    fsutil::pausepoint("restore-prepared");
    // 4. The steps.
    let done = finish(repo, snap, &held, STEP_PREPARED, fresh).map_err(|e| held.unmap(e))?;
    Ok(Outcome {
        plan: plan.clone(),
        undo: format!("sitesnap restore {}", pre.id.short()),
        pre_restore: pre.id,
        removed_old: done.removed,
        kept_old: done.kept,
        warnings: done.warnings,
    })
}

/// What `recover` did with one unfinished journal.
#[derive(Debug)]
pub struct Recovered {
    /// The site restored.
    pub site: String,
    /// The journal id.
    pub journal: String,
    /// One line saying what was done, or why this journal could not be finished or undone.
    pub result: Result<String>,
}

/// Finishes or undoes every interrupted restore, each site on its own: one journal that fails
/// does not stop the others.
pub fn recover(repo: &Repo) -> Result<Vec<Recovered>> {
    Ok(repo
        .cat
        .open_journals()?
        .into_iter()
        .map(|j| Recovered {
            site: j.site.clone(),
            journal: j.id.clone(),
            result: recover_one(repo, &j),
        })
        .collect())
}

/// Reads a journal's plan.
fn journal_plan(j: &JournalRecord) -> Result<Plan> {
    serde_json::from_str(&j.plan)
        .map_err(|e| Error::Corrupt(format!("journal {}: plan unreadable: {e}", j.id)))
}

/// Finishes (or, once it was being undone, undoes) one interrupted restore.
fn recover_one(repo: &Repo, j: &JournalRecord) -> Result<String> {
    let mut plan = journal_plan(j)?;
    plan.hold()?;
    recover_held(repo, j, &plan).map_err(|e| plan.unmap(e))
}

/// [`recover_one`] once the plan's folder is held.
fn recover_held(repo: &Repo, j: &JournalRecord, plan: &Plan) -> Result<String> {
    let snap = short_id(&j.snapshot);
    if j.state == JournalState::RollingBack {
        undo::undo(repo, plan, j)?;
        return Ok(format!(
            "restore of {} to {snap} was being rolled back: undone (the site is as it was before)",
            j.site
        ));
    }
    if j.step < STEP_PREPARED {
        // Nothing live was changed yet: remove what was being prepared.
        rollback(plan);
        repo.cat.close_journal(&j.id, JournalState::RolledBack)?;
        return Ok(format!(
            "restore of {} to {snap} had not started changing the site: undone (site unchanged)",
            j.site
        ));
    }
    let rec = repo.cat.resolve_snapshot(&j.snapshot)?;
    let done = finish(repo, &rec, plan, j.step, Fresh::default())?;
    let mut line = format!(
        "restore of {} to {snap} finished (undo with: sitesnap restore {})",
        j.site,
        j.pre_restore.as_deref().map(short_id).unwrap_or("?")
    );
    // What went wrong without failing it (a replaced copy kept) belongs on the same line.
    for w in done.warnings {
        line.push_str("; ");
        line.push_str(&w);
    }
    Ok(line)
}

/// `recover --abort <journal>`: brings the site of an unfinished restore back to its
/// pre-restore state, whatever step the restore had reached.
pub fn abort(repo: &Repo, journal: &str) -> Result<String> {
    let j = repo.cat.unfinished_journal(journal)?.ok_or_else(|| {
        Error::Invalid(format!(
            "no unfinished restore with journal '{journal}' (see `sitesnap doctor`)"
        ))
    })?;
    let mut plan = journal_plan(&j)?;
    plan.hold()?;
    undo::undo(repo, &plan, &j).map_err(|e| plan.unmap(e))?;
    Ok(format!(
        "restore of {} to {} aborted: the site is as it was before",
        j.site,
        short_id(&j.snapshot)
    ))
}
