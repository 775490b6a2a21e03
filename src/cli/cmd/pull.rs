//! `sitesnap --repo NEWDIR pull NAME`: rebuild a repository from a remote.

use crate::cli::args::Ctx;
use crate::cli::cmd::repair::print_repair;
use crate::cli::output::{fmt_bytes, print_json};
use crate::remote;
use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// The remote (defined in the new folder with `remote add` first)
    pub name: String,
}

/// Pulls a remote into a new repository folder.
pub fn run(ctx: &Ctx, a: PullArgs) -> Result<i32> {
    let def = remote::find(&ctx.repo_path, &a.name)?;
    let what = || format!("pull from remote '{}'", def.name);
    let backend = remote::open(&def).with_context(what)?;
    let pass = || {
        ctx.passphrase(false)
            .map_err(|e| crate::error::Error::Invalid(format!("{e:#}")))
    };
    let (_repo, r) = remote::pull(
        &ctx.repo_path,
        &def.name,
        backend.as_ref(),
        ctx.lock_wait,
        &pass,
    )
    .with_context(what)?;
    if ctx.json {
        print_json(&r)?;
    } else {
        print_repair(ctx, &r.repair);
        ctx.summary(format!(
            "pulled from {}: {} object(s) downloaded ({}), {} already here",
            r.remote,
            r.downloaded,
            fmt_bytes(r.downloaded_bytes),
            r.skipped
        ));
    }
    let clean = r.repair.bad_packs.is_empty() && r.repair.skipped_snapshots.is_empty();
    Ok(if clean { 0 } else { 1 })
}
