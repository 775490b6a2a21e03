//! The command line: clap definitions and dispatch. Each command lives in [`cmd`] (its
//! arguments and what it prints); shared arguments in [`args`], printing helpers in
//! [`output`]. Errors become one line on stderr and an exit code (1 failure, 2 usage). This is
//! the only place that prints; the library returns values.

pub mod args;
pub mod cmd;
pub mod metrics;
pub mod output;

pub use args::{Ctx, GlobalArgs, KeepArgs, SiteArgs};
pub use cmd::snapshot::take_snapshot;
pub use output::{fmt_bytes, short, snapshot_json};

use crate::error::Error;
use anyhow::Result;
use clap::{Parser, Subcommand};
use cmd::*;

/// `sitesnap [global options] <command> [options]`.
#[derive(Parser, Debug)]
#[command(
    name = "sitesnap",
    version,
    about = "Backup and rollback snapshots of Aegir-style sites: platform, site directory, database and bindings"
)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a repository
    Init,
    /// Register, list, show or remove sites
    #[command(subcommand)]
    Site(site::SiteCmd),
    /// Snapshot sites (platform, site directory, database, bindings)
    Snapshot(snapshot::SnapshotArgs),
    /// Take a pinned checkpoint snapshot (kept by retention until deleted by hand)
    Checkpoint(snapshot::CheckpointArgs),
    /// List snapshots
    List(list::ListArgs),
    /// Show one snapshot
    Show(list::ShowArgs),
    /// Forget snapshots by retention policy (per site; the data goes at the next `gc`)
    Prune(prune::PruneArgs),
    /// Pin a snapshot: retention never removes it
    Pin(pin::PinArgs),
    /// Unpin a snapshot: retention may remove it again
    Unpin(pin::PinArgs),
    /// Forget snapshots by id (a pinned one needs --force or `unpin` first; data goes at `gc`)
    Forget(pin::ForgetArgs),
    /// Remove data no snapshot refers to, repacking packs that are mostly garbage
    Gc(gc::GcArgs),
    /// Rebuild what can be rebuilt from the store (`repair catalog`)
    #[command(subcommand)]
    Repair(repair::RepairCmd),
    /// Write the store objects a repository made by an older sitesnap lacks (writing commands
    /// do it on their own the first time)
    Upgrade,
    /// Check that every snapshot's data is there and sound (exit 1 if anything is damaged)
    Verify(verify::VerifyArgs),
    /// Put a site back as a snapshot recorded it, on the platform it was on
    Restore(restore::RestoreArgs),
    /// Move a site to another platform: pre-migrate snapshot, move, update, check; rolled
    /// back to the old platform if any of it fails
    Migrate(migrate::MigrateArgs),
    /// Write a snapshot as a portable archive (.tar.zst, .tar.gz or .tar)
    Export(export::ExportArgs),
    /// Import an Aegir backup (<uri>-YYYYmmdd.HHMMSS.tar.gz) of a registered site: its site
    /// folder and database.sql; platform and bindings are taken from disk as they are now
    Import(aegir::ImportArgs),
    /// Find the sites of an Aegir server from its drush aliases and vhosts
    Discover(aegir::DiscoverArgs),
    /// Check the repository and the sites for what would make a snapshot or restore fail
    /// (exit 1 if there is a problem)
    Doctor(doctor::DoctorArgs),
    /// What changed between two snapshots, or between a snapshot and the live site
    Diff(diff::DiffArgs),
    /// Finish or undo restores that were interrupted (each site on its own)
    Recover(restore::RecoverArgs),
    /// Add, list or remove remotes (S3 buckets, NAS folders) to push to
    #[command(subcommand)]
    Remote(remote::RemoteCmd),
    /// Upload the objects a remote lacks (resumable; data before the manifests naming it)
    Push(push::PushArgs),
    /// Rebuild a repository in a new folder from a remote (`--repo NEWDIR remote add ...`
    /// first)
    Pull(pull::PullArgs),
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sitesnap: error: {}", output::one_line(&e));
            e.downcast_ref::<Error>().map(Error::exit_code).unwrap_or(1)
        }
    }
}

/// Runs one parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let ctx = Ctx::new(&cli.global);
    match cli.cmd {
        Cmd::Init => init::run(&ctx),
        Cmd::Site(c) => site::run(&ctx, c),
        Cmd::Snapshot(a) => snapshot::run(&ctx, a),
        Cmd::Checkpoint(a) => snapshot::checkpoint(&ctx, a),
        Cmd::List(a) => list::list(&ctx, a),
        Cmd::Show(a) => list::show(&ctx, a),
        Cmd::Prune(a) => prune::run(&ctx, a),
        Cmd::Pin(a) => pin::pin(&ctx, &a.id, true),
        Cmd::Unpin(a) => pin::pin(&ctx, &a.id, false),
        Cmd::Forget(a) => pin::forget(&ctx, a),
        Cmd::Gc(a) => gc::run(&ctx, a),
        Cmd::Verify(a) => verify::run(&ctx, a),
        Cmd::Repair(c) => repair::run(&ctx, c),
        Cmd::Upgrade => repair::upgrade(&ctx),
        Cmd::Restore(a) => restore::run(&ctx, a),
        Cmd::Migrate(a) => migrate::run(&ctx, a),
        Cmd::Export(a) => export::run(&ctx, a),
        Cmd::Import(a) => aegir::import(&ctx, a),
        Cmd::Discover(a) => aegir::discover(&ctx, a),
        Cmd::Doctor(a) => doctor::run(&ctx, a),
        Cmd::Diff(a) => diff::run(&ctx, a),
        Cmd::Recover(a) => restore::recover(&ctx, a),
        Cmd::Remote(c) => remote::run(&ctx, c),
        Cmd::Push(a) => push::run(&ctx, a),
        Cmd::Pull(a) => pull::run(&ctx, a),
    }
}
