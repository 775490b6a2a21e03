//! The journaled steps of a restore, after everything is prepared: platform, site folder,
//! database, binding files, then the catalogue (site location, files cache) and the aside
//! folders. Each step is a rename or a load that can be repeated, so `recover` can run them
//! again after a crash.

use super::journal::{JournalState, Step};
use super::plan::{Plan, PlatformAction, aside_name};
use super::prepare::{Fresh, rollback};
use super::undo;
use super::write::{apply_meta, remove_tree, rename_durable};
use crate::capture;
use crate::catalog::{CacheEntry, FileKey, SnapshotRecord};
use crate::db::Database;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::read;
use crate::repo::Repo;
use crate::site;
use crate::tree::{self, Entry, Kind, Tree};
use std::fs::{self, File};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Runs the journaled steps after `done`, each repeatable; returns the aside folders removed
/// and kept. A step that fails is undone with everything before it (see `undo`), and the error
/// says so.
pub(super) fn finish(
    repo: &Repo,
    snap: &SnapshotRecord,
    plan: &Plan,
    done: u32,
    fresh: Fresh,
) -> Result<Finished> {
    if let Err((step, cause)) = run_steps(repo, snap, plan, done) {
        return Err(undo::after_failure(repo, plan, step, cause));
    }
    let mut warnings = Vec::new();
    if plan.restore_files {
        // Where the site is now: a failure leaves the journal open (the asides kept), and
        // `recover` records it again.
        record_site(repo, plan).map_err(|cause| Error::RecordFailed {
            journal: plan.journal.clone(),
            cause: Box::new(cause),
        })?;
        // The files cache is only a shortcut: without it the next snapshot reads the files.
        if let Err(e) = refresh_cache(repo, snap, plan, fresh) {
            warnings.push(format!(
                "the restored files could not be recorded in the files cache ({e}): the next snapshot reads them again"
            ));
        }
    }
    // The replaced site folders are held by the pre-restore snapshot, so they go unless asked
    // to keep them (--keep-old). So do the platform files a repair replaced when the
    // pre-restore snapshot captured that platform (the site was on it); files replaced on
    // another platform are in no snapshot: kept (gc removes them later).
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    // A replaced copy that cannot be removed (an immutable file in it, a read-only mount) is
    // kept and said: the restore is done, and an open journal would stop the site's
    // snapshots until someone removed it.
    let mut remove = |at: &Path, shown: PathBuf| match remove_tree(at) {
        Ok(()) => removed.push(shown),
        Err(e) => {
            warnings.push(format!(
                "kept the replaced copy at {}: it could not be removed ({e})",
                at.display()
            ));
            kept.push(shown);
        }
    };
    let mut keep = Vec::new();
    if fs::symlink_metadata(&plan.platform_aside).is_ok() {
        if plan.keep_old || plan.current_platform != plan.target_platform {
            keep.push(plan.platform_aside.clone());
        } else {
            remove(&plan.platform_aside, plan.platform_aside.clone());
        }
    }
    let mut asides = vec![plan.site_aside.clone()];
    asides.extend(plan.current_aside.clone());
    asides.extend(plan.extra_asides.iter().cloned());
    asides.extend(
        super::extra::current_copies(plan)
            .into_iter()
            .map(|(_, a)| a),
    );
    for a in asides {
        if fs::symlink_metadata(plan.at(&a)).is_ok() {
            if plan.keep_old {
                keep.push(a);
            } else {
                remove(&plan.at(&a), a);
            }
        }
    }
    kept.extend(keep);
    rollback(plan);
    undo::remove_markers(plan);
    repo.cat.close_journal(&plan.journal, JournalState::Done)?;
    Ok(Finished {
        removed,
        kept,
        warnings,
    })
}

