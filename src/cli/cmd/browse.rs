//! `sitesnap ls` and `sitesnap dump`: browse a snapshot and print a stored file or the
//! database dump, without restoring anything.

use crate::browse::{self, Listed, SnapPath};
use crate::cli::args::Ctx;
use crate::cli::output::{fmt_bytes, print_json};
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;

/// Arguments of `ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id (a unique prefix is enough)
    pub id: String,
    /// Path in the snapshot: platform/..., site/..., extra/..., bindings/... or a binding
    /// file's absolute path (default: the snapshot's parts)
    pub path: Option<String>,
    /// List everything below the path, not only its direct entries
    #[arg(short, long)]
    pub recursive: bool,
}

/// Arguments of `dump`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["path", "database"])))]
pub struct DumpArgs {
    /// Snapshot id (a unique prefix is enough)
    pub id: String,
    /// The stored file to print: site/..., platform/..., extra/... or a binding file's
    /// absolute path
    pub path: Option<String>,
    /// Print the database dump instead (SQL; the database file for SQLite sites)
    #[arg(long, conflicts_with = "path")]
    pub database: bool,
}

/// Lists a snapshot's parts or the entries under a path.
pub fn ls(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let snap = repo.cat.resolve_snapshot(&a.id)?;
    let rows = match &a.path {
        None => browse::parts(&repo, &snap)?,
        Some(p) => browse::ls(&repo, &snap, &SnapPath::parse(p)?, a.recursive)?,
    };
    if ctx.json {
        print_json(&rows)?;
    } else {
        rows.iter().for_each(print_row);
    }
    Ok(0)
}

fn print_row(r: &Listed) {
    let kind = match r.kind {
        "dir" => 'd',
        "symlink" => 'l',
        "dump" => 'D',
        _ => '-',
    };
    let when = chrono::DateTime::from_timestamp_nanos(r.mtime_ns);
    let when = if r.mtime_ns == 0 {
        String::new()
    } else {
        crate::cli::output::local_time(&when)
    };
    let target = r
        .target
        .as_ref()
        .map(|t| format!(" -> {t}"))
        .unwrap_or_default();
    println!(
        "{kind}{:04o}  {:>10}  {:<19}  {}{target}",
        r.mode,
        fmt_bytes(r.size),
        when,
        r.path
    );
}

/// Copies a stored file or the dump to stdout, verified chunk by chunk.
pub fn dump(ctx: &Ctx, a: DumpArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let snap = repo.cat.resolve_snapshot(&a.id)?;
    let mut reader = match &a.path {
        Some(p) => browse::open_file(&repo, &snap, &SnapPath::parse(p)?)?,
        None => browse::open_dump(&repo, &snap)?,
    };
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut reader, &mut out).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(0)
}
