//! `sitesnap doctor`: what would make a snapshot or restore fail.

use crate::cli::args::Ctx;
use crate::cli::output::print_json;
use crate::doctor::Level;
use anyhow::Result;
use clap::Args;

/// Arguments of `doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Check only this site (default: every site)
    pub uri: Option<String>,
}

/// Runs the checks; exit 1 if one found a problem.
pub fn run(ctx: &Ctx, a: DoctorArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let found = crate::doctor::check(&repo, a.uri.as_deref())?;
    if ctx.json {
        print_json(&found)?;
    } else {
        for f in &found {
            let tag = match f.level {
                Level::Ok => "ok",
                Level::Warning => "WARNING",
                Level::Problem => "PROBLEM",
            };
            let msg = ctx.complete(&f.message);
            println!("{tag:<8} {:<28} {msg}", f.subject);
        }
    }
    let bad = found.iter().any(|f| f.level == Level::Problem);
    Ok(if bad { 1 } else { 0 })
}
