//! `sitesnap migrate`: move a site to another platform, rolled back if anything fails.

use crate::cli::ERROR_PREFIX;
use crate::cli::args::Ctx;
use crate::cli::output::{print_json, short};
use crate::migrate::MigrateOpts;
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
}

/// Migrates; exit 1 (after the rollback) if the migration failed.
pub fn run(ctx: &Ctx, a: MigrateArgs) -> Result<i32> {
    let repo = ctx.open_locked("migrate")?;
    let opts = MigrateOpts {
        update_cmd: a.update_cmd,
        check_url: a.check_url,
    };
    let out = crate::migrate::migrate(&repo, &a.uri, &a.to, &opts)?;
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
    if !ctx.json {
        println!(
            "migrated {} from {} to {} (undo with: {})",
            out.site,
            out.from.display(),
            out.to.display(),
            ctx.hint(&format!("restore {} --yes", short(&out.pre_migrate)))
        );
    }
    Ok(0)
}
