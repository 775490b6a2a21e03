//! `sitesnap stats`: repository size, logical size, deduplication, per site and platform.

use crate::cli::args::Ctx;
use crate::cli::output::{fmt_bytes, local_time, print_json};
use crate::stats::Stats;
use anyhow::Result;

/// Prints the statistics.
pub fn run(ctx: &Ctx) -> Result<i32> {
    let repo = ctx.open()?;
    let s = crate::stats::stats(&repo)?;
    if ctx.json {
        print_json(&s)?;
    } else {
        print_stats(&s);
    }
    Ok(0)
}

fn print_stats(s: &Stats) {
    println!("repository:  {} on disk", fmt_bytes(s.size_on_disk));
    println!(
        "  packs:     {} ({}), {} other object(s) ({}), catalogue {}",
        s.packs,
        fmt_bytes(s.pack_bytes),
        s.objects,
        fmt_bytes(s.object_bytes),
        fmt_bytes(s.catalog_bytes)
    );
    println!(
        "  chunks:    {} ({} plain, {} compressed)",
        s.chunks,
        fmt_bytes(s.unique_bytes),
        fmt_bytes(s.compressed_bytes)
    );
    println!(
        "snapshots:   {} ({} if every one were restored)",
        s.snapshots,
        fmt_bytes(s.logical_bytes)
    );
    println!("dedup:       {:.2}x", s.dedup_ratio);
    println!("compression: {:.2}x", s.compression_ratio);
    println!();
    println!(
        "{:<32}  {:>9}  {:>10}  {:>10}  NEWEST",
        "SITE", "SNAPSHOTS", "LOGICAL", "ADDED"
    );
    for x in &s.sites {
        println!(
            "{:<32}  {:>9}  {:>10}  {:>10}  {}",
            x.site,
            x.snapshots,
            fmt_bytes(x.logical_bytes),
            fmt_bytes(x.added_bytes),
            x.newest.as_ref().map(local_time).unwrap_or_default()
        );
    }
    println!();
    println!(
        "{:<48}  {:>9}  {:>8}  SITES",
        "PLATFORM", "SNAPSHOTS", "VERSIONS"
    );
    for p in &s.platforms {
        println!(
            "{:<48}  {:>9}  {:>8}  {}",
            p.path.display(),
            p.snapshots,
            p.versions,
            p.sites.join(", ")
        );
    }
}
