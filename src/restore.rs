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

use crate::capture::{self, CaptureOpts};
use crate::catalog::{CacheEntry, Catalog, JournalRecord, SiteRecord, SnapshotRecord};
use crate::db::Database;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::repo::Repo;
use crate::site;
use crate::store::ChunkReader;
use crate::tree::{self, Entry, Kind, RootMeta, Tree, TreeDiff};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct RestoreOpts {
    pub repair_platform: bool,
    pub no_db: bool,
    pub no_files: bool,
    pub keep_old: bool,
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
    /// Files are not restored (--no-files).
    Untouched,
}

/// The plan, printed before anything happens and kept in the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub journal: String,
    pub site: String,
    pub snapshot: String,
    pub snapshot_time: String,
    pub current_platform: PathBuf,
    pub target_platform: PathBuf,
    pub platform: PlatformAction,
    pub platform_diff: Option<TreeDiffSer>,
    pub other_sites: Vec<String>,
    pub restore_files: bool,
    pub site_dir: String,
    pub site_target: PathBuf,
    /// The site folder on another platform, moved away after the new one is in place.
    pub current_copy: Option<PathBuf>,
    pub restore_db: bool,
    pub db: Option<String>,
    /// SQLite file path relative to the site folder, when it lives there.
    pub sqlite_in_site: Option<PathBuf>,
    pub bindings: Vec<PathBuf>,
    // Working paths, fixed in the plan so `recover` finds them.
    pub platform_tmp: PathBuf,
    pub platform_aside: PathBuf,
    pub site_tmp: PathBuf,
    pub site_aside: PathBuf,
    pub current_aside: Option<PathBuf>,
    pub sqlite_tmp: Option<PathBuf>,
    pub binding_tmps: Vec<PathBuf>,
    pub keep_old: bool,
}

/// A serializable tree difference.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TreeDiffSer {
    pub added: Vec<String>,
    pub removed: Vec<String>,
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
    fn as_diff(&self) -> TreeDiff {
        TreeDiff {
            added: self.added.clone(),
            removed: self.removed.clone(),
            changed: self.changed.clone(),
        }
    }
}

/// Journal steps, in order. `journals.step` holds the number of the last one completed.
const STEP_PREPARED: u32 = 1;
const STEP_PLATFORM: u32 = 2;
const STEP_SITE: u32 = 3;
const STEP_DB: u32 = 4;
const STEP_BINDINGS: u32 = 5;

/// The outcome of a restore.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub plan: Plan,
    pub pre_restore: String,
    pub undo: String,
    pub removed_old: Vec<PathBuf>,
    pub kept_old: Vec<PathBuf>,
}

fn aside_name(path: &Path, tag: &str, journal: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.sitesnap-{tag}-{journal}"))
}

