//! Migrate: moving a site to another platform the safe way, in one command. It takes a
//! `pre-migrate` snapshot, moves the site folder to the new platform, points the binding files
//! (vhost `root`, drush alias `root`/`site_path`) at it, runs the update command and the check,
//! and on any failure restores the `pre-migrate` snapshot, which puts the site back on its old
//! platform with its old database. It never changes either platform's own code.

use crate::capture::{self, CaptureOpts};
use crate::catalog::ShortId;
use crate::catalog::SiteRecord;
use crate::catalog::SnapshotKind;
use crate::db::Database;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::preflight;
use crate::repo::Repo;
use crate::restore::{self, RestoreOpts};
use crate::site;
use serde::Serialize;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to migrate.
#[derive(Debug, Clone, Default)]
pub struct MigrateOpts {
    /// Shell command run after the move (e.g. `drush @site updatedb -y`), in the new platform.
    pub update_cmd: Option<String>,
    /// URL that must answer with a 2xx or 3xx status after the update.
    pub check_url: Option<String>,
    /// Migrate even when the preflight finds enabled extensions missing on the target.
    pub force: bool,
}

/// What a migration did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateOutcome {
    /// The site migrated.
    pub site: String,
    /// The platform it was on.
    pub from: PathBuf,
    /// The platform it was moved to.
    pub to: PathBuf,
    /// The pre-migrate snapshot's id.
    pub pre_migrate: String,
    /// Why it was rolled back, if it was.
    pub failed: Option<String>,
    /// The failed migration was undone by restoring the pre-migrate snapshot.
    pub rolled_back: bool,
    /// What the preflight found.
    pub preflight: preflight::Report,
}

/// Runs the preflight of migrating `uri` to `to` (after the checks of [`check`]); read only.
pub fn preflight(repo: &Repo, uri: &str, to: &Path) -> Result<preflight::Report> {
    let (from, to) = check(repo, uri, to)?;
    let s = repo.cat.site(uri)?;
    let web = repo
        .cat
        .platform_web_root(&to)?
        .unwrap_or_else(|| crate::webroot::detect(&to));
    preflight::check(&s, &from, &to, &web)
}

/// The one-line refusal for a preflight that blocks.
fn refusal(r: &preflight::Report) -> Error {
    let missing: Vec<String> = r
        .findings
        .iter()
        .filter_map(|f| match f {
            preflight::Finding::Missing { extension } => Some(extension.name.clone()),
            _ => None,
        })
        .collect();
    Error::Invalid(format!(
        "preflight: {} enabled extension(s) of site '{}' missing on {}: {}; nothing changed (see `migrate --check-only`, or pass --force)",
        missing.len(),
        r.site,
        r.to.display(),
        missing.join(", ")
    ))
}

/// Checks everything that can be checked before any change; returns (from, to).
pub fn check(repo: &Repo, uri: &str, to: &Path) -> Result<(PathBuf, PathBuf)> {
    let s = repo.cat.site(uri)?;
    if let Some(j) = repo.cat.open_journal_for(uri)? {
        return Err(Error::JournalOpen {
            site: uri.to_string(),
            journal: j.id,
        });
    }
    let to = site::canonical_platform(to)?;
    let from = site::locate(&repo.cat, &s)?;
    if from == to {
        return Err(Error::Invalid(format!(
            "site '{uri}' is already on {}",
            to.display()
        )));
    }
    let src = from.join(&s.site_dir);
    if !src.is_dir() {
        return Err(Error::Invalid(format!(
            "site directory {} of site '{uri}' does not exist",
            src.display()
        )));
    }
    let dest = to.join(&s.site_dir);
    if fs::symlink_metadata(&dest).is_ok() {
        return Err(Error::Invalid(format!(
            "{} already exists on the target platform",
            dest.display()
        )));
    }
    for x in &s.extra_paths {
        let d = to.join(x);
        if fs::symlink_metadata(&d).is_ok() {
            return Err(Error::Invalid(format!(
                "{} (an extra path of site '{uri}') already exists on the target platform",
                d.display()
            )));
        }
    }
    let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).at(p);
    let dest_parent = dest.parent().unwrap_or(&to);
    let parent_dev = if dest_parent.exists() {
        dev(dest_parent)?
    } else {
        dev(&to)?
    };
    if dev(&src)? != parent_dev {
        return Err(Error::Invalid(format!(
            "{} and {} are on different filesystems; sitesnap moves site folders by rename",
            from.display(),
            to.display()
        )));
    }
    Ok((from, to))
}

