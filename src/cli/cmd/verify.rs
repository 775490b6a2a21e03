//! `sitesnap verify`: is every snapshot's data there and sound.

use crate::cli::ERROR_PREFIX;
use crate::cli::args::Ctx;
use crate::cli::output::{fmt_bytes, local_time, print_json, short};
use crate::remote::{self, RemoteVerifyReport};
use crate::verify::{DamagedSnapshot, VerifyOpts, VerifyReport};
use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Also read, decompress and re-hash every chunk
    #[arg(long)]
    pub read_data: bool,
    /// Verify this remote instead of the local store (reads only; needs the repository's key)
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
}

/// Verifies; exit 1 if anything is damaged.
pub fn run(ctx: &Ctx, a: VerifyArgs) -> Result<i32> {
    if let Some(name) = &a.remote {
        return run_remote(ctx, name, a.read_data);
    }
    // Verify takes the writer lock so that a concurrent gc cannot make packs vanish under it.
    let repo = ctx.open_locked("verify")?;
    // Leftovers of a writer that died or hit a full disk: nothing refers to them.
    let (n, bytes) = crate::gc::remove_unfinished(&repo)?;
    if n > 0 {
        eprintln!(
            "sitesnap: notice: removed {n} unfinished upload(s) from data/tmp ({})",
            fmt_bytes(bytes)
        );
    }
    let r = crate::verify::verify(
        &repo,
        &VerifyOpts {
            read_data: a.read_data,
        },
    )?;
    crate::progress::finish();
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
    print_snapshots(&r.damaged_snapshots);
}

fn print_snapshots(snaps: &[DamagedSnapshot]) {
    for s in snaps {
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

/// `verify --remote NAME`: checks the remote with the local repository's key; changes nothing.
fn run_remote(ctx: &Ctx, name: &str, read_data: bool) -> Result<i32> {
    let what = || format!("verify remote '{name}'");
    let def = remote::find(&ctx.repo_path, name)?;
    let repo = ctx.open()?;
    let backend = remote::open(&def).with_context(what)?;
    let r = remote::verify(&repo, name, backend.as_ref(), read_data).with_context(what)?;
    if ctx.json {
        print_json(&r)?;
    } else {
        print_remote_damage(&r);
        if !r.ok || ctx.report_wanted() {
            print_remote_summary(&r);
        }
    }
    if !r.ok {
        eprintln!(
            "{ERROR_PREFIX}verify: damage found on remote '{name}': {} snapshot(s) damaged, {} \
             pack problem(s), {} missing chunk(s), {} bad manifest(s), {} bad blob list(s)",
            r.damaged_snapshots.len(),
            r.pack_problems.len(),
            r.missing_chunks,
            r.bad_manifests.len(),
            r.bad_blob_lists.len()
        );
        return Ok(1);
    }
    Ok(0)
}

fn print_remote_damage(r: &RemoteVerifyReport) {
    for p in &r.pack_problems {
        println!("DAMAGED pack {}: {}", p.pack, p.problem);
    }
    for m in &r.bad_manifests {
        println!("DAMAGED manifest {}: {}", m.name, m.problem);
    }
    for b in &r.bad_blob_lists {
        println!("DAMAGED blob list {}: {}", short(&b.name), b.problem);
    }
    if r.missing_chunks > 0 {
        println!(
            "MISSING: {} referenced chunk(s) are in no sound pack",
            r.missing_chunks
        );
    }
    print_snapshots(&r.damaged_snapshots);
}

fn print_remote_summary(r: &RemoteVerifyReport) {
    let read = if r.read_data {
        format!(
            "; downloaded {} and decoded {} chunk(s)",
            fmt_bytes(r.bytes_read),
            r.chunks_read
        )
    } else {
        String::new()
    };
    println!(
        "remote {}: checked {} snapshot(s), {} pack(s), {} blob list(s), {} tree(s), {} referenced chunk(s){read}",
        r.remote, r.snapshots, r.packs, r.blob_lists, r.trees, r.referenced_chunks
    );
}
