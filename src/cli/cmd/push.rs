//! `sitesnap push [NAME]`: upload the objects a remote lacks.

use crate::cli::args::Ctx;
use crate::cli::metrics;
use crate::cli::output::{fmt_bytes, print_json};
use crate::remote::{self, PushReport, RemoteDef};
use crate::repo::Repo;
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// The remote (may be left out when there is only one)
    pub name: Option<String>,
    /// Push only what this site's snapshots need (repeatable; default: everything)
    #[arg(long = "site", value_name = "URI")]
    pub sites: Vec<String>,
    /// Write Prometheus textfile-collector metrics of this push to FILE (atomically; also
    /// when the push fails)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

/// Pushes to a remote.
pub fn run(ctx: &Ctx, a: PushArgs) -> Result<i32> {
    let def = pick(&ctx.repo_path, a.name.as_deref())?;
    let r = push_to(ctx, &def, &a.sites);
    if let Some(path) = &a.metrics {
        let m = metrics::push_metrics(&def.name, r.as_ref().ok(), &metrics::previous(path));
        let written = metrics::write_file(path, &m);
        // A failed push is the error reported, not a failed metrics write after it.
        if r.is_ok() {
            written?;
        }
    }
    print_push(ctx, &r?)?;
    Ok(0)
}

/// Opens the repository locked and pushes it (or what `sites` need) to `def`.
pub fn push_to(ctx: &Ctx, def: &RemoteDef, sites: &[String]) -> Result<PushReport> {
    let repo = ctx.open_locked("push")?;
    push_repo(&repo, def, sites)
}

/// Pushes `repo` (locked by the caller), or what the snapshots of `sites` need, to `def`.
pub fn push_repo(repo: &Repo, def: &RemoteDef, sites: &[String]) -> Result<PushReport> {
    let what = || format!("push to remote '{}'", def.name);
    let backend = remote::open(def).with_context(what)?;
    remote::push(repo, &def.name, backend, sites).with_context(what)
}

/// Prints a push report as text or JSON.
pub fn print_push(ctx: &Ctx, r: &PushReport) -> Result<()> {
    if ctx.json {
        print_json(r)?;
    } else {
        let only = match r.sites.is_empty() {
            true => String::new(),
            false => format!(" (site(s) {})", r.sites.join(", ")),
        };
        ctx.summary(format!(
            "pushed to {}{only}: {} object(s) uploaded ({}), {} already there ({}), {:.1} s",
            r.remote,
            r.uploaded,
            fmt_bytes(r.uploaded_bytes),
            r.skipped,
            fmt_bytes(r.skipped_bytes),
            r.duration_ms as f64 / 1000.0
        ));
    }
    Ok(())
}

/// The remote called `name`, or the only one.
pub fn pick(root: &Path, name: Option<&str>) -> Result<RemoteDef> {
    if let Some(n) = name {
        return Ok(remote::find(root, n)?);
    }
    let mut defs = remote::load(root)?;
    match defs.len() {
        1 => Ok(defs.remove(0)),
        0 => anyhow::bail!("no remote defined; add one with `sitesnap remote add`"),
        _ => anyhow::bail!("several remotes are defined; name the one to push to"),
    }
}
