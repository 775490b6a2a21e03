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
    // The update command's output of the migration this snapshot was taken before.
    let log = Some(crate::updatelog::log_path(&repo, &s.id)).filter(|p| p.is_file());
    if ctx.json {
        let mut v = snapshot_json(&s);
        if let Some(l) = &log {
            v["update_log"] = serde_json::json!(l);
        }
        print_json(&v)?;
    } else {
        print_snapshot(&s);
        if let Some(l) = &log {
            println!("update log: {}", l.display());
        }
    }
    Ok(0)
}
