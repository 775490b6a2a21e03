//! `rehearse`: the field report's safe upgrade workflow in one command, without touching the
//! live site. The site is cloned under a temporary URI (`rehearse-<id>.<uri>`): its folder is
//! copied onto the target platform and its database to a scratch one (SQLite: a copy through
//! the backup API in the clone's folder; MariaDB/PostgreSQL: `<name>_rh<id>` on the same server,
//! created and loaded with the site's own account). Then the migrate preflight, the update
//! command against the clone, the URL check with the clone's `Host`, and a report. The clone
//! is removed unless kept. A marker written before anything is created lets the next
//! `rehearse` or `recover` clean up after a kill.

pub mod clone;
pub mod marker;

use crate::catalog::SiteRecord;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::preflight;
use crate::repo::Repo;
use crate::site;
use marker::Marker;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to rehearse.
#[derive(Debug, Clone, Default)]
pub struct RehearseOpts {
    /// Shell command run against the clone (e.g. `drush @$SITESNAP_SITE updatedb -y`).
    pub update_cmd: Option<String>,
    /// URL fetched with the clone's URI as `Host`; 2xx or 3xx passes.
    pub check_url: Option<String>,
    /// Keep the clone's folder and database afterwards.
    pub keep: bool,
}

/// The update command's run.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateRun {
    pub command: String,
    pub ok: bool,
    /// Why it failed (status and last line).
    pub error: Option<String>,
    /// Its whole output.
    pub log: PathBuf,
    /// Its last lines of output.
    pub tail: Vec<String>,
    pub seconds: f64,
}

/// The URL check.
#[derive(Debug, Clone, Serialize)]
pub struct HttpCheck {
    pub url: String,
    pub host: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub ok: bool,
}

/// What a rehearsal found, fit for a change ticket.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: String,
    pub site: String,
    pub clone_uri: String,
    pub from: PathBuf,
    pub to: PathBuf,
    pub clone_dir: PathBuf,
    /// The scratch database (redacted), if the site has one.
    pub scratch_db: Option<String>,
    /// Settings files of the clone pointed at the scratch database.
    pub repointed: Vec<String>,
    pub preflight: preflight::Report,
    pub update: Option<UpdateRun>,
    pub http: Option<HttpCheck>,
    /// Seconds to make the clone.
    pub clone_seconds: f64,
    /// Seconds from start to end, cleanup included.
    pub seconds: f64,
    pub kept: bool,
    /// What was removed afterwards (or, first, left by killed rehearsals).
    pub cleaned: Vec<String>,
    /// Leftovers of killed rehearsals that could not be cleaned.
    pub warnings: Vec<String>,
    /// Preflight without a blocking finding, update and check (when asked) passed.
    pub passed: bool,
}

impl Report {
    /// Why it did not pass, one phrase each.
    pub fn failures(&self) -> Vec<String> {
        let mut v = Vec::new();
        let missing = self
            .preflight
            .findings
            .iter()
            .filter(|f| f.blocks())
            .count();
        if missing > 0 {
            v.push(format!(
                "preflight: {missing} enabled extension(s) missing on the target"
            ));
        }
        if self.update.as_ref().is_some_and(|u| !u.ok) {
            v.push("the update command failed".into());
        }
        if self.http.as_ref().is_some_and(|h| !h.ok) {
            v.push("the URL check failed".into());
        }
        v
    }
}

/// A planned clone.
struct Plan {
    site: SiteRecord,
    from: PathBuf,
    to: PathBuf,
    web: String,
    marker: Marker,
    live_db: Option<Database>,
    scratch: Option<Database>,
}

/// Checks what can be checked and decides names; changes nothing.
fn plan(repo: &Repo, uri: &str, to: &Path) -> Result<Plan> {
    let s = repo.cat.site(uri)?;
    if let Some(j) = repo.cat.open_journal_for(uri)? {
        return Err(Error::JournalOpen {
            site: uri.to_string(),
            journal: j.id,
        });
    }
    let to = site::canonical_platform(to)?;
    let from = site::locate(&repo.cat, &s)?;
    let live_site = from.join(&s.site_dir);
    if !live_site.is_dir() {
        return Err(Error::Invalid(format!(
            "site directory {} of site '{uri}' does not exist",
            live_site.display()
        )));
    }
    let id = fsutil::random_hex(4);
    let temp_uri = format!("{}{id}.{uri}", marker::CLONE_PREFIX);
    let clone_dir = clone::clone_dir(&to, &s.site_dir, &temp_uri);
    fsutil::check_inside(&to, &clone_dir)?;
    let live_db = s.database_at(&from)?;
    let scratch_name = live_db
        .as_ref()
        .and_then(|d| d.server_name())
        .map(|n| crate::db::scratch_name(n, &id));
    let scratch = live_db.as_ref().map(|d| {
        clone::scratch_of(
            d,
            &live_site,
            &clone_dir,
            scratch_name.as_deref().unwrap_or(""),
        )
    });
    let web = repo
        .cat
        .platform_web_root(&to)?
        .unwrap_or_else(|| crate::webroot::detect(&to));
    let marker = Marker {
        id,
        site: uri.to_string(),
        temp_uri,
        clone_dir,
        scratch_db: scratch_name,
        pid: std::process::id(),
    };
    Ok(Plan {
        site: s,
        from,
        to,
        web,
        marker,
        live_db,
        scratch,
    })
}

