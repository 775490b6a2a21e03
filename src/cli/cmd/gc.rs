//! `sitesnap gc`: remove data no snapshot refers to.

use crate::cli::args::Ctx;
use crate::cli::output::{fmt_bytes, print_json};
use crate::gc::{GcOpts, GcReport};
use anyhow::Result;
use clap::Args;

/// Arguments of `gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Report what would be removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Collects garbage (or reports what it would collect).
pub fn run(ctx: &Ctx, a: GcArgs) -> Result<i32> {
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
