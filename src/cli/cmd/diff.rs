//! `sitesnap diff`: what changed between two snapshots, or a snapshot and the live site.

use crate::cli::args::Ctx;
use crate::cli::output::print_json;
use crate::diff::DiffOpts;
use anyhow::Result;
use clap::Args;

/// Arguments of `diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Snapshot id (a unique prefix is enough)
    pub id: String,
    /// Second snapshot (default: compare with the live site)
    pub other: Option<String>,
    /// Compare with the live site (the default without a second id)
    #[arg(long, conflicts_with = "other")]
    pub live: bool,
    /// Show the unified diff of changed text files (secrets masked; binary and large files
    /// are only named)
    #[arg(long)]
    pub content: bool,
    /// Compare snapshots of two different sites
    #[arg(long)]
    pub force: bool,
}

/// Compares and prints the differences.
pub fn run(ctx: &Ctx, a: DiffArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let first = repo.cat.resolve_snapshot(&a.id)?;
    let second = a.other.map(|o| repo.cat.resolve_snapshot(&o)).transpose()?;
    let opts = DiffOpts {
        content: a.content,
        force: a.force,
    };
    let d = crate::diff::diff(&repo, &first, second.as_ref(), opts)?;
    if ctx.json {
        print_json(&d)?;
    } else {
        print!("{}", d.describe());
    }
    Ok(0)
}
