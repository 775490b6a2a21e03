//! `sitesnap list` and `sitesnap show`.

use crate::cli::args::Ctx;
use crate::cli::output::{print_json, print_snapshot, print_snapshot_table, snapshot_json};
use anyhow::Result;
use clap::Args;

/// Arguments of `list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    pub uri: Option<String>,
}

/// Arguments of `show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    pub id: String,
}

/// Lists the snapshots (of one site).
pub fn list(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let repo = ctx.open()?;
    if let Some(u) = &a.uri {
        repo.cat.site(u)?;
    }
    let snaps = repo.cat.snapshots(a.uri.as_deref())?;
    if ctx.json {
        let v: Vec<_> = snaps.iter().map(snapshot_json).collect();
        print_json(&v)?;
    } else {
        print_snapshot_table(&snaps);
    }
    Ok(0)
}

/// Shows one snapshot.
pub fn show(ctx: &Ctx, a: ShowArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let s = repo.cat.resolve_snapshot(&a.id)?;
    if ctx.json {
        print_json(&snapshot_json(&s))?;
    } else {
        print_snapshot(&s);
    }
    Ok(0)
}
