//! `sitesnap list` and `sitesnap show`.

use crate::catalog::{SnapshotKind, SnapshotRecord};
use crate::cli::args::Ctx;
use crate::cli::output::{print_json, print_snapshot, print_snapshot_table, snapshot_json};
use crate::objects::read_manifest;
use crate::remote::{self, Hosts};
use crate::store::ObjectKind;
use anyhow::{Context, Result};
use clap::Args;
use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// Only snapshots taken on this host (as their manifests record it)
    #[arg(long, value_name = "HOST", conflicts_with = "all_hosts")]
    pub host: Option<String>,
    /// Every host's snapshots: the default for the local repository (it holds this host's
    /// snapshots and those pulled or fetched from others); with --remote, the default is this
    /// host's only
    #[arg(long)]
    pub all_hosts: bool,
    /// List a remote's snapshots instead (this host's unless --host or --all-hosts)
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
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
    if let Some(name) = &a.remote {
        return list_remote(ctx, &repo, &a, name, site);
    }
    if let Some(u) = site {
        repo.cat.site(u)?;
    }
    let mut snaps = repo.cat.snapshots(site)?;
    let mut hosts: HashMap<String, String> = HashMap::new();
    if a.host.is_some() {
        for s in &snaps {
            hosts.insert(s.id.clone(), read_manifest(&repo, &s.id)?.host);
        }
        snaps.retain(|s| a.host.as_deref() == hosts.get(&s.id).map(String::as_str));
    }
    let snaps = select(snaps, &a);
    if ctx.json {
        let v: Vec<_> = snaps.iter().map(snapshot_json).collect();
        print_json(&v)?;
    } else {
        print_snapshot_table(&snaps);
    }
    Ok(0)
}

/// `list --remote NAME`: the remote's snapshots, from its manifests, grouped by host.
fn list_remote(
    ctx: &Ctx,
    repo: &crate::repo::Repo,
    a: &ListArgs,
    name: &str,
    site: Option<&str>,
) -> Result<i32> {
    let def = remote::find(&ctx.repo_path, name)?;
    let what = || format!("list remote '{}'", def.name);
    let backend = remote::open(&def).with_context(what)?;
    let (manifests, bad) = remote::remote_manifests(repo, backend.as_ref()).with_context(what)?;
    let pins: HashSet<String> = backend
        .list(ObjectKind::Pin)
        .with_context(what)?
        .into_iter()
        .map(|o| o.name.name)
        .collect();
    let hosts = Hosts::from_args(a.host.as_deref(), a.all_hosts, Hosts::This);
    let mut by_host: BTreeMap<String, Vec<SnapshotRecord>> = BTreeMap::new();
    for m in manifests {
        if hosts.matches(&m.host) && site.is_none_or(|s| s == m.site) {
            let rec = m.record(pins.contains(&m.id))?;
            by_host.entry(m.host).or_default().push(rec);
        }
    }
    let mut json = Vec::new();
    for (host, snaps) in by_host {
        let snaps = select(snaps, a);
        if ctx.json {
            for s in &snaps {
                let mut v = snapshot_json(s);
                v["host"] = serde_json::json!(host);
                json.push(v);
            }
        } else {
            println!("host {host}:");
            print_snapshot_table(&snaps);
        }
    }
    if ctx.json {
        print_json(&json)?;
    }
    for (n, why) in bad {
        eprintln!("sitesnap: warning: manifest {n} on remote '{name}' cannot be read: {why}");
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
