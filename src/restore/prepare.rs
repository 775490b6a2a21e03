//! Preparing a restore: every new tree, binding file and SQLite file is built in a temporary
//! place beside its target, reading and verifying every chunk, so corrupt data is found before
//! the live site is touched; a server database's dump is read through once for the same
//! reason. Then everything prepared is made durable. It never changes the live site.

use super::plan::{Plan, PlatformAction};
use super::write::{
    Written, apply_meta, apply_root, copy_owner_mode, remove_tree, sync_tree, write_file,
    write_tree,
};
use crate::catalog::{CacheEntry, SnapshotRecord};
use crate::db::Database;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::read;
use crate::repo::Repo;
use crate::store::ChunkReader;
use crate::tree::{Entry, Kind, Tree, TreePart};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files-cache rows for files this process wrote, by the paths they will have once in place,
/// from each file's own [`FileKey`] (so the restore's end looks no path up again); which
/// parts they cover (the others are looked up at the end: a restore finished by `recover`,
/// a repaired platform whose files were only partly replaced, bindings and extra paths).
#[derive(Debug, Default)]
pub(super) struct Fresh {
    pub rows: Vec<(Vec<u8>, CacheEntry)>,
    pub platform: bool,
    pub site: bool,
}

impl Fresh {
    /// Adds the rows of tree `t` written as `written`, whose root will be at `root`.
    fn add(&mut self, root: &Path, t: &Tree, written: &Written) {
        let files = t.entries.iter().zip(written);
        self.rows.extend(files.filter_map(|(e, st)| {
            let entry = CacheEntry::new((*st)?, e.chunks.clone());
            Some((root.join(e.rel_path()).into_os_string().into_vec(), entry))
        }));
    }
}

