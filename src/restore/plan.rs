//! The restore plan: what a restore will do to the platform (keep, recreate, drift, repair),
//! the site folder, the database and the binding files, with every working path fixed up
//! front so `recover` finds them. Planning reads live trees but changes nothing.

use crate::capture;
use crate::catalog::{ShortId, SiteRecord, SnapshotRecord};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::read;
use crate::repo::Repo;
use crate::site;
use crate::tree::{self, TreeDiff, TreePart};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct RestoreOpts {
    /// Bring a drifted platform back to the snapshot's files (`--repair-platform`).
    pub repair_platform: bool,
    /// Leave the database alone (`--no-db`).
    pub no_db: bool,
    /// Leave platform, site folder and binding files alone (`--no-files`).
    pub no_files: bool,
    /// Keep the replaced site folders (`--keep-old`).
    pub keep_old: bool,
    /// Leave a platform that changed since the snapshot as it is now (`--keep-platform`).
    pub keep_platform: bool,
}

/// What happens to the snapshot's platform.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PlatformAction {
    /// It exists and matches the snapshot.
    Keep,
    /// It is gone: rebuilt from the snapshot.
    Recreate,
    /// It exists but differs: refused (without --repair-platform).
    Drift,
    /// It differs and --repair-platform brings back the snapshot's files.
    Repair,
    /// It differs and --keep-platform leaves it as it is (a hotfix on a shared platform).
    Kept,
    /// Files are not restored (--no-files).
    Untouched,
}

/// The plan, printed before anything happens and kept in the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The journal id of this restore.
    pub journal: String,
    /// The site restored.
    pub site: String,
    /// The snapshot restored to.
    pub snapshot: String,
    /// When the snapshot was taken (RFC 3339).
    pub snapshot_time: String,
    /// The platform the site is on now.
    pub current_platform: PathBuf,
    /// The platform the snapshot puts it back on.
    pub target_platform: PathBuf,
    /// What happens to the target platform.
    pub platform: PlatformAction,
    /// How the live platform differs from the snapshot's (drift or repair).
    pub platform_diff: Option<TreeDiffSer>,
    /// Other sites on the target platform.
    pub other_sites: Vec<String>,
    /// Files are restored (not --no-files).
    pub restore_files: bool,
    /// The site folder, relative to the platform.
    pub site_dir: String,
    /// Where the site folder is put back.
    pub site_target: PathBuf,
    /// The site folder on another platform, moved away after the new one is in place.
    pub current_copy: Option<PathBuf>,
    /// The database is restored (not --no-db, and the snapshot holds a dump).
    pub restore_db: bool,
    /// The database restored into (redacted URL).
    pub db: Option<String>,
    /// SQLite file path relative to the site folder, when it lives there.
    pub sqlite_in_site: Option<PathBuf>,
    /// The binding files written back.
    pub bindings: Vec<PathBuf>,
    // Working paths, fixed in the plan so `recover` finds them.
    /// The recreated platform, or the snapshot's platform files for a repair, being built.
    pub platform_tmp: PathBuf,
    /// Where a repair moves the live platform files it replaces.
    pub platform_aside: PathBuf,
    /// The new site folder being built.
    pub site_tmp: PathBuf,
    /// Where the live site folder is moved aside.
    pub site_aside: PathBuf,
    /// Where the site folder on another platform is moved aside.
    pub current_aside: Option<PathBuf>,
    /// The new SQLite file being built.
    pub sqlite_tmp: Option<PathBuf>,
    /// The new binding files being built, one per binding.
    pub binding_tmps: Vec<PathBuf>,
    /// Keep the replaced site folders (--keep-old).
    pub keep_old: bool,
    /// The site's extra paths put back (those the snapshot holds), relative to the platform.
    #[serde(default)]
    pub extra_paths: Vec<String>,
    /// The new extra paths being built, one per extra path.
    #[serde(default)]
    pub extra_tmps: Vec<PathBuf>,
    /// Where the live extra paths are moved aside, one per extra path.
    #[serde(default)]
    pub extra_asides: Vec<PathBuf>,
    /// The folder holding the site folder, held open while the restore writes in it (see
    /// `held`); not part of the journal.
    #[serde(skip)]
    pub(super) held: Option<std::sync::Arc<super::held::Held>>,
}

