//! `sitesnap gc`: remove data no snapshot refers to.

use crate::cli::args::Ctx;
use crate::cli::output::{fmt_bytes, print_json};
use crate::gc::{GcOpts, GcReport};
use crate::remote::{self, RemoteGcOpts};
use anyhow::{Context, Result};
use clap::Args;
use std::time::Duration;

/// Arguments of `gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Report what would be removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Collect a remote's garbage instead: packs no manifest in it (of any host) refers to,
    /// under the remote's exclusive lock
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// With --remote: keep unused objects written less than this long ago (30s, 10m, 1h, 2d;
    /// default 1h)
    #[arg(long, value_name = "DURATION", requires = "remote", value_parser = crate::cli::span::parse_grace)]
    pub grace: Option<Duration>,
    /// With --remote: remove the remote's conflicting locks instead of refusing (when their
    /// holder is known to be gone)
    #[arg(long, requires = "remote")]
    pub break_lock: bool,
}

/// Collects garbage (or reports what it would collect).
pub fn run(ctx: &Ctx, a: GcArgs) -> Result<i32> {
    if let Some(name) = &a.remote {
        return remote_gc(ctx, &a, name);
    }
    let repo = ctx.open_for(a.dry_run, "gc")?;
    let opts = GcOpts {
        dry_run: a.dry_run,
        ..Default::default()
    };
    crate::progress::phase_of("gc: marking what snapshots use", 0, 0, "packs");
    let r = crate::gc::gc(&repo, &opts)?;
    crate::progress::finish();
    if ctx.json {
        print_json(&r)?;
    } else if a.dry_run {
        println!("{}", ctx.complete(&report_line(&r, true)));
    } else {
        ctx.summary(ctx.complete(&report_line(&r, false)));
    }
    Ok(0)
}

/// `gc --remote NAME`.
fn remote_gc(ctx: &Ctx, a: &GcArgs, name: &str) -> Result<i32> {
    let repo = ctx.open()?;
    let def = remote::find(&ctx.repo_path, name)?;
    let what = || format!("gc on remote '{}'", def.name);
    let backend = remote::open(&def).with_context(what)?;
    let opts = RemoteGcOpts {
        dry_run: a.dry_run,
        grace: a.grace.unwrap_or(Duration::from_secs(3600)),
        break_lock: a.break_lock,
    };
    let r = remote::gc(&repo, &def.name, backend, &opts).with_context(what)?;
    if ctx.json {
        print_json(&r)?;
    } else if a.dry_run || ctx.report_wanted() {
        println!(
            "remote {}: {} {} unused pack(s) ({}), {} blob list(s), {} pin(s); kept {} pack(s) younger than the grace period, {} unreadable; {} snapshot(s) of every host keep their data{}",
            r.remote,
            if a.dry_run { "would remove" } else { "removed" },
            r.packs_removed,
            fmt_bytes(r.bytes_freed),
            r.blob_lists_removed,
            r.pins_removed,
            r.packs_young,
            r.packs_unreadable,
            r.snapshots,
            if a.dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

/// The one line that says what gc did (or would do).
fn report_line(r: &GcReport, dry_run: bool) -> String {
    let mut line = format!(
        "{} {} unused pack(s), repack {} pack(s) into {}, {} chunk(s), {} blob(s), {} leftover file(s); {} {}; repository {} -> {}",
        if dry_run { "would remove" } else { "removed" },
        r.packs_deleted,
        r.packs_repacked,
        r.packs_written,
        r.chunks_removed,
        r.blobs_removed,
        r.orphan_packs_removed + r.tmp_files_removed,
        if dry_run { "would free" } else { "freed" },
        fmt_bytes(r.bytes_freed),
        fmt_bytes(r.bytes_before),
        fmt_bytes(r.bytes_after),
    );
    if r.leftovers_held {
        line.push_str(
            "; restore leftovers not removed: a restore is unfinished (run `sitesnap recover`)",
        );
    } else if r.leftovers_removed > 0 {
        line.push_str(&format!(
            "; {} {} restore leftover(s), {}",
            if dry_run { "would remove" } else { "removed" },
            r.leftovers_removed,
            fmt_bytes(r.leftover_bytes)
        ));
    }
    line
}
