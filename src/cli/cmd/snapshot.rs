//! `sitesnap snapshot` and `sitesnap checkpoint`.

use crate::capture::{self, CaptureOpts};
use crate::catalog::SnapshotKind;
use crate::catalog::{SiteRecord, SnapshotRecord};
use crate::cli::ERROR_PREFIX;
use crate::cli::args::Ctx;
use crate::cli::metrics;
use crate::cli::output::{fmt_bytes, one_line, print_json, short, snapshot_json};
use crate::error::Error;
use crate::hooks::{self, Event, HookCtx, Hooks};
use crate::repo::Repo;
use crate::site;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `snapshot`.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// Sites to snapshot
    pub uris: Vec<String>,
    /// Snapshot every registered site
    #[arg(long, conflicts_with = "uris")]
    pub all: bool,
    /// A label stored with the snapshot (shown by `list` and `show`)
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// manual or scheduled (default: the config file's [snapshot] kind, else manual)
    #[arg(long, value_parser = ["manual", "scheduled"])]
    pub kind: Option<String>,
    /// Write Prometheus textfile-collector metrics for the sites of this run (and the push,
    /// with --push) to FILE (atomically; default: the config file's [snapshot] metrics)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Then push the repository to this remote (one error line and exit 1 if that fails;
    /// default: the config file's [snapshot] push)
    #[arg(long, value_name = "NAME")]
    pub push: Option<String>,
    /// Stop a database dump that runs longer than this (seconds, or with s/m/h/d; default 1h)
    #[arg(long, value_name = "TIME", value_parser = crate::cli::span::parse_timeout)]
    pub dump_timeout: Option<Duration>,
}

/// Arguments of `checkpoint`.
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// The site's URI
    pub uri: String,
    /// Why the checkpoint was taken (for example "before 7.105")
    #[arg(long, value_name = "TEXT")]
    pub label: String,
    /// Stop a database dump that runs longer than this (seconds, or with s/m/h/d; default 1h)
    #[arg(long, value_name = "TIME", value_parser = crate::cli::span::parse_timeout)]
    pub dump_timeout: Option<Duration>,
}

/// Takes a snapshot of a registered site where it is now.
/// Runs the site's `before-snapshot` hook first (its failure stops the snapshot) and its
/// `on-failure` hook if it fails.
pub fn take_snapshot(repo: &Repo, site: &SiteRecord, opts: &CaptureOpts) -> Result<SnapshotRecord> {
    with_hooks(repo, site, |platform| {
        capture::snapshot(repo, site, platform, opts)
            .with_context(|| format!("snapshot of site '{}'", site.uri))
    })
}

/// Captures a site into a batch, with the same hooks as [`take_snapshot`].
fn capture_site(
    repo: &Repo,
    batch: &mut capture::Batch,
    site: &SiteRecord,
    opts: &CaptureOpts,
) -> Result<()> {
    with_hooks(repo, site, |platform| {
        batch
            .capture(repo, site, platform, opts)
            .with_context(|| format!("snapshot of site '{}'", site.uri))
    })
}

/// Runs `f` on the site's platform between its `before-snapshot` hook and, if anything
/// failed, its `on-failure` hook.
fn with_hooks<T>(
    repo: &Repo,
    site: &SiteRecord,
    f: impl FnOnce(&std::path::Path) -> Result<T>,
) -> Result<T> {
    let platform = site::locate(&repo.cat, site)?;
    let hooks = Hooks::load(repo)?;
    let res = hooks::run(&hooks, &hook_ctx(site, &platform, Event::BeforeSnapshot))
        .map_err(anyhow::Error::from)
        .and_then(|_| f(&platform));
    if let Err(e) = &res {
        on_failure(&hooks, site, &platform, &one_line(e));
    }
    res
}

fn hook_ctx<'a>(site: &'a SiteRecord, platform: &'a std::path::Path, event: Event) -> HookCtx<'a> {
    HookCtx {
        event,
        site: &site.uri,
        platform,
        snapshot: None,
        error: None,
    }
}