/// Builds the new trees, SQLite file and binding files in temporary places; returns the
/// files-cache rows of the trees it wrote.
pub(super) fn prepare(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<Fresh> {
    let mut fresh = Fresh::default();
    if plan.restore_files {
        let platform = prepare_platform(repo, snap, plan)?;
        if plan.platform == PlatformAction::Recreate
            && let Some((t, w)) = &platform
        {
            fresh.add(&plan.target_platform, t, w);
            fresh.platform = true;
        }
        let platform_tree = platform.map(|(t, _)| t);
        let (site_tree, w) = prepare_site(repo, snap, plan, platform_tree.as_ref())?;
        fresh.add(&plan.site_target, &site_tree, &w);
        fresh.site = true;
        prepare_bindings(repo, snap, plan)?;
        super::extra::prepare_extra(repo, snap, plan)?;
    }
    if plan.restore_db {
        prepare_db(repo, snap, plan)?;
    } else if plan.restore_files {
        carry_live_sqlite(repo, plan)?;
    }
    sync_prepared(plan)?;
    fsutil::failpoint("restore-prepare-done");
    Ok(fresh)
}

/// Writes the snapshot's platform into its temporary folder when it is recreated or repaired;
/// returns its tree as written.
fn prepare_platform(
    repo: &Repo,
    snap: &SnapshotRecord,
    plan: &Plan,
) -> Result<Option<(Tree, Written)>> {
    if !matches!(
        plan.platform,
        PlatformAction::Recreate | PlatformAction::Repair
    ) {
        return Ok(None);
    }
    let t = read::shared_part_tree(repo, snap, TreePart::Platform)?.expect("platform tree");
    // Never another site's folder or extra path, even where an older snapshot recorded one.
    let t = crate::site::snapshot_filter(&repo.cat, snap, &plan.target_platform)?.apply(&t);
    crate::progress::phase(
        &format!("{}: writing the platform", plan.site),
        t.bytes(),
        t.files(),
    );
    let w = write_tree(repo, &t, &plan.platform_tmp, &snap.id)?;
    Ok(Some((t, w)))
}

/// The temporary site folder: inside a recreated platform's temporary folder, else beside the
/// live one.
fn site_tmp(plan: &Plan) -> PathBuf {
    if plan.platform == PlatformAction::Recreate {
        plan.platform_tmp.join(&plan.site_dir)
    } else {
        plan.at(&plan.site_tmp)
    }
}

/// Writes the snapshot's site folder into its temporary place; returns its tree as written.
fn prepare_site(
    repo: &Repo,
    snap: &SnapshotRecord,
    plan: &Plan,
    platform_tree: Option<&Tree>,
) -> Result<(std::sync::Arc<Tree>, Written)> {
    // The site folder: in a recreated platform its parent is created at the rename.
    let site_tree = read::shared_part_tree(repo, snap, TreePart::Site)?.unwrap_or_default();
    if let Some(parent) = plan.site_tmp.parent()
        && !parent.exists()
        && plan.platform != PlatformAction::Recreate
    {
        let parent = plan.at(parent);
        fs::create_dir_all(&parent).at(&parent)?;
    }
    let site_tmp = site_tmp(plan);
    if let Some(parent) = site_tmp.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    crate::progress::phase(
        &format!("{}: writing the site folder", plan.site),
        site_tree.bytes(),
        site_tree.files(),
    );
    let written = write_tree(repo, &site_tree, &site_tmp, &snap.id)?;
    if plan.platform == PlatformAction::Recreate
        && let Some(pt) = platform_tree
    {
        // Adding the site folder touched its parent (sites/): its recorded metadata again.
        let parent = Path::new(&plan.site_dir).parent().unwrap_or(Path::new(""));
        if let Some(e) = pt.entries.iter().find(|e| e.rel_path() == parent) {
            apply_meta(site_tmp.parent().expect("parent"), e)?;
        }
    }
    if site_tree.root.is_none() {
        // A snapshot without the folder's own metadata: take the live copy's.
        copy_owner_mode(live_site_dir(plan).as_deref(), &site_tmp, 0o755)?;
    }
    Ok((site_tree, written))
}

/// Writes each binding file (or symlink) of the snapshot beside its target.
fn prepare_bindings(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    let t = read::shared_part_tree(repo, snap, TreePart::Bindings)?.unwrap_or_default();
    for (b, tmp) in plan.bindings.iter().zip(&plan.binding_tmps) {
        let rel = b.strip_prefix("/").unwrap_or(b);
        let e = t
            .entries
            .iter()
            .find(|e| e.rel_path() == rel)
            .ok_or_else(|| Error::Corrupt(format!("binding {} not in snapshot", b.display())))?;
        if let Some(parent) = tmp.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        let mut reader = read::chunk_reader(repo);
        prepare_binding(&mut reader, e, b, tmp, &snap.id)?;
    }
    Ok(())
}

/// Writes one binding entry `e` (for the binding `b`) at `tmp`.
fn prepare_binding(
    reader: &mut ChunkReader,
    e: &Entry,
    b: &Path,
    tmp: &Path,
    snap: &str,
) -> Result<()> {
    match e.kind {
        Kind::File => write_file(reader, e, tmp).map_err(|err| match err {
            Error::Corrupt(m) => Error::Corrupt(format!(
                "snapshot {snap}, binding file {}: {m}",
                b.display()
            )),
            other => other,
        }),
        Kind::Symlink => {
            std::os::unix::fs::symlink(
                OsStr::from_bytes(e.target.as_deref().unwrap_or_default()),
                tmp,
            )
            .at(tmp)?;
            apply_meta(tmp, e)
        }
        Kind::Dir => Ok(()),
    }
}

/// Writes the new SQLite file from the dump, or reads a server database's dump through once
/// so corrupt data stops the restore before any change (it is loaded at its step).
fn prepare_db(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    let id = snap.db_dump.expect("dump");
    let size = read::blob_size(repo, &id)?;
    crate::progress::phase(
        &format!("{}: reading the database dump", plan.site),
        size,
        0,
    );
    // The dump's ids stream from its list chunks: its list is never held whole.
    let mut reader = read::blob_reader(repo, &id)?;
    let wrap = |e: std::io::Error, p: &Path| match e.get_ref().and_then(|x| x.downcast_ref()) {
        Some(Error::Corrupt(m)) => {
            Error::Corrupt(format!("snapshot {}, database dump: {m}", snap.id))
        }
        _ => Error::io(p, e),
    };
    let Some(tmp) = &plan.sqlite_tmp else {
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| wrap(e, &repo.root))?;
        return Ok(());
    };
    let tmp = match (&plan.platform, &plan.sqlite_in_site) {
        (PlatformAction::Recreate, Some(rel)) => plan.platform_tmp.join(&plan.site_dir).join(rel),
        _ => plan.at(tmp),
    };
    if let Some(parent) = tmp.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    let mut f = fsutil::create_private_file(&tmp)?;
    std::io::copy(&mut reader, &mut f).map_err(|e| wrap(e, &tmp))?;
    f.sync_all().at(&tmp)?;
    // The web server must keep writing it: same owner and mode as the live file.
    let live = repo
        .cat
        .site(&plan.site)?
        .database_at(&plan.current_platform)?
        .and_then(|d| d.sqlite_path().map(Path::to_path_buf))
        .filter(|p| p.exists());
    copy_owner_mode(live.as_deref(), &tmp, 0o640)?;
    if plan.sqlite_in_site.is_some() && plan.restore_files {
        // Writing the file touched the site folder: its recorded mtime again.
        let site_root = tmp.ancestors().nth(
            plan.sqlite_in_site
                .as_ref()
                .map_or(1, |r| r.components().count()),
        );
        if let (Some(dir), Some(t)) = (
            site_root,
            read::shared_part_tree(repo, snap, TreePart::Site)?,
        ) {
            apply_root(dir, t.root.as_ref())?;
        }
    }
    Ok(())
}