/// What [`finish`] did besides the steps: the aside folders removed and kept, and what went
/// wrong without failing the restore.
pub(super) struct Finished {
    pub removed: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Records in the catalogue (and its site object) that the site is on the target platform
/// now, its SQLite file moved with its folder.
fn record_site(repo: &Repo, plan: &Plan) -> Result<()> {
    let mut site = repo.cat.site(&plan.site)?;
    let old_site_path = site.site_path();
    let db = if site.credentials_by_reference() {
        None
    } else {
        site.database()?
    };
    site.platform = plan.target_platform.clone();
    if let Some(d) = db {
        // An SQLite file inside the site folder moved with it.
        let d = site::rebase_db(d, &old_site_path, &site.site_path());
        if let Database::Sqlite(p) = &d {
            site.db_url = Some(format!("sqlite://{}", p.display()));
        }
    }
    crate::objects::update_site(repo, &site)
}

/// The live steps after `done`: platform, site folder, database, binding files. On failure,
/// the step that failed and why.
fn run_steps(
    repo: &Repo,
    snap: &SnapshotRecord,
    plan: &Plan,
    done: u32,
) -> std::result::Result<(), (Step, Error)> {
    let run = |step: Step, f: &dyn Fn() -> Result<()>| -> std::result::Result<(), (Step, Error)> {
        if done >= step.number() {
            return Ok(());
        }
        f().and_then(|()| repo.cat.update_journal(&plan.journal, step.number(), None))
            .map_err(|e| (step, e))
    };
    run(Step::Platform, &|| step_platform(repo, snap, plan))?;
    fsutil::failpoint("restore-platform");
    run(Step::SiteFolder, &|| step_site(plan))?;
    fsutil::failpoint("restore-site");
    run(Step::Database, &|| step_db(repo, snap, plan))?;
    fsutil::failpoint("restore-db");
    run(Step::Bindings, &|| step_bindings(plan))?;
    fsutil::failpoint("restore-bindings");
    Ok(())
}

/// Step 5: puts each prepared binding file in place. The live one is first linked aside (so
/// a rollback can put it back) or, when there was none, a marker says so; the rename itself
/// replaces the file in one go.
fn step_bindings(plan: &Plan) -> Result<()> {
    for (b, tmp) in plan.bindings.iter().zip(&plan.binding_tmps) {
        if fs::symlink_metadata(tmp).is_err() {
            continue;
        }
        let old = aside_name(b, "old", &plan.journal);
        let absent = aside_name(b, "absent", &plan.journal);
        if fs::symlink_metadata(&old).is_err() && fs::symlink_metadata(&absent).is_err() {
            if fs::symlink_metadata(b).is_ok() {
                fs::hard_link(b, &old).at(b)?;
            } else {
                fsutil::create_private_file(&absent)?;
            }
        }
        rename_durable(tmp, b)?;
    }
    Ok(())
}

/// Step 2: puts a recreated platform in place, or repairs an existing one.
fn step_platform(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    match plan.platform {
        PlatformAction::Recreate => {
            if plan.platform_tmp.exists() && !plan.target_platform.exists() {
                if let Some(parent) = plan.target_platform.parent() {
                    fs::create_dir_all(parent).at(parent)?;
                }
                rename_durable(&plan.platform_tmp, &plan.target_platform)?;
            }
            Ok(())
        }
        PlatformAction::Repair => repair_platform(repo, snap, plan),
        _ => Ok(()),
    }
}

/// Brings an existing platform back to the snapshot's files, one rename at a time: files the
/// snapshot does not have and files that differ are moved into the aside folder, the
/// snapshot's versions are moved in from the prepared copy. Repeatable.
fn repair_platform(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    let filter = site::snapshot_filter(&repo.cat, snap, &plan.target_platform)?;
    let want = filter.apply(&read::load_tree(
        repo,
        &snap.platform_tree.expect("platform tree"),
    )?);
    let site = repo.cat.site(&plan.site)?;
    let mut skip = capture::db_side_files(site.database_at(&plan.target_platform)?.as_ref());
    skip.push(plan.site_target.clone());
    skip.push(plan.site_tmp.clone());
    skip.extend(plan.extra_tmps.iter().cloned());
    let live = capture::scan_platform(repo, &plan.target_platform, &filter, &skip)?;
    let d = tree::diff(&want, &live);
    let root = &plan.target_platform;
    let move_aside = |rel: &str| -> Result<()> {
        let from = root.join(rel);
        if fs::symlink_metadata(&from).is_err() {
            return Ok(());
        }
        let to = plan.platform_aside.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        rename_durable(&from, &to)
    };
    // Live paths that must go (not in the snapshot, or changed), parents before children;
    // once a folder is moved its children went with it.
    let mut gone: Vec<String> = d.added.iter().chain(&d.changed).cloned().collect();
    gone.sort();
    let want_by_path: std::collections::HashMap<&[u8], &Entry> =
        want.entries.iter().map(|e| (&e.path[..], e)).collect();
    for rel in &gone {
        // A changed folder (its mode) is fixed in place, not moved.
        if let Some(e) = want_by_path.get(rel.as_bytes())
            && e.kind == Kind::Dir
            && fs::symlink_metadata(root.join(rel))
                .map(|m| m.is_dir())
                .unwrap_or(false)
        {
            continue;
        }
        move_aside(rel)?;
    }
    let mut bring: Vec<String> = d.removed.iter().chain(&d.changed).cloned().collect();
    bring.sort();
    for rel in &bring {
        let dest = root.join(rel);
        let e = want_by_path[rel.as_bytes()];
        if e.kind == Kind::Dir
            && fs::symlink_metadata(&dest)
                .map(|m| m.is_dir())
                .unwrap_or(false)
        {
            apply_meta(&dest, e)?;
            continue;
        }
        if fs::symlink_metadata(&dest).is_ok() {
            continue; // brought in with its parent folder
        }
        let src = plan.platform_tmp.join(rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        rename_durable(&src, &dest)?;
    }
    Ok(())
}

/// Step 3: swaps the prepared site folder in (the live one moved aside), and moves a copy on
/// another platform away.
fn step_site(plan: &Plan) -> Result<()> {
    if !plan.restore_files {
        return Ok(());
    }
    // Every path in the site folder's parent is reached through the held handle, and the
    // folder at that path must still be the one held.
    plan.check_held()?;
    let (tmp, target, aside) = (
        plan.at(&plan.site_tmp),
        plan.at(&plan.site_target),
        plan.at(&plan.site_aside),
    );
    if fs::symlink_metadata(&tmp).is_ok() {
        if fs::symlink_metadata(&target).is_ok() {
            rename_durable(&target, &aside)?;
        } else if fs::symlink_metadata(&aside).is_err() {
            // There was no site folder here: a rollback removes the one put in.
            let absent = plan.at(&aside_name(&plan.site_target, "absent", &plan.journal));
            if fs::symlink_metadata(&absent).is_err() {
                fsutil::create_private_file(&absent)?;
            }
        }
        rename_durable(&tmp, &target)?;
    }
    super::extra::swap_extra(plan)?;
    if let (Some(c), Some(a)) = (&plan.current_copy, &plan.current_aside)
        && c != &plan.site_target
        && fs::symlink_metadata(c).is_ok()
    {
        rename_durable(c, a)?;
    }
    Ok(())
}

/// Step 4: loads the database (an SQLite file inside the site folder came with it).
fn step_db(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    if !plan.restore_db {
        return Ok(());
    }
    let site = repo.cat.site(&plan.site)?;
    let at = plan.db_platform();
    let db = site
        .database_at(at)?
        .ok_or_else(|| Error::Invalid(format!("site '{}' has no database any more", site.uri)))?;
    match (&db, &plan.sqlite_tmp) {
        // Inside the site folder: it came in with the folder.
        (Database::Sqlite(_), Some(_)) if plan.sqlite_in_site.is_some() && plan.restore_files => {
            Ok(())
        }
        (Database::Sqlite(_), Some(tmp)) => {
            let tmp = plan.at(tmp);
            if tmp.exists() {
                let mut f = File::open(&tmp).at(&tmp)?;
                db.load(&mut f)?;
                fs::remove_file(&tmp).at(&tmp)?;
            }
            Ok(())
        }
        _ => {
            let id = snap.db_dump.expect("dump");
            db.load_checked(&mut || Ok(Box::new(read::blob_reader(repo, &id)?)))
                .map(|n| n.print())
        }
    }
}

/// Records the restored files in the files cache so the next snapshot does not read them:
/// the rows `fresh` holds, and for the parts it does not cover each file looked up in place.
fn refresh_cache(repo: &Repo, snap: &SnapshotRecord, plan: &Plan, fresh: Fresh) -> Result<()> {
    fsutil::failpoint_or_error("cache-refresh")?;
    let mut rows = fresh.rows;
    let mut add = |root: &Path, t: &Tree| {
        for e in t.entries.iter().filter(|e| e.kind == Kind::File) {
            let p = root.join(e.rel_path());
            if let Ok(md) = fs::symlink_metadata(&p)
                && md.is_file()
                && md.len() == e.size
            {
                let entry = CacheEntry::new(FileKey::of(&md), e.chunks.clone());
                rows.push((p.into_os_string().into_vec(), entry));
            }
        }
    };
    if matches!(
        plan.platform,
        PlatformAction::Recreate | PlatformAction::Repair
    ) && !fresh.platform
        && let Some(id) = snap.platform_tree
    {
        add(&plan.target_platform, &read::load_tree(repo, &id)?);
    }
    if !fresh.site
        && let Some(id) = snap.site_tree
    {
        add(&plan.site_target, &read::load_tree(repo, &id)?);
    }
    if let Some(id) = snap.bindings_tree {
        add(Path::new("/"), &read::load_tree(repo, &id)?);
    }
    if let Some(id) = snap.extra_tree {
        let t = read::load_tree(repo, &id)?;
        for x in &plan.extra_paths {
            if let Some((_, sub)) = super::extra::subtree(&t, x) {
                add(&plan.target_platform.join(x), &sub);
            }
        }
    }
    repo.cat.insert_cache(&rows)
}