impl Plan {
    /// Holds the folder of the site folder open (when files are restored into an existing
    /// platform), refusing one reached through a symlink. From then on every write in it goes
    /// through the handle.
    pub(super) fn hold(&mut self) -> Result<()> {
        if !self.restore_files || self.platform == PlatformAction::Recreate {
            return Ok(());
        }
        let Some(dir) = self.site_target.parent() else {
            return Ok(());
        };
        // No sites/ folder yet (made when the site folder is prepared): hold the platform.
        let dir = [dir, self.target_platform.as_path()]
            .into_iter()
            .find(|d| fs::symlink_metadata(d).is_ok());
        if let Some(d) = dir {
            self.held = Some(std::sync::Arc::new(super::held::Held::open(d)?));
        }
        Ok(())
    }

    /// `p` reached through the held folder when it lies in it, else `p`.
    pub(super) fn at(&self, p: &Path) -> PathBuf {
        match &self.held {
            Some(h) => h.at(p),
            None => p.to_path_buf(),
        }
    }

    /// Fails when the held folder is no longer at its path.
    pub(super) fn check_held(&self) -> Result<()> {
        match &self.held {
            Some(h) => h.check(),
            None => Ok(()),
        }
    }

    /// `e` with paths through the held folder shown as its own path.
    pub(super) fn unmap(&self, e: Error) -> Error {
        match &self.held {
            Some(h) => h.unmap(e),
            None => e,
        }
    }
}

/// A serializable tree difference.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TreeDiffSer {
    /// Paths only in the live tree.
    pub added: Vec<String>,
    /// Paths only in the snapshot.
    pub removed: Vec<String>,
    /// Paths in both that differ.
    pub changed: Vec<String>,
}

impl From<TreeDiff> for TreeDiffSer {
    fn from(d: TreeDiff) -> Self {
        TreeDiffSer {
            added: d.added,
            removed: d.removed,
            changed: d.changed,
        }
    }
}

impl TreeDiffSer {
    /// The difference as a [`TreeDiff`].
    pub fn as_diff(&self) -> TreeDiff {
        TreeDiff {
            added: self.added.clone(),
            removed: self.removed.clone(),
            changed: self.changed.clone(),
        }
    }
}

/// The name of a working path beside `path`: `.<name>.sitesnap-<tag>-<journal>`.
pub(super) fn aside_name(path: &Path, tag: &str, journal: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.sitesnap-{tag}-{journal}"))
}