/// Runs the site's `on-failure` hook; its own failure is a warning.
fn on_failure(hooks: &Hooks, site: &SiteRecord, platform: &std::path::Path, why: &str) {
    let ctx = HookCtx {
        error: Some(why),
        ..hook_ctx(site, platform, Event::OnFailure)
    };
    if let Err(he) = hooks::run(hooks, &ctx) {
        eprintln!("sitesnap: warning: {he}");
    }
}

/// Sites captured and not yet committed: a run of several sites commits them in batches of
/// at most this many, so their `fsync`s are grouped (a crash loses at most one batch's
/// uncommitted snapshots; the next run takes them again).
const COMMIT_BATCH: usize = 64;
/// A batch is committed early once its sites hold this many new files-cache rows (about
/// 150 bytes each, waiting in memory for the commit): a batch of big sites stays small.
const COMMIT_ROWS: usize = 100_000;

/// The batch limits in force: [`COMMIT_BATCH`] sites and [`COMMIT_ROWS`] rows; for tests
/// only, debug builds take others from `SITESNAP_TEST_COMMIT_BATCH` and
/// `SITESNAP_TEST_COMMIT_ROWS` (release builds ignore them), so a few small sites can fill a
/// batch.
fn commit_limits() -> (usize, usize) {
    #[cfg(debug_assertions)]
    {
        let var = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        (
            var("SITESNAP_TEST_COMMIT_BATCH", COMMIT_BATCH),
            var("SITESNAP_TEST_COMMIT_ROWS", COMMIT_ROWS),
        )
    }
    #[cfg(not(debug_assertions))]
    (COMMIT_BATCH, COMMIT_ROWS)
}

/// The sites of a run captured and not yet committed, with their shared chunk sink.
struct Pending<'a> {
    batch: Option<capture::Batch>,
    sites: Vec<&'a SiteRecord>,
}

/// A failed commit: the error and the sites it failed.
type Failed = (anyhow::Error, Vec<String>);

impl<'a> Pending<'a> {
    /// Captures `site` into the open batch (opening one first).
    fn capture(&mut self, repo: &Repo, site: &'a SiteRecord, opts: &CaptureOpts) -> Result<()> {
        let batch = match &mut self.batch {
            Some(b) => b,
            None => self.batch.insert(capture::Batch::new(repo)?),
        };
        capture_site(repo, batch, site, opts)?;
        self.sites.push(site);
        Ok(())
    }

    /// How many sites wait for their commit.
    fn len(&self) -> usize {
        self.sites.len()
    }

    /// Is the batch full (sites, or files-cache rows held for the commit)?
    fn full(&self) -> bool {
        let (sites, rows) = commit_limits();
        self.len() >= sites || self.batch.as_ref().is_some_and(|b| b.rows() >= rows)
    }

    /// Commits the batch; on failure every one of its sites failed (their `on-failure` hooks
    /// run).
    fn flush(
        &mut self,
        repo: &Repo,
        opts: &CaptureOpts,
    ) -> std::result::Result<Vec<SnapshotRecord>, Failed> {
        let sites = std::mem::take(&mut self.sites);
        let Some(batch) = self.batch.take() else {
            return Ok(Vec::new());
        };
        batch.commit(repo, opts).map_err(|e| {
            let e = anyhow::Error::from(e).context("commit of the run's snapshots");
            if let Ok(hooks) = Hooks::load(repo) {
                for s in &sites {
                    if let Ok(p) = site::locate(&repo.cat, s) {
                        on_failure(&hooks, s, &p, &one_line(&e));
                    }
                }
            }
            (e, sites.iter().map(|s| s.uri.clone()).collect())
        })
    }
}

/// The sites to snapshot: every one with `--all`, else the named ones (all resolved first, so
/// an unknown site fails before anything is captured).
fn chosen_sites(repo: &Repo, a: &SnapshotArgs) -> Result<Vec<SiteRecord>> {
    if a.all {
        return Ok(repo.cat.sites()?);
    }
    Ok(a.uris
        .iter()
        .map(|u| repo.cat.site(u))
        .collect::<crate::Result<_>>()?)
}