/// Builds the plan for restoring `snap`. Reads live trees but changes nothing.
pub fn plan(repo: &Repo, snap: &SnapshotRecord, opts: &RestoreOpts) -> Result<(Plan, SiteRecord)> {
    let site = repo.cat.site(&snap.site)?;
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
    let current = site::locate(&repo.cat, &site)?;
    let target = snap.platform_path.clone();
    if !target.is_absolute() {
        return Err(Error::Corrupt(format!(
            "snapshot {} names a relative platform path",
            snap.id
        )));
    }
    let journal = fsutil::random_hex(6);
    let restore_files = !opts.no_files;
    let snap_tree = match snap.platform_tree {
        Some(id) if restore_files => Some(capture::snapshot_tree(repo, snap, "platform", &id)?),
        _ => None,
    };
    let site_target = target.join(&snap.site_dir);
    let (platform, diff) = if !restore_files {
        (PlatformAction::Untouched, None)
    } else if !target.exists() {
        if snap_tree.is_none() {
            return Err(Error::Refused(format!(
                "platform {} is gone and snapshot {} does not hold it",
                target.display(),
                snap.id
            )));
        }
        (PlatformAction::Recreate, None)
    } else if let Some(t) = &snap_tree {
        let sqlite = site.database_at(&target)?;
        let mut skip = capture::db_side_files(sqlite.as_ref());
        skip.push(site_target.clone());
        let live = capture::scan_platform(&repo.cat, &target, &skip)?;
        let d = tree::diff(t, &live);
        if d.is_empty() {
            (PlatformAction::Keep, None)
        } else if opts.repair_platform {
            (PlatformAction::Repair, Some(TreeDiffSer::from(d)))
        } else {
            (PlatformAction::Drift, Some(TreeDiffSer::from(d)))
        }
    } else {
        (PlatformAction::Keep, None)
    };
    let mut other_sites: Vec<String> = repo
        .cat
        .sites()?
        .into_iter()
        .filter(|s| s.uri != site.uri && site::locate(&repo.cat, s).ok().as_ref() == Some(&target))
        .map(|s| s.uri)
        .collect();
    if let Ok(rd) = fs::read_dir(target.join("sites")) {
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
    let bindings_tree = match (snap.bindings_tree, restore_files) {
        (Some(id), true) => capture::snapshot_tree(repo, snap, "bindings", &id)?,
        _ => Tree::default(),
    };
    let bindings: Vec<PathBuf> = bindings_tree
        .entries
        .iter()
        .map(|e| Path::new("/").join(e.rel_path()))
        .collect();
    let binding_tmps = bindings
        .iter()
        .map(|b| aside_name(b, "new", &journal))
        .collect();
    let p = Plan {
        journal: journal.clone(),
        site: site.uri.clone(),
        snapshot: snap.id.clone(),
        snapshot_time: snap.time.to_rfc3339(),
        current_platform: current,
        target_platform: target.clone(),
        platform,
        platform_diff: diff,
        other_sites,
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
    };
    Ok((p, site))
}

impl Plan {
    /// The plan in words, one line per part.
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        out.push(format!(
            "restore site {} to snapshot {} ({})",
            self.site,
            &self.snapshot[..8.min(self.snapshot.len())],
            self.snapshot_time
        ));
        out.push(format!("  now on:     {}", self.current_platform.display()));
        out.push(format!("  back to:    {}", self.target_platform.display()));
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
            PlatformAction::Untouched => "not touched (--no-files)".to_string(),
        };
        out.push(format!("  platform:   {p}"));
        if let Some(d) = &self.platform_diff {
            out.push(d.as_diff().summary(20));
        }
        if self.restore_files {
            out.push(format!(
                "  site dir:   {} replaced by the snapshot's (the live one is moved aside)",
                self.site_target.display()
            ));
            if let Some(c) = &self.current_copy {
                out.push(format!(
                    "  old copy:   {} moved away from the current platform",
                    c.display()
                ));
            }
        } else {
            out.push("  site dir:   not touched (--no-files)".to_string());
        }
        match (&self.db, self.restore_db) {
            (Some(db), true) => out.push(format!(
                "  database:   {db}: every table dropped, then the snapshot's dump loaded"
            )),
            (Some(db), false) => out.push(format!("  database:   {db}: not touched")),
            (None, _) => out.push("  database:   none".to_string()),
        }
        for b in &self.bindings {
            out.push(format!("  binding:    {} written back", b.display()));
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

// ---------------------------------------------------------------- writing trees

/// Is the process root (so owners can be restored)?
fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn set_times(path: &Path, mtime_ns: i64, follow: bool) -> Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("{}: NUL in path", path.display())))?;
    let ts = libc::timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000),
    };
    let times = [ts, ts];
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) };
    if r != 0 {
        return Err(Error::io(path, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Sets owner (as root), mode and mtime of a written entry.
fn apply_meta(path: &Path, e: &Entry) -> Result<()> {
    if is_root() {
        std::os::unix::fs::lchown(path, Some(e.uid), Some(e.gid)).at(path)?;
    }
    if e.kind != Kind::Symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(e.mode)).at(path)?;
    }
    set_times(path, e.mtime_ns, e.kind != Kind::Symlink)
}

/// Checks a tree can be written under a root without escaping it: relative paths, no `..`, and
/// no entry below a symlink of the same tree.
fn check_tree(t: &Tree, snap: &str) -> Result<()> {
    t.validate()
        .map_err(|e| Error::Corrupt(format!("snapshot {snap}: {e}")))?;
    let links: HashSet<&[u8]> = t
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Symlink)
        .map(|e| &e.path[..])
        .collect();
    for e in &t.entries {
        let mut p = e.rel_path();
        while let Some(parent) = p.parent() {
            if links.contains(parent.as_os_str().as_bytes()) {
                return Err(Error::Corrupt(format!(
                    "snapshot {snap}: {} lies below a symlink",
                    e.path_str()
                )));
            }
            p = parent;
        }
    }
    Ok(())
}

