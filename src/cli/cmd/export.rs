//! `sitesnap export`: a snapshot as a portable archive.

use crate::cli::args::Ctx;
use crate::cli::output::{fmt_bytes, print_json, short};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Snapshot id (a unique prefix is enough)
    pub id: String,
    /// The archive to write; its name picks the format (.tar.zst, .tar.gz or .tar)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Writes the archive.
pub fn run(ctx: &Ctx, a: ExportArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let snap = repo.cat.resolve_snapshot(&a.id)?;
    let st = crate::archive::export(&repo, &snap, &a.output)?;
    if ctx.json {
        print_json(&st)?;
    }
    ctx.summary(format!(
        "exported snapshot {} of {} to {}: {} entries, {}",
        short(&snap.id),
        snap.site,
        st.file.display(),
        st.entries,
        fmt_bytes(st.bytes)
    ));
    Ok(0)
}