/// Snapshots the chosen sites; with `--all` a failing site does not stop the others (exit 1).
pub fn run(ctx: &Ctx, mut a: SnapshotArgs) -> Result<i32> {
    if !a.all && a.uris.is_empty() {
        return Err(Error::Usage("name the sites to snapshot, or use --all".into()).into());
    }
    let defaults = &ctx.config.snapshot;
    a.kind = a.kind.or_else(|| defaults.kind.clone());
    a.push = a.push.or_else(|| defaults.push.clone());
    a.metrics = a.metrics.or_else(|| defaults.metrics.clone());
    let push_to = a
        .push
        .as_deref()
        .map(|n| crate::remote::find(&ctx.repo_path, n))
        .transpose()?;
    let repo = ctx.open_locked("snapshot")?;
    let sites = chosen_sites(&repo, &a)?;
    let mut opts = CaptureOpts::new(a.kind.as_deref().unwrap_or("manual").parse()?);
    opts.label = a.label.clone();
    opts.progress = ctx.progress();
    if sites.len() > 1 {
        opts.share = Some(std::sync::Arc::new(crate::capture::RunShare::new()));
    }
    opts.dump_timeout = a.dump_timeout;
    let (done, failed) = snapshot_sites(ctx, &repo, &sites, &opts, a.all)?;
    if ctx.json {
        let v: Vec<_> = done.iter().map(snapshot_json).collect();
        print_json(&v)?;
    } else {
        print_done(ctx, &done, sites.len());
    }
    let no_db: Vec<&str> = done
        .iter()
        .filter(|s| s.db_url.is_none())
        .map(|s| s.site.as_str())
        .collect();
    if a.all && !no_db.is_empty() && !ctx.quiet {
        eprintln!(
            "sitesnap: {} site(s) snapshotted without a database: {}",
            no_db.len(),
            no_db.join(", ")
        );
    }
    let pushed = push_to.as_ref().map(|def| push_after(ctx, &repo, def));
    if let Some(path) = &a.metrics {
        let push = push_to.as_ref().zip(pushed.as_ref());
        write_run_metrics(&repo, path, &sites, &failed, push)?;
    }
    if !failed.is_empty() {
        eprintln!(
            "{ERROR_PREFIX}{} of {} site(s) failed",
            failed.len(),
            sites.len()
        );
        return Ok(1);
    }
    Ok(if matches!(pushed, Some(None)) { 1 } else { 0 })
}