/// Rewrites every mention of the old platform path in a binding file, keeping its mode and
/// owner; written atomically.
fn repoint_binding(path: &Path, from: &Path, to: &Path) -> Result<()> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        // A binary or missing binding is left alone; the snapshot still holds it.
        Err(_) => return Ok(()),
    };
    let (f, t) = (from.to_string_lossy(), to.to_string_lossy());
    if !text.contains(f.as_ref()) {
        return Ok(());
    }
    let md = fs::metadata(path).at(path)?;
    let new = text.replace(f.as_ref(), t.as_ref());
    fsutil::write_atomic(path, new.as_bytes(), md.mode() & 0o7777)?;
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(path, Some(md.uid()), Some(md.gid())).at(path)?;
    }
    Ok(())
}

/// Checks that `url` answers with 2xx or 3xx (through curl).
fn check_url(url: &str) -> Result<()> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "30",
            url,
        ])
        .output()
        .map_err(|e| Error::Invalid(format!("check of {url}: cannot run curl: {e}")))?;
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !(code.starts_with('2') || code.starts_with('3')) {
        return Err(Error::Invalid(format!(
            "check of {url} failed (HTTP status {})",
            if code.is_empty() { "none" } else { &code }
        )));
    }
    Ok(())
}

/// Moves the site's extra paths (those that exist) from platform `from` to `to`, by rename.
fn move_extra_paths(s: &SiteRecord, from: &Path, to: &Path) -> Result<()> {
    for x in &s.extra_paths {
        let (src, dest) = (from.join(x), to.join(x));
        if fs::symlink_metadata(&src).is_err() {
            continue;
        }
        fsutil::check_inside(to, &dest)?;
        let parent = dest.parent().unwrap_or(to);
        fs::create_dir_all(parent).at(parent)?;
        fs::rename(&src, &dest).at(&dest)?;
        fsutil::sync_dir(parent)?;
        fsutil::sync_dir(src.parent().unwrap_or(from))?;
    }
    Ok(())
}

/// Migrates `uri` to the platform `to`; rolls back on failure. Returns what happened; an error
/// only when it could not even start or the rollback itself failed.
pub fn migrate(repo: &Repo, uri: &str, to: &Path, opts: &MigrateOpts) -> Result<MigrateOutcome> {
    let report = preflight(repo, uri, to)?;
    if report.blocks() && !opts.force {
        return Err(refusal(&report));
    }
    let (from, to) = check(repo, uri, to)?;
    let mut s = repo.cat.site(uri)?;
    let mut o = CaptureOpts::new(SnapshotKind::PreMigrate);
    o.label = Some(format!("before migrating to {}", to.display()));
    o.progress = true;
    let pre = capture::snapshot(repo, &s, &from, &o)?;
    fsutil::failpoint("migrate-pre-snapshot");
    let mut outcome = MigrateOutcome {
        site: uri.to_string(),
        from: from.clone(),
        to: to.clone(),
        pre_migrate: pre.id.clone(),
        failed: None,
        rolled_back: false,
        preflight: report,
    };
    let result = move_site(repo, uri, &mut s, &from, &to, opts, &pre.id);
    if let Err(e) = result {
        outcome.failed = Some(e.to_string());
        let snap = repo.cat.resolve_snapshot(&pre.id)?;
        let (plan, _) = restore::plan(repo, &snap, &RestoreOpts::default())?;
        restore::run(repo, &snap, &plan).map_err(|re| {
            Error::Invalid(format!(
                "migration failed ({e}) and so did its rollback ({re}); restore snapshot {} by hand",
                pre.id.short()
            ))
        })?;
        outcome.rolled_back = true;
    }
    Ok(outcome)
}

/// Moves the site folder to `to`, repoints its bindings, records the move and runs the update
/// command and the URL check.
fn move_site(
    repo: &Repo,
    uri: &str,
    s: &mut SiteRecord,
    from: &Path,
    to: &Path,
    opts: &MigrateOpts,
    pre: &str,
) -> Result<()> {
    let src = from.join(&s.site_dir);
    let dest = to.join(&s.site_dir);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    fs::rename(&src, &dest).at(&dest)?;
    fsutil::sync_dir(dest.parent().unwrap_or(to))?;
    fsutil::sync_dir(src.parent().unwrap_or(from))?;
    move_extra_paths(s, from, to)?;
    for b in &s.bindings {
        repoint_binding(b, from, to)?;
    }
    let old_site_path = s.site_path();
    let db = if s.credentials_by_reference() {
        None
    } else {
        s.database()?
    };
    if let Some(d) = db {
        s.platform = to.to_path_buf();
        if let Database::Sqlite(p) = site::rebase_db(d, &old_site_path, &s.site_path()) {
            s.db_url = Some(format!("sqlite://{}", p.display()));
        }
    }
    s.platform = to.to_path_buf();
    crate::objects::update_site(repo, s)?;
    fsutil::failpoint("migrate-moved");
    if let Some(cmd) = &opts.update_cmd {
        crate::updatelog::run(cmd, uri, to, &crate::updatelog::log_path(repo, pre))?;
    }
    if let Some(url) = &opts.check_url {
        check_url(url)?;
    }
    Ok(())
}