/// Builds the plan for restoring `snap`. Reads live trees but changes nothing.
pub fn plan(repo: &Repo, snap: &SnapshotRecord, opts: &RestoreOpts) -> Result<(Plan, SiteRecord)> {
    let site = repo.cat.site(&snap.site)?;
    check_can_plan(repo, snap, opts, &site)?;
    check_not_lost(repo, snap, opts)?;
    let current = site::locate(&repo.cat, &site)?;
    check_platform_path(snap)?;
    let target = snap.platform_path.clone();
    let journal = fsutil::random_hex(6);
    let restore_files = !opts.no_files;
    let site_target = target.join(&snap.site_dir);
    let (platform, diff) = platform_action(repo, snap, opts, &site, &site_target)?;
    let current_copy = {
        let p = current.join(&site.site_dir);
        (restore_files && current != target && p.exists()).then_some(p)
    };
    let current_aside = current_copy
        .as_ref()
        .map(|p| aside_name(p, "old", &journal));
    let restore_db = !opts.no_db && snap.db_dump.is_some();
    let sqlite_in_site = site.sqlite_in_site_dir()?;
    // The database goes where the site will be: on the snapshot's platform, or where the site
    // is now when its files stay (--no-files).
    let db_target = site.database_at(if restore_files { &target } else { &current })?;
    let sqlite_tmp = match (&db_target, &sqlite_in_site, restore_db) {
        (Some(Database::Sqlite(_)), Some(rel), true) if restore_files => {
            Some(aside_name(&site_target, "new", &journal).join(rel))
        }
        (Some(Database::Sqlite(p)), _, true) => Some(aside_name(p, "new", &journal)),
        _ => None,
    };
    let bindings = binding_paths(repo, snap, restore_files)?;
    let binding_tmps = bindings
        .iter()
        .map(|b| aside_name(b, "new", &journal))
        .collect();
    let (extra_paths, extra_tmps, extra_asides) =
        plan_extra(repo, snap, &target, &journal, restore_files)?;
    let p = Plan {
        journal: journal.clone(),
        site: site.uri.clone(),
        snapshot: snap.id.clone(),
        snapshot_time: snap.time.to_rfc3339(),
        current_platform: current,
        target_platform: target.clone(),
        platform,
        platform_diff: diff,
        other_sites: other_sites(repo, snap, &site, &target)?,
        restore_files,
        site_dir: snap.site_dir.clone(),
        site_target: site_target.clone(),
        current_copy,
        restore_db,
        db: db_target.as_ref().map(|d| d.redacted()),
        sqlite_in_site,
        bindings,
        platform_tmp: aside_name(&target, "new", &journal),
        platform_aside: aside_name(&target, "replaced", &journal),
        site_tmp: aside_name(&site_target, "new", &journal),
        site_aside: aside_name(&site_target, "old", &journal),
        current_aside,
        sqlite_tmp,
        binding_tmps,
        keep_old: opts.keep_old,
        extra_paths,
        extra_tmps,
        extra_asides,
        held: None,
    };
    Ok((p, site))
}

/// Refuses a restore while another one of the site is unfinished, one that restores nothing,
/// and a snapshot whose site folder could lead outside the platform.
fn check_can_plan(
    repo: &Repo,
    snap: &SnapshotRecord,
    opts: &RestoreOpts,
    site: &SiteRecord,
) -> Result<()> {
    if let Some(j) = repo.cat.open_journal_for(&site.uri)? {
        return Err(Error::JournalOpen {
            site: site.uri.clone(),
            journal: j.id,
        });
    }
    if opts.no_db && opts.no_files {
        return Err(Error::Usage(
            "--no-db and --no-files together leave nothing to restore".into(),
        ));
    }
    fsutil::check_relative(&snap.site_dir, "site directory in snapshot")?;
    // The stored site and snapshot are held to the rules of registration.
    let site_web_root = repo
        .cat
        .platform_web_root(&site.platform)?
        .or_else(|| snap.web_root.clone());
    for (dir, web_root) in [
        (&snap.site_dir, snap.web_root.as_deref()),
        (&site.site_dir, site_web_root.as_deref()),
    ] {
        site::validate_site_folder(dir, web_root)
            .map_err(|e| Error::Refused(format!("site {}: {e}", site.uri)))?;
    }
    for p in [&snap.platform_path, &site.platform] {
        site::check_platform(p, &repo.root)
            .map_err(|e| Error::Refused(format!("site {}: {e}", site.uri)))?;
    }
    Ok(())
}

/// Refuses a snapshot whose parts being restored were marked as lost by `repair snapshots`
/// and are still lost (a later snapshot may have stored the damaged chunks anew).
fn check_not_lost(repo: &Repo, snap: &SnapshotRecord, opts: &RestoreOpts) -> Result<()> {
    if repo.cat.lost_in(&snap.id)?.is_empty() {
        return Ok(());
    }
    let now = crate::verify::lost(repo)?;
    let Some(s) = now.iter().find(|s| s.id == snap.id) else {
        return Ok(());
    };
    let hit: Vec<_> = s
        .damaged
        .iter()
        .filter(|d| {
            if d.part == "database" {
                !opts.no_db
            } else {
                !opts.no_files
            }
        })
        .collect();
    match hit.first() {
        None => Ok(()),
        Some(first) => Err(Error::Refused(format!(
            "snapshot {} has lost data: {} item(s), first {} {} (`sitesnap repair snapshots` lists them)",
            snap.id.short(),
            hit.len(),
            first.part,
            first.path
        ))),
    }
}

