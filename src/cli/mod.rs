//! The command line: clap definitions and dispatch. Each command lives in [`cmd`] (its
//! arguments and what it prints); shared arguments in [`args`], printing helpers in
//! [`output`]. Errors become one line on stderr and an exit code (1 failure, 2 usage). This is
//! the only place that prints; the library returns values.

pub mod args;
pub mod cmd;
pub mod config;
pub mod hint;
pub mod metrics;
pub mod output;
pub mod progress;
pub mod span;

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
    /// Create a repository (--encrypt: encrypted under a passphrase)
    Init(init::InitArgs),
    /// Add, list or remove the passphrases (key files) of an encrypted repository
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Register, list, show or remove sites
    #[command(subcommand)]
    Site(site::SiteCmd),
    /// Snapshot sites (platform, site directory, database, bindings)
    Snapshot(ping::SnapshotCmd),
    /// Take a pinned checkpoint snapshot (kept by retention until deleted by hand)
    Checkpoint(ping::CheckpointCmd),
    /// List snapshots
    List(list::ListArgs),
    /// Show one snapshot
    Show(list::ShowArgs),
    /// Forget snapshots by retention policy (per site; the data goes at the next `gc`)
    Prune(ping::PruneCmd),
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
    /// Rehearse a migration on a throw-away clone (temporary URI, copied folder and database):
    /// preflight, update command, URL check, a report; the live site is not touched
    Rehearse(rehearse::RehearseArgs),
    /// Write a snapshot as a portable archive (.tar.zst, .tar.gz or .tar)
    Export(export::ExportArgs),
    /// Import an archive `export` wrote (every part, byte for byte), or an Aegir backup
    /// (<uri>-YYYYmmdd.HHMMSS.tar.gz) of a registered site: its site folder and database.sql,
    /// with platform and bindings taken from disk as they are now
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
    /// Repository size on disk, logical size, deduplication, per site and per platform
    Stats,
    /// List a snapshot's parts, or the files under a path in it, without restoring
    Ls(browse::LsArgs),
    /// Print a stored file, or the database dump (--database), to stdout
    Dump(browse::DumpArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(docs::CompletionsArgs),
    /// Print the manual page, or write every command's page into a folder (--dir)
    Man(docs::ManArgs),
    /// Commands run before a snapshot, after a restore or migration, or on a failure
    #[command(subcommand)]
    Hooks(hooks::HooksCmd),
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
        Err(e) => return usage_error(e),
    };
    let ctx = match Ctx::new(&cli.global, command_names()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{ERROR_PREFIX}{e}");
            return e.exit_code();
        }
    };
    progress::install(ctx.progress());
    let res = run(&ctx, cli.cmd);
    crate::progress::finish();
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{ERROR_PREFIX}{}", ctx.complete(&output::one_line(&e)));
            e.downcast_ref::<Error>().map(Error::exit_code).unwrap_or(1)
        }
    }
}

/// How every error line starts, usage errors included.
pub const ERROR_PREFIX: &str = "sitesnap: error: ";

/// Prints a clap error (or `--help`/`--version`) with the one error prefix; returns the exit code.
fn usage_error(e: clap::Error) -> i32 {
    if !e.use_stderr() {
        let _ = e.print();
        return 0;
    }
    let text = e.to_string();
    match text.strip_prefix("error: ") {
        Some(body) => eprint!("{ERROR_PREFIX}{body}"),
        // Help shown for a missing command is not an error line.
        None => eprint!("{text}"),
    }
    2
}

/// The name of every command and its aliases, so hints can be recognised in messages.
pub fn command_names() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// Runs one parsed command; returns the exit code.
pub fn run(ctx: &Ctx, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Init(a) => init::run(ctx, a),
        Cmd::Key(c) => key::run(ctx, c),
        Cmd::Site(c) => site::run(ctx, c),
        Cmd::Snapshot(a) => ping::around(ctx, "snapshot", &a.ping, || snapshot::run(ctx, a.args)),
        Cmd::Checkpoint(a) => ping::around(ctx, "checkpoint", &a.ping, || {
            snapshot::checkpoint(ctx, a.args)
        }),
        Cmd::List(a) => list::list(ctx, a),
        Cmd::Show(a) => list::show(ctx, a),
        Cmd::Prune(a) => ping::around(ctx, "prune", &a.ping, || prune::run(ctx, a.args)),
        Cmd::Pin(a) => pin::pin(ctx, &a.id, true),
        Cmd::Unpin(a) => pin::pin(ctx, &a.id, false),
        Cmd::Forget(a) => pin::forget(ctx, a),
        Cmd::Gc(a) => gc::run(ctx, a),
        Cmd::Verify(a) => verify::run(ctx, a),
        Cmd::Repair(c) => repair::run(ctx, c),
        Cmd::Upgrade => repair::upgrade(ctx),
        Cmd::Restore(a) => restore::run(ctx, a),
        Cmd::Migrate(a) => migrate::run(ctx, a),
        Cmd::Rehearse(a) => rehearse::run(ctx, a),
        Cmd::Export(a) => export::run(ctx, a),
        Cmd::Import(a) => aegir::import(ctx, a),
        Cmd::Discover(a) => aegir::discover(ctx, a),
        Cmd::Doctor(a) => doctor::run(ctx, a),
        Cmd::Diff(a) => diff::run(ctx, a),
        Cmd::Recover(a) => rehearse::recover(ctx, a),
        Cmd::Hooks(c) => hooks::run(ctx, c),
        Cmd::Remote(c) => remote::run(ctx, c),
        Cmd::Push(a) => push::run(ctx, a),
        Cmd::Pull(a) => pull::run(ctx, a),
        Cmd::Stats => stats::run(ctx),
        Cmd::Ls(a) => browse::ls(ctx, a),
        Cmd::Dump(a) => browse::dump(ctx, a),
        Cmd::Completions(a) => docs::completions(a, <Cli as clap::CommandFactory>::command()),
        Cmd::Man(a) => docs::man(ctx, a, <Cli as clap::CommandFactory>::command()),
    }
}