/// Makes the clone: folder, then database, then its settings; returns the settings files
/// repointed.
fn make_clone(repo: &Repo, p: &Plan) -> Result<Vec<String>> {
    let live_site = p.from.join(&p.site.site_dir);
    let sqlite_rel = match &p.live_db {
        Some(Database::Sqlite(f)) => f.strip_prefix(&live_site).ok(),
        _ => None,
    };
    clone::copy_folder(&live_site, &p.marker.clone_dir, sqlite_rel)?;
    fsutil::failpoint("rehearse-folder-copied");
    let (Some(live), Some(scratch)) = (&p.live_db, &p.scratch) else {
        return Ok(Vec::new());
    };
    live.copy_to(scratch, &repo.tmp_dir())?;
    fsutil::failpoint("rehearse-cloned");
    clone::repoint_settings(&p.marker.clone_dir, live, scratch)
}

/// Runs the update command against the clone.
fn update(repo: &Repo, p: &Plan, cmd: &str) -> UpdateRun {
    let log = repo
        .root
        .join("logs")
        .join(format!("rehearse-{}.log", p.marker.id));
    let mut env = vec![
        ("SITESNAP_LIVE_SITE".to_string(), p.site.uri.clone()),
        (
            "SITESNAP_SITE_DIR".to_string(),
            p.marker.clone_dir.to_string_lossy().into_owned(),
        ),
        ("SITESNAP_REHEARSAL".to_string(), p.marker.id.clone()),
        ("SITESNAP_EVENT".to_string(), "rehearse".to_string()),
    ];
    if let Some(d) = &p.scratch {
        env.extend(clone::db_env(d));
    }
    let t = Instant::now();
    let res = crate::updatelog::run_with_env(cmd, &p.marker.temp_uri, &p.to, &log, &env);
    fsutil::failpoint("rehearse-updated");
    let tail = std::fs::read_to_string(&log)
        .map(|t| {
            let lines: Vec<&str> = t.lines().collect();
            let from = lines.len().saturating_sub(TAIL_LINES);
            lines[from..].iter().map(|l| l.to_string()).collect()
        })
        .unwrap_or_default();
    UpdateRun {
        command: cmd.to_string(),
        ok: res.is_ok(),
        error: res.err().map(|e| e.to_string()),
        log,
        tail,
        seconds: t.elapsed().as_secs_f64(),
    }
}

/// How many of the update command's last lines the report holds.
const TAIL_LINES: usize = 20;

/// Fetches `url` with the clone's URI as `Host`.
fn check(url: &str, host: &str) -> HttpCheck {
    let r = crate::http::status(url, Some(host), crate::http::TIMEOUT);
    let ok = matches!(r, Ok(s) if (200..400).contains(&s));
    HttpCheck {
        url: url.to_string(),
        host: host.to_string(),
        status: r.as_ref().ok().copied(),
        error: r.err(),
        ok,
    }
}

/// Cleans what killed rehearsals left (their process is gone); returns what was removed, and
/// an error line for each that could not be cleaned.
pub fn clean_stale(repo: &Repo) -> Result<(Vec<String>, Vec<String>)> {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for (m, r) in marker::clean_stale(repo)? {
        match r {
            Ok(lines) if lines.is_empty() => done.push(format!(
                "rehearsal {} of {} was interrupted; nothing of it was left",
                m.id, m.site
            )),
            Ok(lines) => done.extend(
                lines
                    .into_iter()
                    .map(|l| format!("rehearsal {} of {} was interrupted: {l}", m.id, m.site)),
            ),
            Err(e) => failed.push(e.to_string()),
        }
    }
    Ok((done, failed))
}

/// Rehearses migrating `uri` to `to`. An error means the rehearsal could not be made (the
/// clone is cleaned up first); a failing preflight, update or check is in the report.
pub fn rehearse(repo: &Repo, uri: &str, to: &Path, opts: &RehearseOpts) -> Result<Report> {
    let start = Instant::now();
    let (mut cleaned, warnings) = clean_stale(repo)?;
    let p = plan(repo, uri, to)?;
    if std::fs::symlink_metadata(&p.marker.clone_dir).is_ok() {
        return Err(Error::Invalid(format!(
            "{} already exists",
            p.marker.clone_dir.display()
        )));
    }
    marker::write(repo, &p.marker)?;
    fsutil::failpoint("rehearse-marked");
    let t = Instant::now();
    let made = make_clone(repo, &p);
    let clone_seconds = t.elapsed().as_secs_f64();
    let repointed = match made {
        Ok(r) => r,
        Err(e) => {
            let undo = marker::clean(repo, &p.marker);
            return Err(match undo {
                Ok(_) => Error::Invalid(format!(
                    "rehearsal of {uri}: making the clone failed: {e}; the clone was removed"
                )),
                Err(u) => Error::Invalid(format!(
                    "rehearsal of {uri}: making the clone failed: {e}; removing it failed too: {u}"
                )),
            });
        }
    };
    let pre = preflight::check(&p.site, &p.from, &p.to, &p.web);
    let upd = opts.update_cmd.as_deref().map(|c| update(repo, &p, c));
    let http = opts
        .check_url
        .as_deref()
        .map(|u| check(u, &p.marker.temp_uri));
    if opts.keep {
        marker::remove(repo, &p.marker.id)?;
    } else {
        cleaned.extend(marker::clean(repo, &p.marker)?);
    }
    let pre = pre?;
    let mut r = Report {
        id: p.marker.id.clone(),
        site: uri.to_string(),
        clone_uri: p.marker.temp_uri.clone(),
        from: p.from.clone(),
        to: p.to.clone(),
        clone_dir: p.marker.clone_dir.clone(),
        scratch_db: p.scratch.as_ref().map(Database::redacted),
        repointed,
        preflight: pre,
        update: upd,
        http,
        clone_seconds,
        seconds: 0.0,
        kept: opts.keep,
        cleaned,
        warnings,
        passed: false,
    };
    r.passed = r.failures().is_empty();
    r.seconds = start.elapsed().as_secs_f64();
    Ok(r)
}