/// Refuses a snapshot that names a relative platform path.
fn check_platform_path(snap: &SnapshotRecord) -> Result<()> {
    if !snap.platform_path.is_absolute() {
        return Err(Error::Corrupt(format!(
            "snapshot {} names a relative platform path",
            snap.id
        )));
    }
    Ok(())
}

/// What happens to the snapshot's platform: compares the live platform (if any) with the
/// snapshot's platform tree.
fn platform_action(
    repo: &Repo,
    snap: &SnapshotRecord,
    opts: &RestoreOpts,
    site: &SiteRecord,
    site_target: &Path,
) -> Result<(PlatformAction, Option<TreeDiffSer>)> {
    if opts.no_files {
        return Ok((PlatformAction::Untouched, None));
    }
    let target = &snap.platform_path;
    let snap_tree = read::shared_part_tree(repo, snap, TreePart::Platform)?;
    if !target.exists() {
        if opts.keep_platform {
            return Err(Error::Refused(format!(
                "platform {} of snapshot {} no longer exists, so there is nothing to keep: use the normal restore (without --keep-platform), which recreates it",
                fsutil::shown(target),
                snap.id.short()
            )));
        }
        if snap_tree.is_none() {
            return Err(Error::Refused(format!(
                "platform {} is gone and snapshot {} does not hold it",
                target.display(),
                snap.id
            )));
        }
        return Ok((PlatformAction::Recreate, None));
    }
    let Some(t) = snap_tree else {
        return Ok((PlatformAction::Keep, None));
    };
    let sqlite = site.database_at(target)?;
    let mut skip = capture::db_side_files(sqlite.as_ref());
    skip.push(site_target.to_path_buf());
    // Other sites' folders and extra paths are never platform code, whatever the platform's
    // shape, and whatever an older snapshot recorded.
    let filter = site::snapshot_filter(&repo.cat, snap, target)?;
    let live = capture::scan_platform(repo, target, &filter, &skip)?;
    let d = tree::diff(&filter.apply(&t), &live);
    Ok(if d.is_empty() {
        (PlatformAction::Keep, None)
    } else if opts.keep_platform {
        (PlatformAction::Kept, Some(TreeDiffSer::from(d)))
    } else if opts.repair_platform {
        (PlatformAction::Repair, Some(TreeDiffSer::from(d)))
    } else {
        (PlatformAction::Drift, Some(TreeDiffSer::from(d)))
    })
}

/// The other sites on platform `target`: known to the catalogue, or folders in its web root's
/// `sites/`.
fn other_sites(
    repo: &Repo,
    snap: &SnapshotRecord,
    site: &SiteRecord,
    target: &Path,
) -> Result<Vec<String>> {
    let web_root = site::snapshot_filter(&repo.cat, snap, target)?.web_root;
    let mut other_sites: Vec<String> = repo
        .cat
        .sites()?
        .into_iter()
        .filter(|s| s.uri != site.uri && site::locate(&repo.cat, s).ok().as_deref() == Some(target))
        .map(|s| s.uri)
        .collect();
    if let Ok(rd) = fs::read_dir(target.join(web_root).join("sites")) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                && n != "all"
                && n != "default"
                && n != site.uri
                && !n.starts_with('.')
                && !other_sites.contains(&n)
            {
                other_sites.push(n);
            }
        }
    }
    other_sites.sort();
    Ok(other_sites)
}

/// The absolute paths of the snapshot's binding files (none when files are not restored).
fn binding_paths(repo: &Repo, snap: &SnapshotRecord, restore_files: bool) -> Result<Vec<PathBuf>> {
    let bindings_tree = match (snap.bindings_tree, restore_files) {
        (Some(_), true) => {
            read::shared_part_tree(repo, snap, TreePart::Bindings)?.unwrap_or_default()
        }
        _ => Default::default(),
    };
    Ok(bindings_tree
        .entries
        .iter()
        .map(|e| Path::new("/").join(e.rel_path()))
        .collect())
}

