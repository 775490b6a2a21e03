//! `sitesnap list` and `sitesnap show`.

use crate::catalog::{SnapshotKind, SnapshotRecord};
use crate::cli::args::Ctx;
use crate::cli::output::{print_json, print_snapshot, print_snapshot_table, snapshot_json};
use anyhow::Result;
use clap::Args;
use std::collections::HashMap;

/// Arguments of `list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this site's snapshots (the same as --site)
    #[arg(value_name = "URI", conflicts_with = "site")]
    pub uri: Option<String>,
    /// Only this site's snapshots
    #[arg(long, value_name = "URI")]
    pub site: Option<String>,
    /// Only snapshots of this kind
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub kind: Option<SnapshotKind>,
    /// Only the N newest snapshots of each site (after the other filters)
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

/// Arguments of `show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Snapshot id (a unique prefix is enough)
    pub id: String,
}

fn parse_kind(s: &str) -> std::result::Result<SnapshotKind, String> {
    s.parse().map_err(|e: crate::Error| e.to_string())
}

/// The snapshots `a` selects, oldest first.
fn select(mut snaps: Vec<SnapshotRecord>, a: &ListArgs) -> Vec<SnapshotRecord> {
    if let Some(k) = a.kind {
        snaps.retain(|s| s.kind == k);
    }
    if let Some(n) = a.last {
        // Walk newest first, keeping up to n per site, then put them back in time order.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut kept: Vec<SnapshotRecord> = Vec::new();
        for s in snaps.into_iter().rev() {
            let c = seen.entry(s.site.clone()).or_default();
            if *c < n {
                *c += 1;
                kept.push(s);
            }
        }
        kept.reverse();
        snaps = kept;
    }
    snaps
}

/// Lists the snapshots (of one site).
pub fn list(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let site = a.uri.as_deref().or(a.site.as_deref());
    if let Some(u) = site {
        repo.cat.site(u)?;
    }
    let snaps = select(repo.cat.snapshots(site)?, &a);
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