/// Writes `t` into the new folder `dest` (which must not exist), reading and verifying every
/// chunk; files are written by several threads. `root_meta` gives the root folder's own mode.
pub fn write_tree(repo: &Repo, t: &Tree, dest: &Path, snap: &str) -> Result<()> {
    check_tree(t, snap)?;
    fs::create_dir(dest).at(dest)?;
    // Folders first (owner-writable until the end), then symlinks, then files in parallel.
    for e in t.entries.iter().filter(|e| e.kind == Kind::Dir) {
        let p = dest.join(e.rel_path());
        fs::create_dir(&p).at(&p)?;
    }
    for e in t.entries.iter().filter(|e| e.kind == Kind::Symlink) {
        let p = dest.join(e.rel_path());
        let target = e.target.as_deref().unwrap_or_default();
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &p).at(&p)?;
        apply_meta(&p, e)?;
    }
    let files: Vec<&Entry> = t.entries.iter().filter(|e| e.kind == Kind::File).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
        .min(files.len().max(1));
    let cat_path = Repo::catalog_path(&repo.root);
    let data = repo.data_dir();
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let cat = Catalog::open(&cat_path)?;
                    let mut reader = ChunkReader::new(&data, &cat);
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(e) = files.get(i) else {
                            return Ok(());
                        };
                        let p = dest.join(e.rel_path());
                        if let Err(err) = write_file(&mut reader, e, &p) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(match err {
                                Error::Corrupt(m) => Error::Corrupt(format!(
                                    "snapshot {snap}, file {}: {m}",
                                    e.path_str()
                                )),
                                other => other,
                            });
                        }
                    }
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("restore worker panicked"))
            .collect()
    });
    for r in results {
        r?;
    }
    // Folder metadata last, deepest first, so read-only folders do not block their contents.
    for e in t.entries.iter().rev().filter(|e| e.kind == Kind::Dir) {
        apply_meta(&dest.join(e.rel_path()), e)?;
    }
    apply_root(dest, t.root.as_ref())
}

/// Gives a written tree's root folder its recorded owner, mode and mtime (again, after
/// something was added inside it).
fn apply_root(dest: &Path, root: Option<&RootMeta>) -> Result<()> {
    if let Some(r) = root {
        let e = Entry {
            path: Vec::new(),
            kind: Kind::Dir,
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            mtime_ns: r.mtime_ns,
            size: 0,
            target: None,
            chunks: Vec::new(),
        };
        apply_meta(dest, &e)?;
    }
    Ok(())
}

fn write_file(reader: &mut ChunkReader, e: &Entry, p: &Path) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .at(p)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut f);
        for h in &e.chunks {
            let d = reader.read(h)?;
            w.write_all(&d).at(p)?;
        }
        w.flush().at(p)?;
    }
    drop(f);
    apply_meta(p, e)
}

