//! `sitesnap migrate`: move a site to another platform, rolled back if anything fails; the
//! preflight (`--check-only`) runs first.

use crate::cli::ERROR_PREFIX;
use crate::cli::args::Ctx;
use crate::cli::output::{print_json, short};
use crate::hooks::{self, Event, HookCtx, Hooks};
use crate::migrate::MigrateOpts;
use crate::preflight::{Finding, Report};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The site's URI
    pub uri: String,
    /// Platform root to move the site to
    #[arg(long, value_name = "PLATFORM")]
    pub to: PathBuf,
    /// Command run in the new platform after the move (e.g. "drush @site updatedb -y");
    /// $SITESNAP_SITE and $SITESNAP_PLATFORM are set
    #[arg(long, value_name = "CMD")]
    pub update_cmd: Option<String>,
    /// URL that must answer 2xx/3xx after the update
    #[arg(long, value_name = "URL")]
    pub check_url: Option<String>,
    /// Only run the preflight (enabled modules and themes against the target platform) and
    /// report; change nothing
    #[arg(long, conflicts_with_all = ["update_cmd", "check_url", "force"])]
    pub check_only: bool,
    /// Migrate even if enabled modules or themes are missing on the target platform
    #[arg(long)]
    pub force: bool,
}

/// Prints a preflight report, one finding a line.
pub fn print_report(r: &Report, to_stderr: bool) {
    for f in &r.findings {
        let tag = match f {
            Finding::Missing { .. } => "MISSING",
            Finding::Moved { .. } => "moved",
            Finding::SiteCode { .. } | Finding::SplitUpgrade { .. } => "warning",
            Finding::NoExtensionList { .. } => "note",
        };
        if to_stderr && !matches!(f, Finding::NoExtensionList { .. }) {
            eprintln!("sitesnap: preflight: {tag}: {f}");
        } else if !to_stderr {
            println!("{tag:<8} {f}");
        }
    }
}

fn check_only(ctx: &Ctx, a: &MigrateArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let r = crate::migrate::preflight(&repo, &a.uri, &a.to)?;
    if ctx.json {
        print_json(&r)?;
    } else {
        println!(
            "preflight of {} to {}: {} enabled extension(s) checked",
            r.site,
            r.to.display(),
            r.enabled
        );
        print_report(&r, false);
    }
    Ok(if r.blocks() { 1 } else { 0 })
}

/// The `after-migrate` hook (on the new platform) or, after a rollback, `on-failure`; a
/// failing hook is reported and changes nothing.
fn run_hooks(repo: &crate::repo::Repo, out: &crate::migrate::MigrateOutcome) -> Result<()> {
    let hooks = Hooks::load(repo)?;
    let (event, platform) = match out.failed {
        None => (Event::AfterMigrate, &out.to),
        Some(_) => (Event::OnFailure, &out.from),
    };
    let ctx = HookCtx {
        event,
        site: &out.site,
        platform,
        snapshot: Some(&out.pre_migrate),
        error: out.failed.as_deref(),
    };
    if let Err(e) = hooks::run(&hooks, &ctx) {
        eprintln!("sitesnap: warning: {e}");
    }
    Ok(())
}

/// Migrates; exit 1 (after the rollback) if the migration failed.
pub fn run(ctx: &Ctx, a: MigrateArgs) -> Result<i32> {
    if a.check_only {
        return check_only(ctx, &a);
    }
    let repo = ctx.open_locked("migrate")?;
    let opts = MigrateOpts {
        update_cmd: a.update_cmd,
        check_url: a.check_url,
        force: a.force,
    };
    let out = crate::migrate::migrate(&repo, &a.uri, &a.to, &opts)?;
    print_report(&out.preflight, true);
    run_hooks(&repo, &out)?;
    if ctx.json {
        print_json(&out)?;
    }
    if let Some(why) = &out.failed {
        eprintln!(
            "{ERROR_PREFIX}migration of {} failed: {why}; rolled back to {} (snapshot {})",
            out.site,
            out.from.display(),
            short(&out.pre_migrate)
        );
        return Ok(1);
    }
    ctx.summary(format!(
        "migrated {} from {} to {} (undo with: {})",
        out.site,
        out.from.display(),
        out.to.display(),
        ctx.hint(&format!("restore {} --yes", short(&out.pre_migrate)))
    ));
    Ok(0)
}
