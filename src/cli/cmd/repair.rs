//! `sitesnap repair catalog` (rebuild the catalogue from the store) and `sitesnap upgrade`
//! (write the store objects a repository made by an older sitesnap lacks).

use crate::cli::args::Ctx;
use crate::cli::output::{print_json, short};
use crate::objects::{RepairReport, UpgradeReport};
use anyhow::Result;
use clap::Subcommand;

/// What `repair` repairs.
#[derive(Subcommand, Debug)]
pub enum RepairCmd {
    /// Rebuild catalog.sqlite from the store alone (packs, manifests, blob lists, sites, pins)
    Catalog,
    /// Name and mark the snapshots whose data is lost for good (chunks `verify` found damaged
    /// that no later snapshot could store anew)
    Snapshots,
}

/// Runs `repair <what>`.
pub fn run(ctx: &Ctx, c: RepairCmd) -> Result<i32> {
    match c {
        RepairCmd::Catalog => catalog(ctx),
        RepairCmd::Snapshots => snapshots(ctx),
    }
}

fn snapshots(ctx: &Ctx) -> Result<i32> {
    let repo = ctx.open_locked("repair snapshots")?;
    let lost = crate::verify::repair_snapshots(&repo)?;
    if ctx.json {
        print_json(&lost)?;
    } else {
        for s in &lost {
            println!(
                "snapshot {} of {} ({}) has lost data:",
                short(&s.id),
                s.site,
                s.kind
            );
            for d in &s.damaged {
                println!("  {} {}", d.part, d.path);
            }
        }
        if lost.is_empty() {
            ctx.summary("no snapshot has lost data");
        } else {
            println!(
                "{} snapshot(s) marked as having lost data; restoring their lost parts is refused",
                lost.len()
            );
        }
    }
    Ok(if lost.is_empty() { 0 } else { 1 })
}

fn catalog(ctx: &Ctx) -> Result<i32> {
    let (_repo, r) = ctx.repair_catalog()?;
    if ctx.json {
        print_json(&r)?;
    } else {
        print_repair(ctx, &r);
    }
    Ok(
        if r.bad_packs.is_empty() && r.skipped_snapshots.is_empty() {
            0
        } else {
            1
        },
    )
}

/// Prints what `repair catalog` (or `pull`) could not rebuild (always), then what it rebuilt
/// (the summary line).
pub fn print_repair(ctx: &Ctx, r: &RepairReport) {
    crate::progress::finish();
    for (p, why) in &r.bad_packs {
        println!("pack {p}: header unreadable ({why}); its chunks are not indexed");
    }
    for (id, why) in &r.skipped_snapshots {
        println!("snapshot {}: left out ({why})", short(id));
    }
    for uri in &r.sites_without_object {
        println!(
            "site {uri}: has snapshots but no registration in the store; `{}` to restore them",
            ctx.hint(&format!("site add {uri} ..."))
        );
    }
    for uri in &r.need_password {
        println!(
            "site {uri}: its database password is not in the store; run `{}`",
            ctx.hint(&format!("site set {uri} --db <url>"))
        );
    }
    ctx.summary(format!(
        "rebuilt the catalogue: {} pack(s), {} chunk(s), {} site(s), {} snapshot(s) ({} pinned)",
        r.packs, r.chunks, r.sites, r.snapshots, r.pinned
    ));
}

/// Runs `upgrade`.
pub fn upgrade(ctx: &Ctx) -> Result<i32> {
    let mut repo = ctx.open()?;
    repo.lock("upgrade", ctx.lock_wait)?;
    let r = crate::objects::upgrade(&repo)?;
    if ctx.json {
        print_json(&r)?;
    } else {
        print_upgrade(ctx, &r);
    }
    Ok(0)
}

fn print_upgrade(ctx: &Ctx, r: &UpgradeReport) {
    if r.already {
        ctx.summary("the repository is already in format 2");
        return;
    }
    for b in &r.missing_blobs {
        eprintln!(
            "blob {}: the catalogue cannot list it (run `{}`)",
            &b[..8],
            ctx.hint("verify")
        );
    }
    ctx.summary(format!(
        "upgraded to format 2: {} site object(s), {} manifest(s), {} blob list(s), {} pin(s) written",
        r.sites, r.manifests, r.blob_lists, r.pins
    ));
}