/// Makes a freshly written tree durable before it is renamed into place: one `syncfs` of the
/// filesystem holding it (an fsync per file costs milliseconds each on many small files).
fn sync_tree(root: &Path) -> Result<()> {
    let f = File::open(root).at(root)?;
    use std::os::fd::AsRawFd;
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(Error::io(root, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes a folder we created (temporary or aside), making read-only folders writable first.
fn remove_tree(p: &Path) -> Result<()> {
    if fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    for e in walkdir::WalkDir::new(p).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
        }
    }
    if fs::symlink_metadata(p).at(p)?.is_dir() {
        fs::remove_dir_all(p).at(p)
    } else {
        fs::remove_file(p).at(p)
    }
}

fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).at(to)?;
    if let Some(d) = to.parent() {
        fsutil::sync_dir(d)?;
    }
    if let Some(d) = from.parent()
        && Some(d) != to.parent()
    {
        fsutil::sync_dir(d)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- running a restore

/// Carries out a restore: pre-restore snapshot, journal, prepare, steps, catalogue.
pub fn run(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<Outcome> {
    if plan.platform == PlatformAction::Drift {
        let d = plan.platform_diff.clone().unwrap_or_default();
        return Err(Error::Refused(format!(
            "platform {} differs from snapshot {} ({} added, {} removed, {} changed); rerun with --repair-platform to bring back the snapshot's files",
            plan.target_platform.display(),
            &snap.id[..8],
            d.added.len(),
            d.removed.len(),
            d.changed.len()
        )));
    }
    let site = repo.cat.site(&plan.site)?;
    // 1. The pre-restore snapshot: the current state, whatever it is, so this is undoable.
    let mut o = CaptureOpts::new("pre-restore");
    o.tolerant = true;
    o.label = Some(format!("before restoring {}", &snap.id[..8]));
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
        state: "open".into(),
    })?;
    // 3. Prepare everything beside its target; any failure here leaves the live site as it was.
    if let Err(e) = prepare(repo, snap, plan) {
        rollback(plan);
        repo.cat.close_journal(&plan.journal, "rolled-back")?;
        return Err(e);
    }
    repo.cat
        .update_journal(&plan.journal, STEP_PREPARED, None)?;
    fsutil::failpoint("restore-prepared");
    // 4. The steps.
    let (removed_old, kept_old) = finish(repo, snap, plan, STEP_PREPARED)?;
    Ok(Outcome {
        plan: plan.clone(),
        undo: format!("sitesnap restore {}", &pre.id[..8]),
        pre_restore: pre.id,
        removed_old,
        kept_old,
    })
}