/// Snapshots `sites` one after another; several sites are captured into one chunk sink and
/// committed in batches (a failed capture first commits the sites captured before it, so its
/// batch starts over with a fresh sink). With `all`, a failing site does not stop the others:
/// returns (done, failed URIs).
fn snapshot_sites(
    ctx: &Ctx,
    repo: &Repo,
    sites: &[SiteRecord],
    opts: &CaptureOpts,
    all: bool,
) -> Result<(Vec<SnapshotRecord>, Vec<String>)> {
    if let [one] = sites {
        return match take_snapshot(repo, one, opts) {
            Ok(snap) => {
                warn_no_database(ctx, &snap);
                Ok((vec![snap], Vec::new()))
            }
            Err(e) if !all => Err(e),
            Err(e) => {
                eprintln!("{ERROR_PREFIX}{}", ctx.complete(&one_line(&e)));
                Ok((Vec::new(), vec![one.uri.clone()]))
            }
        };
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut pending = Pending {
        batch: None,
        sites: Vec::new(),
    };
    let commit =
        |pending: &mut Pending, done: &mut Vec<SnapshotRecord>, failed: &mut Vec<String>| {
            match pending.flush(repo, opts) {
                Ok(recs) => done.extend(recs),
                Err((e, _)) if !all => return Err(e),
                Err((e, uris)) => {
                    eprintln!("{ERROR_PREFIX}{}", ctx.complete(&one_line(&e)));
                    failed.extend(uris);
                }
            }
            Ok(())
        };
    for (i, s) in sites.iter().enumerate() {
        if let Err(e) = pending.capture(repo, s, opts) {
            if all {
                eprintln!("{ERROR_PREFIX}{}", ctx.complete(&one_line(&e)));
                failed.push(s.uri.clone());
            }
            // The sites captured before this one are still committed.
            commit(&mut pending, &mut done, &mut failed)?;
            if !all {
                return Err(e);
            }
        }
        if pending.full() || i + 1 == sites.len() {
            commit(&mut pending, &mut done, &mut failed)?;
        }
    }
    done.iter().for_each(|s| warn_no_database(ctx, s));
    Ok((done, failed))
}

/// `--metrics FILE`: the metrics of this run's sites and, after `--push`, of the push (its
/// report, or `None` when it failed), in one file written atomically.
fn write_run_metrics(
    repo: &Repo,
    path: &std::path::Path,
    sites: &[SiteRecord],
    failed: &[String],
    push: Option<(
        &crate::remote::RemoteDef,
        &Option<crate::remote::PushReport>,
    )>,
) -> Result<()> {
    let mut m = metrics::snapshot_metrics(repo, sites, failed)?;
    if let Some((def, report)) = push {
        let old = metrics::previous(path);
        m.push_str(&metrics::push_metrics(&def.name, report.as_ref(), &old));
    }
    metrics::write_file(path, &m)
}

/// `snapshot --push NAME`: pushes after the snapshots; a failure is one stderr line (`None`).
fn push_after(
    ctx: &Ctx,
    repo: &Repo,
    def: &crate::remote::RemoteDef,
) -> Option<crate::remote::PushReport> {
    match super::push::push_repo(repo, def, &[]) {
        Ok(r) => {
            if !ctx.json {
                let _ = super::push::print_push(ctx, &r);
            }
            Some(r)
        }
        Err(e) => {
            eprintln!("{ERROR_PREFIX}{}", ctx.complete(&one_line(&e)));
            None
        }
    }
}

/// A snapshot of a site with no database holds its files only: say so.
fn warn_no_database(ctx: &Ctx, s: &SnapshotRecord) {
    if s.db_url.is_none() {
        ctx.warn(format!(
            "site '{}' has no database registered; snapshot {} holds its files only (give it one with `{}`)",
            s.site,
            short(&s.id),
            ctx.hint(&format!("site set {} --db URL", s.site))
        ));
    }
}

fn done_line(s: &SnapshotRecord) -> String {
    format!(
        "snapshot {} of {}: {} files, {}, read {}, added {} in {:.1}s",
        short(&s.id),
        s.site,
        s.files,
        fmt_bytes(s.bytes),
        fmt_bytes(s.bytes_read + s.db_bytes),
        fmt_bytes(s.bytes_added),
        s.duration_ms as f64 / 1000.0
    )
}

/// One site: its line is the summary. Several: a line each, then the totals.
fn print_done(ctx: &Ctx, done: &[SnapshotRecord], tried: usize) {
    if let [one] = done
        && tried == 1
    {
        return ctx.summary(done_line(one));
    }
    done.iter().for_each(|s| ctx.explain(done_line(s)));
    let added: u64 = done.iter().map(|s| s.bytes_added).sum();
    let ms: u64 = done.iter().map(|s| s.duration_ms).sum();
    ctx.summary(format!(
        "{} of {tried} site(s) snapshotted, added {} in {:.1}s",
        done.len(),
        fmt_bytes(added),
        ms as f64 / 1000.0
    ));
}

/// Takes a pinned checkpoint snapshot.
pub fn checkpoint(ctx: &Ctx, a: CheckpointArgs) -> Result<i32> {
    let repo = ctx.open_locked("checkpoint")?;
    let site = repo.cat.site(&a.uri)?;
    let mut opts = CaptureOpts::new(SnapshotKind::Checkpoint);
    opts.label = Some(a.label);
    opts.progress = ctx.progress();
    opts.dump_timeout = a.dump_timeout;
    let s = take_snapshot(&repo, &site, &opts)?;
    warn_no_database(ctx, &s);
    if ctx.json {
        print_json(&snapshot_json(&s))?;
    }
    ctx.summary(format!(
        "checkpoint {} of {} ({}): {} files, {} added",
        short(&s.id),
        s.site,
        s.label.as_deref().unwrap_or(""),
        s.files,
        fmt_bytes(s.bytes_added)
    ));
    Ok(0)
}
