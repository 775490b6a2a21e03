//! Doctor: a read-only health check of the repository and the sites, for an operator or a
//! monitoring job. It reports what would make tonight's snapshot or tomorrow's restore fail
//! (missing platform or site folder, unreachable database, missing binding file, unfinished
//! restore, loose repository permissions, no recent snapshot) and never changes anything.

use crate::catalog::ShortId;
use crate::catalog::{JournalRecord, SiteRecord};
use crate::error::Result;
use crate::repo::Repo;
use crate::site;
use serde::Serialize;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// How serious a finding is.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// All is well.
    Ok,
    /// Worth a look; snapshots and restores still work.
    Warning,
    /// Something that makes snapshots or restores fail.
    Problem,
}

/// One thing `doctor` found.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// How serious it is.
    pub level: Level,
    /// `repository` or a site URI.
    pub subject: String,
    /// What was found.
    pub message: String,
}

fn add(out: &mut Vec<Finding>, level: Level, subject: &str, message: String) {
    out.push(Finding {
        level,
        subject: subject.to_string(),
        message,
    });
}

/// Checks the repository and every site (or only `only`).
pub fn check(repo: &Repo, only: Option<&str>) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    if only.is_none() {
        check_repository(repo, &mut out);
        check_damage(repo, &mut out)?;
    }
    let sites: Vec<SiteRecord> = match only {
        Some(u) => vec![repo.cat.site(u)?],
        None => repo.cat.sites()?,
    };
    for s in &sites {
        if only.is_some() {
            check_journal(repo, s, &mut out);
        }
        check_site(repo, s, &mut out)?;
    }
    Ok(out)
}

/// Damage `verify` recorded and snapshots `repair snapshots` marked, with what to run.
fn check_damage(repo: &Repo, out: &mut Vec<Finding>) -> Result<()> {
    let damaged = repo.cat.damaged_chunks()?.len();
    if damaged > 0 {
        add(
            out,
            Level::Problem,
            "repository",
            format!(
                "{damaged} damaged chunk(s) found by verify: `sitesnap snapshot --all` stores them \
                 anew where the live files still hold them, then `sitesnap verify --read-data`; \
                 `sitesnap repair snapshots` names what is lost for good"
            ),
        );
    }
    let lost = repo.cat.lost_snapshots()?;
    if !lost.is_empty() {
        add(
            out,
            Level::Warning,
            "repository",
            format!(
                "{} snapshot(s) have lost data ({}): `sitesnap repair snapshots` lists it",
                lost.len(),
                lost.iter()
                    .map(|i| i.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    Ok(())
}

fn check_repository(repo: &Repo, out: &mut Vec<Finding>) {
    let r = "repository";
    for p in [
        repo.root.clone(),
        repo.data_dir(),
        Repo::catalog_path(&repo.root),
    ] {
        match std::fs::metadata(&p) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => add(
                out,
                Level::Problem,
                r,
                format!(
                    "{} is mode {:o}: others can read it (should be 0700/0600)",
                    p.display(),
                    m.permissions().mode() & 0o7777
                ),
            ),
            Ok(_) => {}
            Err(e) => add(out, Level::Problem, r, format!("{}: {e}", p.display())),
        }
    }
    match repo.cat.open_journals() {
        Ok(js) => {
            for j in js {
                add(out, Level::Problem, &j.site, unfinished(&j));
            }
        }
        Err(e) => add(out, Level::Problem, r, format!("catalogue: {e}")),
    }
    let tmp = repo.tmp_dir();
    let leftovers = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    if leftovers > 0 {
        add(
            out,
            Level::Warning,
            r,
            format!(
                "{leftovers} leftover file(s) in {} from an interrupted run: `sitesnap gc` removes them",
                tmp.display()
            ),
        );
    }
}

/// The line for an unfinished restore journal.
fn unfinished(j: &JournalRecord) -> String {
    format!(
        "restore {} is unfinished ({}): run `sitesnap recover`, or `sitesnap recover --abort {}` to put the site back as it was before",
        j.id, j.state, j.id
    )
}

/// Reports one site's unfinished restore (the repository check reports every site's).
fn check_journal(repo: &Repo, s: &SiteRecord, out: &mut Vec<Finding>) {
    match repo.cat.open_journal_for(&s.uri) {
        Ok(Some(j)) => add(out, Level::Problem, &s.uri, unfinished(&j)),
        Ok(None) => {}
        Err(e) => add(out, Level::Problem, &s.uri, format!("catalogue: {e}")),
    }
}

/// Checks one site: platform, site folder, bindings, database, last snapshot.
fn check_site(repo: &Repo, s: &SiteRecord, out: &mut Vec<Finding>) -> Result<()> {
    let u = s.uri.as_str();
    let now = site::locate(&repo.cat, s)?;
    if !now.is_dir() {
        add(
            out,
            Level::Problem,
            u,
            format!("platform {} does not exist", now.display()),
        );
    } else if !now.join(&s.site_dir).is_dir() {
        add(
            out,
            Level::Problem,
            u,
            format!(
                "site directory {} not found on any known platform",
                s.site_dir
            ),
        );
    } else if now != s.platform {
        add(
            out,
            Level::Warning,
            u,
            format!(
                "registered on {} but found on {} (snapshots follow it there)",
                s.platform.display(),
                now.display()
            ),
        );
    }
    for b in &s.bindings {
        if !b.exists() {
            add(
                out,
                Level::Problem,
                u,
                format!("binding file {} is missing", b.display()),
            );
        }
    }
    check_database(s, &now, out);
    check_last_snapshot(repo, u, out)
}

/// Checks the site's database can be reached.
fn check_database(s: &SiteRecord, now: &Path, out: &mut Vec<Finding>) {
    let u = s.uri.as_str();
    match s.database_at(now) {
        Ok(Some(db)) => {
            if let Err(e) = db.check() {
                add(out, Level::Problem, u, e.to_string());
            }
        }
        Ok(None) => add(out, Level::Warning, u, "no database registered".into()),
        Err(e) => add(out, Level::Problem, u, e.to_string()),
    }
}

/// Checks the site has a recent snapshot.
fn check_last_snapshot(repo: &Repo, u: &str, out: &mut Vec<Finding>) -> Result<()> {
    let snaps = repo.cat.snapshots(Some(u))?;
    match snaps.last() {
        None => add(out, Level::Warning, u, "no snapshot yet".into()),
        Some(last) => {
            let age = crate::fsutil::now() - last.time;
            if age > chrono::Duration::hours(36) {
                add(
                    out,
                    Level::Warning,
                    u,
                    format!(
                        "last snapshot {} is {} hours old",
                        last.id.short(),
                        age.num_hours()
                    ),
                );
            } else {
                add(
                    out,
                    Level::Ok,
                    u,
                    format!(
                        "{} snapshot(s), last {} ({})",
                        snaps.len(),
                        last.id.short(),
                        last.time
                            .with_timezone(&chrono::Local)
                            .format("%Y-%m-%d %H:%M")
                    ),
                );
            }
        }
    }
    Ok(())
}