/// Builds the new trees, SQLite file and binding files in temporary places.
fn prepare(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    if plan.restore_files {
        let mut platform_tree = None;
        if matches!(
            plan.platform,
            PlatformAction::Recreate | PlatformAction::Repair
        ) {
            let t = capture::snapshot_tree(
                repo,
                snap,
                "platform",
                &snap.platform_tree.expect("platform tree"),
            )?;
            write_tree(repo, &t, &plan.platform_tmp, &snap.id)?;
            platform_tree = Some(t);
        }
        // The site folder: in a recreated platform its parent is created at the rename.
        let site_tree = match snap.site_tree {
            Some(id) => capture::snapshot_tree(repo, snap, "site", &id)?,
            None => Tree::default(),
        };
        if let Some(parent) = plan.site_tmp.parent()
            && !parent.exists()
            && plan.platform != PlatformAction::Recreate
        {
            fs::create_dir_all(parent).at(parent)?;
        }
        let site_tmp = if plan.platform == PlatformAction::Recreate {
            // Built inside the recreated platform's temporary folder.
            plan.platform_tmp.join(&plan.site_dir)
        } else {
            plan.site_tmp.clone()
        };
        if let Some(parent) = site_tmp.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        write_tree(repo, &site_tree, &site_tmp, &snap.id)?;
        if plan.platform == PlatformAction::Recreate
            && let Some(pt) = &platform_tree
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
        let t = match snap.bindings_tree {
            Some(id) => capture::snapshot_tree(repo, snap, "bindings", &id)?,
            None => Tree::default(),
        };
        for (b, tmp) in plan.bindings.iter().zip(&plan.binding_tmps) {
            let rel = b.strip_prefix("/").unwrap_or(b);
            let e = t
                .entries
                .iter()
                .find(|e| e.rel_path() == rel)
                .ok_or_else(|| {
                    Error::Corrupt(format!("binding {} not in snapshot", b.display()))
                })?;
            if let Some(parent) = tmp.parent() {
                fs::create_dir_all(parent).at(parent)?;
            }
            let cat = &repo.cat;
            let mut reader = ChunkReader::new(&repo.data_dir(), cat);
            match e.kind {
                Kind::File => write_file(&mut reader, e, tmp).map_err(|err| match err {
                    Error::Corrupt(m) => Error::Corrupt(format!(
                        "snapshot {}, binding file {}: {m}",
                        snap.id,
                        b.display()
                    )),
                    other => other,
                })?,
                Kind::Symlink => {
                    std::os::unix::fs::symlink(
                        OsStr::from_bytes(e.target.as_deref().unwrap_or_default()),
                        tmp,
                    )
                    .at(tmp)?;
                    apply_meta(tmp, e)?;
                }
                Kind::Dir => {}
            }
        }
    }
    if plan.restore_db {
        let id = snap.db_dump.expect("dump");
        let (chunks, _) = repo.cat.blob(&id)?;
        let mut reader = ChunkReader::new(&repo.data_dir(), &repo.cat);
        let wrap = |e: Error| match e {
            Error::Corrupt(m) => {
                Error::Corrupt(format!("snapshot {}, database dump: {m}", snap.id))
            }
            other => other,
        };
        match &plan.sqlite_tmp {
            Some(tmp) => {
                let tmp = match (&plan.platform, &plan.sqlite_in_site) {
                    (PlatformAction::Recreate, Some(rel)) => {
                        plan.platform_tmp.join(&plan.site_dir).join(rel)
                    }
                    _ => tmp.clone(),
                };
                if let Some(parent) = tmp.parent() {
                    fs::create_dir_all(parent).at(parent)?;
                }
                let mut f = fsutil::create_private_file(&tmp)?;
                reader.copy_chunks(&chunks, &mut f).map_err(wrap)?;
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
                    if let (Some(dir), Some(id)) = (site_root, snap.site_tree) {
                        let t = capture::snapshot_tree(repo, snap, "site", &id)?;
                        apply_root(dir, t.root.as_ref())?;
                    }
                }
            }
            None => {
                // A server database is loaded straight from the repository at its step; read
                // every chunk now so corrupt data stops the restore before any change.
                for h in &chunks {
                    reader.read(h).map_err(wrap)?;
                }
            }
        }
    } else if plan.restore_files
        && let (Some(rel), Some(Database::Sqlite(live))) = (
            &plan.sqlite_in_site,
            repo.cat
                .site(&plan.site)?
                .database_at(&plan.current_platform)?,
        )
        && live.exists()
    {
        // --no-db with the database inside the site folder: carry the live one over.
        let dest = if plan.platform == PlatformAction::Recreate {
            plan.platform_tmp.join(&plan.site_dir).join(rel)
        } else {
            plan.site_tmp.join(rel)
        };
        let live_db = Database::Sqlite(live.clone());
        let copy = Database::Sqlite(dest);
        live_db.dump(&repo.tmp_dir(), &mut |r| copy.load(r))?;
    }
    // Everything prepared is durable before the journal says so.
    for p in [&plan.platform_tmp, &plan.site_tmp] {
        if p.exists() {
            sync_tree(p)?;
        }
    }
    for p in plan.binding_tmps.iter().chain(&plan.sqlite_tmp) {
        if let Some(dir) = p.parent().filter(|d| d.exists()) {
            sync_tree(dir)?;
        }
    }
    fsutil::failpoint("restore-prepare-done");
    Ok(())
}

/// The live site folder, wherever it is now.
fn live_site_dir(plan: &Plan) -> Option<PathBuf> {
    plan.current_copy
        .clone()
        .or_else(|| Some(plan.site_target.clone()))
        .filter(|p| p.is_dir())
}