impl Plan {
    /// The platform whose copy of the site the database belongs to: the snapshot's when the
    /// files are restored, else the one the site is on now (`--no-files`).
    pub(super) fn db_platform(&self) -> &Path {
        if self.restore_files {
            &self.target_platform
        } else {
            &self.current_platform
        }
    }

    /// The plan in words, one line per part.
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        out.push(format!(
            "restore site {} to snapshot {} ({})",
            self.site,
            &self.snapshot[..8.min(self.snapshot.len())],
            self.snapshot_time
        ));
        out.push(format!(
            "  now on:     {}",
            fsutil::shown(&self.current_platform)
        ));
        out.push(format!(
            "  back to:    {}",
            fsutil::shown(&self.target_platform)
        ));
        let p = match self.platform {
            PlatformAction::Keep => "exists and matches the snapshot: used as it is".to_string(),
            PlatformAction::Recreate => "is gone: recreated from the snapshot".to_string(),
            PlatformAction::Drift => format!(
                "differs from the snapshot: REFUSED (use --repair-platform to bring back the snapshot's files{})",
                self.others_note()
            ),
            PlatformAction::Repair => format!(
                "differs from the snapshot: repaired to the snapshot's files{}",
                self.others_note()
            ),
            PlatformAction::Kept => format!(
                "differs from the snapshot: kept as it is now (--keep-platform){}",
                if self.other_sites.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; the other sites on it are not touched: {}",
                        self.other_sites.join(", ")
                    )
                }
            ),
            PlatformAction::Untouched => "not touched (--no-files)".to_string(),
        };
        out.push(format!("  platform:   {p}"));
        if let Some(d) = &self.platform_diff {
            out.push(d.as_diff().summary(20));
        }
        if self.restore_files {
            out.push(format!(
                "  site dir:   {} replaced by the snapshot's (the live one is moved aside)",
                fsutil::shown(&self.site_target)
            ));
            if let Some(c) = &self.current_copy {
                out.push(format!(
                    "  old copy:   {} moved away from the current platform",
                    fsutil::shown(c)
                ));
            }
        } else {
            out.push("  site dir:   not touched (--no-files)".to_string());
        }
        match (&self.db, self.restore_db) {
            (Some(db), true) => out.push(format!(
                "  database:   {}: every table dropped, then the snapshot's dump loaded",
                fsutil::shown_text(db)
            )),
            (Some(db), false) => out.push(format!(
                "  database:   {}: not touched",
                fsutil::shown_text(db)
            )),
            (None, _) => out.push("  database:   none".to_string()),
        }
        for x in &self.extra_paths {
            out.push(format!(
                "  extra path: {} replaced by the snapshot's (the live one is moved aside)",
                self.target_platform.join(x).display()
            ));
        }
        for b in &self.bindings {
            out.push(format!("  binding:    {} written back", fsutil::shown(b)));
        }
        out.join("\n")
    }

    fn others_note(&self) -> String {
        if self.other_sites.is_empty() {
            String::new()
        } else {
            format!(
                "; this also affects other sites on that platform: {}",
                self.other_sites.join(", ")
            )
        }
    }
}

/// The extra paths a restore of `snap` puts back (those the snapshot holds) with their
/// temporary and aside paths beside each target on `target`.
fn plan_extra(
    repo: &Repo,
    snap: &SnapshotRecord,
    target: &Path,
    journal: &str,
    restore_files: bool,
) -> Result<(Vec<String>, Vec<PathBuf>, Vec<PathBuf>)> {
    let t = match read::part_tree(repo, snap, TreePart::Extra)? {
        Some(t) if restore_files => t,
        _ => return Ok(Default::default()),
    };
    let mut paths = Vec::new();
    for x in &snap.extra_paths {
        fsutil::check_relative(x, "extra path in snapshot")?;
        if t.entries.iter().any(|e| e.path == x.as_bytes()) {
            paths.push(x.clone());
        }
    }
    let tmps = paths
        .iter()
        .map(|x| aside_name(&target.join(x), "new", journal))
        .collect();
    let asides = paths
        .iter()
        .map(|x| aside_name(&target.join(x), "old", journal))
        .collect();
    Ok((paths, tmps, asides))
}
