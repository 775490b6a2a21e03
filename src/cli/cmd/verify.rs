//! `sitesnap verify`: is every snapshot's data there and sound.

use crate::cli::ERROR_PREFIX;
use crate::cli::args::Ctx;
use crate::cli::output::{fmt_bytes, local_time, print_json, short};
use crate::verify::{VerifyOpts, VerifyReport};
use anyhow::Result;
use clap::Args;

/// Arguments of `verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Also read, decompress and re-hash every chunk
    #[arg(long)]
    pub read_data: bool,
}

/// Verifies; exit 1 if anything is damaged.
pub fn run(ctx: &Ctx, a: VerifyArgs) -> Result<i32> {
    // Verify takes the writer lock so that a concurrent gc cannot make packs vanish under it.
    let repo = ctx.open_locked("verify")?;
    let r = crate::verify::verify(
        &repo,
        &VerifyOpts {
            read_data: a.read_data,
        },
    )?;
    if ctx.json {
        print_json(&r)?;
    } else {
        print_damage(ctx, &r);
        if !r.ok || ctx.report_wanted() {
            print_summary(ctx, &r, a.read_data);
        }
    }
    if !r.ok {
        eprintln!(
            "{ERROR_PREFIX}verify: damage found: {} snapshot(s) damaged, {} pack problem(s), {} missing chunk(s){}",
            r.damaged_snapshots.len(),
            r.pack_problems.len(),
            r.missing_chunks,
            if r.store.is_empty() {
                ""
            } else {
                "; the catalogue and the store disagree"
            }
        );
        return Ok(1);
    }
    Ok(0)
}

fn print_damage(ctx: &Ctx, r: &VerifyReport) {
    for p in &r.pack_problems {
        println!(
            "DAMAGED pack {}: {} ({} indexed chunk(s) affected)",
            p.pack, p.problem, p.damaged_chunks
        );
    }
    if !r.store.is_empty() {
        let hint = ctx.hint(if r.store.v1_catalogue {
            "upgrade"
        } else {
            "repair catalog"
        });
        println!(
            "CATALOGUE out of step with the store: {} (run `{hint}`)",
            r.store.summary()
        );
    }
    for o in &r.unknown_objects {
        println!(
            "unknown {o}: no catalogue row or manifest refers to it (`{}` removes it)",
            ctx.hint("gc")
        );
    }
    if r.missing_chunks > 0 {
        println!(
            "DAMAGED index: {} referenced chunk(s) are not in it",
            r.missing_chunks
        );
    }
    for s in &r.damaged_snapshots {
        println!(
            "DAMAGED snapshot {} of {} ({}, {}):",
            short(&s.id),
            s.site,
            local_time(&s.time),
            s.kind
        );
        for d in &s.damaged {
            if d.part == "database" || d.whole_tree {
                println!("  {}", d.path);
            } else {
                println!("  {} {}", d.part, d.path);
            }
        }
    }
}

fn print_summary(ctx: &Ctx, r: &VerifyReport, read_data: bool) {
    let read = if read_data {
        format!(
            "; read and re-hashed {} chunk(s), {}",
            r.chunks_read,
            fmt_bytes(r.bytes_read)
        )
    } else {
        String::new()
    };
    let unreferenced = if r.unreferenced_damaged_chunks > 0 {
        format!(
            "; {} damaged chunk(s) belong to no snapshot (`{}` removes them)",
            r.unreferenced_damaged_chunks,
            ctx.hint("gc")
        )
    } else {
        String::new()
    };
    println!(
        "checked {} snapshot(s), {} pack(s), {} referenced chunk(s){read}{unreferenced}",
        r.snapshots, r.packs, r.referenced_chunks
    );
}