/// Gives `dest` the owner and mode of `like` (or `mode` and its parent folder's owner).
fn copy_owner_mode(like: Option<&Path>, dest: &Path, mode: u32) -> Result<()> {
    let (mode, owner) = match like.and_then(|l| fs::metadata(l).ok()) {
        Some(md) => (md.mode() & 0o7777, Some((md.uid(), md.gid()))),
        None => (
            mode,
            dest.parent()
                .and_then(|p| fs::metadata(p).ok())
                .map(|m| (m.uid(), m.gid())),
        ),
    };
    if is_root()
        && let Some((u, g)) = owner
    {
        std::os::unix::fs::chown(dest, Some(u), Some(g)).at(dest)?;
    }
    fs::set_permissions(dest, fs::Permissions::from_mode(mode)).at(dest)
}

/// Undoes a restore that had not started changing the live site: removes temporary files.
fn rollback(plan: &Plan) {
    let _ = remove_tree(&plan.platform_tmp);
    let _ = remove_tree(&plan.site_tmp);
    if let Some(t) = &plan.sqlite_tmp {
        let _ = fs::remove_file(t);
    }
    for t in &plan.binding_tmps {
        let _ = fs::remove_file(t);
    }
}

/// Runs the journaled steps after `done`, each repeatable; returns the aside folders removed
/// and kept.
fn finish(
    repo: &Repo,
    snap: &SnapshotRecord,
    plan: &Plan,
    done: u32,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let step = |n: u32| -> Result<()> { repo.cat.update_journal(&plan.journal, n, None) };
    if done < STEP_PLATFORM {
        step_platform(repo, snap, plan)?;
        step(STEP_PLATFORM)?;
        fsutil::failpoint("restore-platform");
    }
    if done < STEP_SITE {
        step_site(plan)?;
        step(STEP_SITE)?;
        fsutil::failpoint("restore-site");
    }
    if done < STEP_DB {
        step_db(repo, snap, plan)?;
        step(STEP_DB)?;
        fsutil::failpoint("restore-db");
    }
    if done < STEP_BINDINGS {
        for (b, tmp) in plan.bindings.iter().zip(&plan.binding_tmps) {
            if fs::symlink_metadata(tmp).is_ok() {
                rename_durable(tmp, b)?;
            }
        }
        step(STEP_BINDINGS)?;
        fsutil::failpoint("restore-bindings");
    }
    // The catalogue: where the site is now, and the files cache for what was written.
    let mut site = repo.cat.site(&plan.site)?;
    if plan.restore_files {
        let old_site_path = site.site_path();
        let db = site.database()?;
        site.platform = plan.target_platform.clone();
        if let Some(d) = db {
            // An SQLite file inside the site folder moved with it.
            let d = site::rebase_db(d, &old_site_path, &site.site_path());
            if let Database::Sqlite(p) = &d {
                site.db_url = Some(format!("sqlite://{}", p.display()));
            }
        }
        repo.cat.update_site(&site)?;
        refresh_cache(repo, snap, plan)?;
    }
    // The replaced site folders are held by the pre-restore snapshot, so they go unless asked
    // to keep them. Files replaced on a shared platform are not in any snapshot: always kept.
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    if fs::symlink_metadata(&plan.platform_aside).is_ok() {
        kept.push(plan.platform_aside.clone());
    }
    let mut asides = vec![plan.site_aside.clone()];
    asides.extend(plan.current_aside.clone());
    for a in asides {
        if fs::symlink_metadata(&a).is_ok() {
            if plan.keep_old {
                kept.push(a);
            } else {
                remove_tree(&a)?;
                removed.push(a);
            }
        }
    }
    rollback(plan);
    repo.cat.close_journal(&plan.journal, "done")?;
    Ok((removed, kept))
}

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
    let want = capture::load_tree(repo, &snap.platform_tree.expect("platform tree"))?;
    let site = repo.cat.site(&plan.site)?;
    let mut skip = capture::db_side_files(site.database_at(&plan.target_platform)?.as_ref());
    skip.push(plan.site_target.clone());
    skip.push(plan.site_tmp.clone());
    let live = capture::scan_platform(&repo.cat, &plan.target_platform, &skip)?;
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