/// With --no-db and the SQLite database inside the site folder, copies the live database into
/// the new site folder.
fn carry_live_sqlite(repo: &Repo, plan: &Plan) -> Result<()> {
    if let (Some(rel), Some(Database::Sqlite(live))) = (
        &plan.sqlite_in_site,
        repo.cat
            .site(&plan.site)?
            .database_at(&plan.current_platform)?,
    ) && live.exists()
    {
        let dest = site_tmp(plan).join(rel);
        let live_db = Database::Sqlite(live.clone());
        let copy = Database::Sqlite(dest);
        live_db.dump(&repo.tmp_dir(), &mut |r| copy.load(r))?;
    }
    Ok(())
}

/// Makes everything prepared durable before the journal says so: one `syncfs` per
/// filesystem holding something prepared (everything is written by now, so a second
/// `syncfs` of the same filesystem would only flush other programs' writes).
fn sync_prepared(plan: &Plan) -> Result<()> {
    let trees = [&plan.platform_tmp, &plan.site_tmp]
        .into_iter()
        .chain(&plan.extra_tmps)
        .filter(|p| p.is_dir())
        .map(PathBuf::as_path);
    let parents = plan
        .binding_tmps
        .iter()
        .chain(&plan.sqlite_tmp)
        .chain(&plan.extra_tmps)
        .filter_map(|p| p.parent().filter(|d| d.exists()));
    let mut synced = std::collections::HashSet::new();
    for dir in trees.chain(parents) {
        let dev = fs::metadata(dir).at(dir)?.dev();
        if synced.insert(dev) {
            sync_tree(dir)?;
        }
    }
    Ok(())
}

/// The live site folder, wherever it is now.
fn live_site_dir(plan: &Plan) -> Option<PathBuf> {
    plan.current_copy
        .clone()
        .or_else(|| Some(plan.site_target.clone()))
        .filter(|p| p.is_dir())
}

/// Undoes a restore that had not started changing the live site: removes temporary files.
pub(super) fn rollback(plan: &Plan) {
    let _ = remove_tree(&plan.platform_tmp);
    let _ = remove_tree(&plan.at(&plan.site_tmp));
    if let Some(t) = &plan.sqlite_tmp {
        let _ = fs::remove_file(plan.at(t));
    }
    for t in &plan.binding_tmps {
        let _ = fs::remove_file(t);
    }
    for t in &plan.extra_tmps {
        let _ = remove_tree(t);
    }
}