fn step_site(plan: &Plan) -> Result<()> {
    if !plan.restore_files {
        return Ok(());
    }
    let tmp = &plan.site_tmp;
    if fs::symlink_metadata(tmp).is_ok() {
        if fs::symlink_metadata(&plan.site_target).is_ok() {
            rename_durable(&plan.site_target, &plan.site_aside)?;
        }
        rename_durable(tmp, &plan.site_target)?;
    }
    if let (Some(c), Some(a)) = (&plan.current_copy, &plan.current_aside)
        && c != &plan.site_target
        && fs::symlink_metadata(c).is_ok()
    {
        rename_durable(c, a)?;
    }
    Ok(())
}

fn step_db(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    if !plan.restore_db {
        return Ok(());
    }
    let site = repo.cat.site(&plan.site)?;
    let at = if plan.restore_files {
        &plan.target_platform
    } else {
        &plan.current_platform
    };
    let db = site
        .database_at(at)?
        .ok_or_else(|| Error::Invalid(format!("site '{}' has no database any more", site.uri)))?;
    match (&db, &plan.sqlite_tmp) {
        // Inside the site folder: it came in with the folder.
        (Database::Sqlite(_), Some(_)) if plan.sqlite_in_site.is_some() && plan.restore_files => {
            Ok(())
        }
        (Database::Sqlite(_), Some(tmp)) => {
            if tmp.exists() {
                let mut f = File::open(tmp).at(tmp)?;
                db.load(&mut f)?;
                fs::remove_file(tmp).at(tmp)?;
            }
            Ok(())
        }
        _ => {
            let id = snap.db_dump.expect("dump");
            db.load_checked(&mut || Ok(Box::new(capture::blob_reader(repo, &id)?)))
                .map(|n| n.print())
        }
    }
}

/// Records the restored files in the files cache so the next snapshot does not read them.
fn refresh_cache(repo: &Repo, snap: &SnapshotRecord, plan: &Plan) -> Result<()> {
    let mut rows = Vec::new();
    let mut add = |root: &Path, t: &Tree| {
        for e in t.entries.iter().filter(|e| e.kind == Kind::File) {
            let p = root.join(e.rel_path());
            if let Ok(md) = fs::symlink_metadata(&p)
                && md.is_file()
                && md.len() == e.size
            {
                rows.push((
                    p.as_os_str().as_bytes().to_vec(),
                    CacheEntry {
                        dev: md.dev(),
                        ino: md.ino(),
                        size: md.len(),
                        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
                        ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
                        chunks: e.chunks.clone(),
                    },
                ));
            }
        }
    };
    if matches!(
        plan.platform,
        PlatformAction::Recreate | PlatformAction::Repair
    ) && let Some(id) = snap.platform_tree
    {
        add(&plan.target_platform, &capture::load_tree(repo, &id)?);
    }
    if let Some(id) = snap.site_tree {
        add(&plan.site_target, &capture::load_tree(repo, &id)?);
    }
    if let Some(id) = snap.bindings_tree {
        add(Path::new("/"), &capture::load_tree(repo, &id)?);
    }
    repo.cat.insert_cache(&rows)
}

/// Finishes or undoes every interrupted restore. Returns one line per journal.
pub fn recover(repo: &Repo) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for j in repo.cat.open_journals()? {
        let plan: Plan = serde_json::from_str(&j.plan)
            .map_err(|e| Error::Corrupt(format!("journal {}: plan unreadable: {e}", j.id)))?;
        if j.step < STEP_PREPARED {
            // Nothing live was changed yet: remove what was being prepared.
            rollback(&plan);
            repo.cat.close_journal(&j.id, "rolled-back")?;
            out.push(format!(
                "restore of {} to {} had not started changing the site: undone (site unchanged)",
                j.site,
                &j.snapshot[..8.min(j.snapshot.len())]
            ));
            continue;
        }
        let snap = repo.cat.resolve_snapshot(&j.snapshot)?;
        finish(repo, &snap, &plan, j.step)?;
        out.push(format!(
            "restore of {} to {} finished (undo with: sitesnap restore {})",
            j.site,
            &j.snapshot[..8.min(j.snapshot.len())],
            j.pre_restore
                .as_deref()
                .map(|p| &p[..8.min(p.len())])
                .unwrap_or("?")
        ));
    }
    Ok(out)
}
