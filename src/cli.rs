//! The command line: clap definitions, dispatch to the library, and output (human tables or
//! `--json`). Errors become one line on stderr and an exit code (1 failure, 2 usage). This is
//! the only place that prints; the library returns values.

use crate::capture::{self, CaptureOpts};
use crate::catalog::{SiteRecord, SnapshotRecord};
use crate::error::Error;
use crate::repo::{self, Repo};
use crate::restore::{self, PlatformAction, RestoreOpts};
use crate::retention::{self, Policy};
use crate::site::{self, SiteSpec};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "sitesnap",
    version,
    about = "Backup and rollback snapshots of Aegir-style sites: platform, site directory, database and bindings"
)]
pub struct Cli {
    /// Repository folder (default: $SITESNAP_REPO, else /var/lib/sitesnap for root, else ~/.local/share/sitesnap)
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Print what was done, even on success
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Seconds to wait for another sitesnap writer to finish
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    pub lock_wait: u64,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a repository
    Init,
    /// Register, list, show or remove sites
    #[command(subcommand)]
    Site(SiteCmd),
    /// Snapshot sites (platform, site directory, database, bindings)
    Snapshot(SnapshotArgs),
    /// Take a pinned checkpoint snapshot (kept by retention until deleted by hand)
    Checkpoint {
        uri: String,
        #[arg(long)]
        label: String,
        #[arg(long)]
        json: bool,
    },
    /// List snapshots
    List {
        uri: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one snapshot
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Forget snapshots by retention policy (per site; the data goes at the next `gc`)
    Prune(PruneArgs),
    /// Pin a snapshot: retention never removes it
    Pin { id: String },
    /// Unpin a snapshot: retention may remove it again
    Unpin { id: String },
    /// Forget snapshots by id (a pinned one needs --force or `unpin` first; data goes at `gc`)
    Forget {
        #[arg(required = true)]
        ids: Vec<String>,
        /// Also forget pinned snapshots
        #[arg(long)]
        force: bool,
    },
    /// Remove data no snapshot refers to, repacking packs that are mostly garbage
    Gc {
        /// Report what would be removed; change nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check that every snapshot's data is there and sound (exit 1 if anything is damaged)
    Verify {
        /// Also read, decompress and re-hash every chunk
        #[arg(long)]
        read_data: bool,
        #[arg(long)]
        json: bool,
    },
    /// Put a site back as a snapshot recorded it, on the platform it was on
    Restore(RestoreArgs),
    /// Move a site to another platform: pre-migrate snapshot, move, update, check; rolled
    /// back to the old platform if any of it fails
    Migrate {
        uri: String,
        /// Platform root to move the site to
        #[arg(long, value_name = "PLATFORM")]
        to: PathBuf,
        /// Command run in the new platform after the move (e.g. "drush @site updatedb -y");
        /// $SITESNAP_SITE and $SITESNAP_PLATFORM are set
        #[arg(long, value_name = "CMD")]
        update_cmd: Option<String>,
        /// URL that must answer 2xx/3xx after the update
        #[arg(long, value_name = "URL")]
        check_url: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write a snapshot as a portable archive (.tar.zst, .tar.gz or .tar)
    Export {
        id: String,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Import an Aegir backup (<uri>-YYYYmmdd.HHMMSS.tar.gz) of a registered site: its site
    /// folder and database.sql; platform and bindings are taken from disk as they are now
    Import {
        file: PathBuf,
        /// The site (default: from the file name)
        #[arg(long, value_name = "URI")]
        site: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Find the sites of an Aegir server from its drush aliases and vhosts
    Discover {
        /// Aegir home folder
        #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "/var/aegir")]
        aegir: Option<PathBuf>,
        /// Register the sites found that are not registered yet (without a database URL)
        #[arg(long)]
        add: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check the repository and the sites for what would make a snapshot or restore fail
    /// (exit 1 if there is a problem)
    Doctor {
        uri: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// What changed between two snapshots, or between a snapshot and the live site
    Diff {
        id: String,
        /// Second snapshot (default: compare with the live site)
        other: Option<String>,
        /// Compare with the live site (the default without a second id)
        #[arg(long, conflicts_with = "other")]
        live: bool,
        #[arg(long)]
        json: bool,
    },
    /// Finish or undo restores that were interrupted
    Recover,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id (a unique prefix is enough)
    pub id: String,
    /// Print the plan and stop
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Bring a platform that changed since the snapshot back to the snapshot's files
    /// (other sites on that platform are affected)
    #[arg(long)]
    pub repair_platform: bool,
    /// Leave the database as it is
    #[arg(long)]
    pub no_db: bool,
    /// Restore only the database
    #[arg(long)]
    pub no_files: bool,
    /// Keep the replaced site folder (moved aside) instead of removing it at the end
    #[arg(long)]
    pub keep_old: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// Register a site
    Add {
        uri: String,
        #[command(flatten)]
        spec: SiteArgs,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// List sites
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a site
    Show {
        uri: String,
        #[arg(long)]
        json: bool,
    },
    /// Forget a site (refused while it has snapshots unless --forget-snapshots)
    Remove {
        uri: String,
        #[arg(long)]
        forget_snapshots: bool,
    },
    /// Store a site's retention policy (replacing the one stored), used by `prune` without flags
    Set {
        uri: String,
        /// New database URL
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Read the database password from this file (first line)
        #[arg(long, value_name = "FILE")]
        db_password_file: Option<PathBuf>,
        /// Replace the binding files with these (repeat for several)
        #[arg(long = "bind", value_name = "FILE")]
        bindings: Vec<PathBuf>,
        #[command(flatten)]
        keep: KeepArgs,
        /// Remove the stored policy (prune then leaves the site alone)
        #[arg(long, conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within"])]
        clear_policy: bool,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct SiteArgs {
    /// Platform root the site is on
    #[arg(long, value_name = "PATH")]
    pub platform: Option<PathBuf>,
    /// Site directory relative to the platform (default sites/<uri>)
    #[arg(long, value_name = "DIR")]
    pub site_dir: Option<String>,
    /// Database URL: sqlite:///abs/path, mysql://user:pass@host/name, postgres://...
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Read the database password from this file (first line) instead of the URL, so it
    /// never appears on a command line
    #[arg(long, value_name = "FILE", requires = "db")]
    pub db_password_file: Option<PathBuf>,
    /// A binding file (vhost, drush alias); repeat for several
    #[arg(long = "bind", value_name = "FILE")]
    pub bindings: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// Sites to snapshot
    pub uris: Vec<String>,
    /// Snapshot every registered site
    #[arg(long, conflicts_with = "uris")]
    pub all: bool,
    #[arg(long)]
    pub label: Option<String>,
    /// manual or scheduled
    #[arg(long, default_value = "manual", value_parser = ["manual", "scheduled"])]
    pub kind: String,
    #[arg(long)]
    pub json: bool,
    /// Write Prometheus textfile-collector metrics for the sites of this run to FILE (atomically)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
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
            eprintln!("sitesnap: error: {}", one_line(&e));
            e.downcast_ref::<Error>().map(Error::exit_code).unwrap_or(1)
        }
    }
}

/// The error and its causes on one line, each cause once (an I/O error's message already
/// ends with its source, which the chain would repeat).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if out.ends_with(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    out.replace('\n', " ")
}

struct Ctx {
    repo_path: PathBuf,
    verbose: bool,
    lock_wait: Duration,
}

impl Ctx {
    fn open(&self) -> Result<Repo> {
        Ok(Repo::open(&self.repo_path)?)
    }

    fn open_locked(&self, command: &str) -> Result<Repo> {
        let mut r = self.open()?;
        r.lock(command, self.lock_wait)?;
        crate::fsutil::pausepoint("locked");
        Ok(r)
    }
}

fn run(cli: Cli) -> Result<i32> {
    let ctx = Ctx {
        repo_path: cli.repo.clone().unwrap_or_else(repo::default_path),
        verbose: cli.verbose,
        lock_wait: Duration::from_secs(cli.lock_wait),
    };
    match cli.cmd {
        Cmd::Init => {
            Repo::init(&ctx.repo_path)?;
            println!("created repository {}", ctx.repo_path.display());
            Ok(0)
        }
        Cmd::Site(c) => site_cmd(&ctx, c),
        Cmd::Restore(a) => restore_cmd(&ctx, a),
        Cmd::Doctor { uri, json } => {
            let repo = ctx.open()?;
            let found = crate::doctor::check(&repo, uri.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                for f in &found {
                    let tag = match f.level {
                        crate::doctor::Level::Ok => "ok",
                        crate::doctor::Level::Warning => "WARNING",
                        crate::doctor::Level::Problem => "PROBLEM",
                    };
                    println!("{tag:<8} {:<28} {}", f.subject, f.message);
                }
            }
            let bad = found
                .iter()
                .any(|f| f.level == crate::doctor::Level::Problem);
            Ok(if bad { 1 } else { 0 })
        }
        Cmd::Import { file, site, json } => {
            let repo = ctx.open_locked("import")?;
            let s = crate::aegir::import(&repo, &file, site.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snapshot_json(&s))?);
            } else {
                println!(
                    "imported {} as snapshot {} of {}",
                    file.display(),
                    short(&s.id),
                    s.site
                );
                if let Some(n) = &s.note {
                    println!("note: {n}");
                }
            }
            Ok(0)
        }
        Cmd::Discover { aegir, add, json } => {
            let root = aegir.ok_or_else(|| {
                Error::Usage("say where to look: discover --aegir [/var/aegir]".into())
            })?;
            let repo = if add {
                ctx.open_locked("discover")?
            } else {
                ctx.open()?
            };
            let found = crate::aegir::discover(&repo, &root)?;
            let mut added = Vec::new();
            if add {
                for f in found.iter().filter(|f| !f.registered) {
                    let rec = site::new_site(
                        &f.uri,
                        &SiteSpec {
                            platform: Some(f.platform.clone()),
                            site_dir: None,
                            db: None,
                            bindings: f.bindings.clone(),
                        },
                    );
                    match rec.and_then(|r| repo.cat.add_site(&r)) {
                        Ok(()) => added.push(f.uri.clone()),
                        Err(e) => eprintln!("sitesnap: {}: not added: {e}", f.uri),
                    }
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                for f in &found {
                    println!(
                        "{:<32} {}{}",
                        f.uri,
                        f.platform.display(),
                        if f.registered {
                            "  (registered)"
                        } else if added.contains(&f.uri) {
                            "  (added; give it --db with `site set`)"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(0)
        }
        Cmd::Export { id, output, json } => {
            let repo = ctx.open()?;
            let snap = repo.cat.resolve_snapshot(&id)?;
            let st = crate::archive::export(&repo, &snap, &output)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else if ctx.verbose {
                println!(
                    "exported snapshot {} to {}: {} entries, {}",
                    short(&snap.id),
                    st.file.display(),
                    st.entries,
                    fmt_bytes(st.bytes)
                );
            }
            Ok(0)
        }
        Cmd::Migrate {
            uri,
            to,
            update_cmd,
            check_url,
            json,
        } => {
            let repo = ctx.open_locked("migrate")?;
            let out = crate::migrate::migrate(
                &repo,
                &uri,
                &to,
                &crate::migrate::MigrateOpts {
                    update_cmd,
                    check_url,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            match &out.failed {
                None => {
                    if !json {
                        println!(
                            "migrated {} from {} to {} (undo with: sitesnap restore {})",
                            out.site,
                            out.from.display(),
                            out.to.display(),
                            short(&out.pre_migrate)
                        );
                    }
                    Ok(0)
                }
                Some(why) => {
                    eprintln!(
                        "sitesnap: error: migration of {} failed: {why}; rolled back to {} (snapshot {})",
                        out.site,
                        out.from.display(),
                        short(&out.pre_migrate)
                    );
                    Ok(1)
                }
            }
        }
        Cmd::Diff {
            id,
            other,
            live: _,
            json,
        } => {
            let repo = ctx.open()?;
            let a = repo.cat.resolve_snapshot(&id)?;
            let b = other.map(|o| repo.cat.resolve_snapshot(&o)).transpose()?;
            let d = crate::diff::diff(&repo, &a, b.as_ref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!("{}", d.describe());
            }
            Ok(0)
        }
        Cmd::Recover => {
            let repo = ctx.open_locked("recover")?;
            let lines = restore::recover(&repo)?;
            if lines.is_empty() {
                println!("no interrupted restore");
            }
            for l in lines {
                println!("{l}");
            }
            Ok(0)
        }
        Cmd::Snapshot(a) => snapshot_cmd(&ctx, a),
        Cmd::Checkpoint { uri, label, json } => {
            let repo = ctx.open_locked("checkpoint")?;
            let site = repo.cat.site(&uri)?;
            let mut opts = CaptureOpts::new("checkpoint");
            opts.label = Some(label);
            opts.progress = true;
            let s = take_snapshot(&repo, &site, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snapshot_json(&s))?);
            } else {
                println!(
                    "checkpoint {} of {} ({}): {} files, {} added",
                    short(&s.id),
                    s.site,
                    s.label.as_deref().unwrap_or(""),
                    s.files,
                    fmt_bytes(s.bytes_added)
                );
            }
            Ok(0)
        }
        Cmd::List { uri, json } => {
            let repo = ctx.open()?;
            if let Some(u) = &uri {
                repo.cat.site(u)?;
            }
            let snaps = repo.cat.snapshots(uri.as_deref())?;
            if json {
                let v: Vec<_> = snaps.iter().map(snapshot_json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_snapshot_table(&snaps);
            }
            Ok(0)
        }
        Cmd::Show { id, json } => {
            let repo = ctx.open()?;
            let s = repo.cat.resolve_snapshot(&id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snapshot_json(&s))?);
            } else {
                print_snapshot(&s);
            }
            Ok(0)
        }
        Cmd::Prune(a) => prune_cmd(&ctx, a),
        Cmd::Pin { id } => pin_cmd(&ctx, &id, true),
        Cmd::Unpin { id } => pin_cmd(&ctx, &id, false),
        Cmd::Forget { ids, force } => forget_cmd(&ctx, &ids, force),
        Cmd::Gc { dry_run, json } => gc_cmd(&ctx, dry_run, json),
        Cmd::Verify { read_data, json } => verify_cmd(&ctx, read_data, json),
    }
}

fn restore_cmd(ctx: &Ctx, a: RestoreArgs) -> Result<i32> {
    let opts = RestoreOpts {
        repair_platform: a.repair_platform,
        no_db: a.no_db,
        no_files: a.no_files,
        keep_old: a.keep_old,
    };
    let repo = if a.dry_run {
        ctx.open()?
    } else {
        ctx.open_locked("restore")?
    };
    let snap = repo.cat.resolve_snapshot(&a.id)?;
    let (plan, _) = restore::plan(&repo, &snap, &opts)?;
    if a.dry_run {
        if a.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            println!("{}", plan.describe());
            println!("(dry run: nothing changed)");
        }
        return Ok(if plan.platform == PlatformAction::Drift {
            1
        } else {
            0
        });
    }
    if !a.json {
        println!("{}", plan.describe());
    }
    if plan.platform == PlatformAction::Drift {
        // run() refuses with the reason.
        restore::run(&repo, &snap, &plan)?;
    }
    if !a.yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(Error::Refused(
                "restore changes a live site: add --yes to confirm (no terminal to ask on)".into(),
            )
            .into());
        }
        eprint!("Proceed? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing changed");
            return Ok(1);
        }
    }
    let out = restore::run(&repo, &snap, &plan)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "restored {} to snapshot {} on {}",
            plan.site,
            short(&snap.id),
            plan.target_platform.display()
        );
        for k in &out.kept_old {
            println!("kept the replaced copy at {}", k.display());
        }
        println!(
            "current state saved as pre-restore snapshot {}; undo with: {}",
            short(&out.pre_restore),
            out.undo
        );
    }
    Ok(0)
}

fn site_cmd(ctx: &Ctx, c: SiteCmd) -> Result<i32> {
    match c {
        SiteCmd::Add { uri, spec, keep } => {
            let policy = keep.policy()?;
            let repo = ctx.open_locked("site add")?;
            let db = match (spec.db, &spec.db_password_file) {
                (Some(url), Some(f)) => Some(crate::db::with_password_from_file(&url, f)?),
                (db, _) => db,
            };
            let mut rec = site::new_site(
                &uri,
                &SiteSpec {
                    platform: spec.platform,
                    site_dir: spec.site_dir,
                    db,
                    bindings: spec.bindings,
                },
            )?;
            rec.policy = policy.map(|p| p.to_json());
            repo.cat.add_site(&rec)?;
            if ctx.verbose {
                println!("added site {} on {}", rec.uri, rec.platform.display());
            }
            Ok(0)
        }
        SiteCmd::List { json } => {
            let repo = ctx.open()?;
            let sites = repo.cat.sites()?;
            if json {
                let v: Vec<_> = sites.iter().map(site_json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{:<32} {:<8} PLATFORM", "SITE", "DB");
                for s in &sites {
                    let db = s.database().ok().flatten().map(|d| d.kind()).unwrap_or("-");
                    println!("{:<32} {:<8} {}", s.uri, db, s.platform.display());
                }
            }
            Ok(0)
        }
        SiteCmd::Show { uri, json } => {
            let repo = ctx.open()?;
            let s = repo.cat.site(&uri)?;
            let now = site::locate(&repo.cat, &s)?;
            let n = repo.cat.snapshots(Some(&uri))?.len();
            if json {
                let mut v = site_json(&s);
                v["located_on"] = serde_json::json!(now);
                v["snapshots"] = serde_json::json!(n);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("site:      {}", s.uri);
                println!("platform:  {}", s.platform.display());
                if now != s.platform {
                    println!(
                        "found on:  {} (its site directory is there now)",
                        now.display()
                    );
                }
                println!("site dir:  {}", s.site_dir);
                println!("database:  {}", redacted_db(&s));
                println!("retention: {}", policy_text(&s));
                for b in &s.bindings {
                    println!("binding:   {}", b.display());
                }
                println!("snapshots: {n}");
            }
            Ok(0)
        }
        SiteCmd::Remove {
            uri,
            forget_snapshots,
        } => {
            let repo = ctx.open_locked("site remove")?;
            repo.cat.remove_site(&uri, forget_snapshots)?;
            if ctx.verbose {
                println!("removed site {uri}");
            }
            Ok(0)
        }
        SiteCmd::Set {
            uri,
            db,
            db_password_file,
            bindings,
            keep,
            clear_policy,
        } => {
            if db.is_some() || db_password_file.is_some() || !bindings.is_empty() {
                site_set_fields(ctx, &uri, db, db_password_file, bindings)?;
                if keep.policy()?.is_none() && !clear_policy {
                    return Ok(0);
                }
            }
            site_set_cmd(ctx, &uri, &keep, clear_policy)
        }
    }
}

fn redacted_db(s: &SiteRecord) -> String {
    match s.database() {
        Ok(Some(d)) => d.redacted(),
        Ok(None) => "-".into(),
        Err(_) => "(invalid URL)".into(),
    }
}

fn site_json(s: &SiteRecord) -> serde_json::Value {
    serde_json::json!({
        "uri": s.uri,
        "platform": s.platform,
        "site_dir": s.site_dir,
        "db": s.db_url.as_ref().map(|_| redacted_db(s)),
        "bindings": s.bindings,
        "policy": s.policy.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()),
    })
}

/// Takes a snapshot of a registered site where it is now.
pub fn take_snapshot(repo: &Repo, site: &SiteRecord, opts: &CaptureOpts) -> Result<SnapshotRecord> {
    let platform = site::locate(&repo.cat, site)?;
    let s = capture::snapshot(repo, site, &platform, opts)
        .with_context(|| format!("snapshot of site '{}'", site.uri))?;
    Ok(s)
}

fn snapshot_cmd(ctx: &Ctx, a: SnapshotArgs) -> Result<i32> {
    if !a.all && a.uris.is_empty() {
        return Err(Error::Usage("name the sites to snapshot, or use --all".into()).into());
    }
    let repo = ctx.open_locked("snapshot")?;
    let sites: Vec<SiteRecord> = if a.all {
        repo.cat.sites()?
    } else {
        // Resolve every name first: an unknown site fails before anything is captured.
        a.uris
            .iter()
            .map(|u| repo.cat.site(u))
            .collect::<crate::Result<_>>()?
    };
    let mut opts = CaptureOpts::new(&a.kind);
    opts.label = a.label.clone();
    opts.progress = true;
    let mut done = Vec::new();
    let mut failures = 0;
    let mut failed = Vec::new();
    for s in &sites {
        match take_snapshot(&repo, s, &opts) {
            Ok(snap) => done.push(snap),
            Err(e) => {
                failures += 1;
                if !a.all {
                    return Err(e);
                }
                eprintln!("sitesnap: error: {}", one_line(&e));
                failed.push(s.uri.clone());
            }
        }
    }
    if let Some(path) = &a.metrics {
        write_metrics(&repo, path, &sites, &failed)?;
    }
    if a.json {
        let v: Vec<_> = done.iter().map(snapshot_json).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if ctx.verbose || std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        for s in &done {
            println!(
                "snapshot {} of {}: {} files, {}, read {}, added {} in {:.1}s",
                short(&s.id),
                s.site,
                s.files,
                fmt_bytes(s.bytes),
                fmt_bytes(s.bytes_read + s.db_bytes),
                fmt_bytes(s.bytes_added),
                s.duration_ms as f64 / 1000.0
            );
        }
    }
    if failures > 0 {
        eprintln!("sitesnap: {failures} of {} site(s) failed", sites.len());
        return Ok(1);
    }
    Ok(0)
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

pub fn fmt_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

pub fn snapshot_json(s: &SnapshotRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(s).expect("snapshot serializes");
    v["short_id"] = serde_json::json!(short(&s.id));
    v["time_local"] = serde_json::json!(
        s.time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S %z")
            .to_string()
    );
    v
}

fn print_snapshot_table(snaps: &[SnapshotRecord]) {
    println!(
        "{:<8}  {:<19}  {:<24}  {:<11}  {:>7}  {:>10}  {:>10}  LABEL",
        "ID", "TIME", "SITE", "KIND", "FILES", "SIZE", "ADDED"
    );
    for s in snaps {
        println!(
            "{:<8}  {:<19}  {:<24}  {:<11}  {:>7}  {:>10}  {:>10}  {}{}",
            short(&s.id),
            s.time
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S"),
            s.site,
            s.kind,
            s.files,
            fmt_bytes(s.bytes),
            fmt_bytes(s.bytes_added),
            if s.pinned { "[pinned] " } else { "" },
            s.label.as_deref().unwrap_or("")
        );
    }
}

fn print_snapshot(s: &SnapshotRecord) {
    println!("snapshot:   {}", s.id);
    println!("site:       {}", s.site);
    println!(
        "time:       {} ({} UTC)",
        s.time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S %z"),
        s.time.format("%Y-%m-%d %H:%M:%S")
    );
    println!(
        "kind:       {}{}",
        s.kind,
        if s.pinned { " (pinned)" } else { "" }
    );
    if let Some(l) = &s.label {
        println!("label:      {l}");
    }
    println!(
        "platform:   {}{}",
        s.platform_path.display(),
        if s.platform_tree.is_none() {
            " (absent)"
        } else {
            ""
        }
    );
    println!(
        "site dir:   {}{}",
        s.site_dir,
        if s.site_tree.is_none() {
            " (absent)"
        } else {
            ""
        }
    );
    println!("database:   {}", s.db_url.as_deref().unwrap_or("-"));
    println!("files:      {}", s.files);
    println!("size:       {}", fmt_bytes(s.bytes));
    println!("read:       {}", fmt_bytes(s.bytes_read + s.db_bytes));
    println!("added:      {}", fmt_bytes(s.bytes_added));
    println!("duration:   {:.2}s", s.duration_ms as f64 / 1000.0);
    if let Some(n) = &s.note {
        println!("note:       {n}");
    }
}

#[allow(dead_code)]
fn exists(p: &Path) -> bool {
    p.exists()
}

// ------------------------------------------------------------------ operations (issue 5)

fn parse_span(s: &str) -> std::result::Result<retention::Span, String> {
    retention::Span::parse(s).map_err(|e| e.to_string())
}

/// Retention flags, shared by `prune`, `site add` and `site set`.
#[derive(Args, Debug, Clone, Default)]
pub struct KeepArgs {
    /// Keep the N newest snapshots
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot taken within DURATION of the site's newest one (e.g. 7d, 2w, 1y2m)
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within: Option<retention::Span>,
}

impl KeepArgs {
    fn given(&self) -> bool {
        self.keep_last.is_some()
            || self.keep_hourly.is_some()
            || self.keep_daily.is_some()
            || self.keep_weekly.is_some()
            || self.keep_monthly.is_some()
            || self.keep_yearly.is_some()
            || self.keep_within.is_some()
    }

    /// The policy these flags describe; `None` when no flag was given.
    fn policy(&self) -> crate::Result<Option<Policy>> {
        if !self.given() {
            return Ok(None);
        }
        let p = Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: self.keep_within,
        };
        if p.is_empty() {
            return Err(Error::Usage(
                "this policy keeps nothing: give at least one --keep-* option above 0".into(),
            ));
        }
        Ok(Some(p))
    }
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Only this site (default: every site)
    #[arg(long, value_name = "URI")]
    pub site: Option<String>,
    /// Show what would be kept and removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

fn report_wanted(ctx: &Ctx) -> bool {
    ctx.verbose || std::io::IsTerminal::is_terminal(&std::io::stdout())
}

fn policy_text(s: &SiteRecord) -> String {
    match s.policy.as_deref().map(Policy::from_json) {
        None => "none stored (prune without flags leaves this site alone)".into(),
        Some(Ok(p)) => p.to_string(),
        Some(Err(e)) => e.to_string(),
    }
}

/// Changes a site's database URL or binding files, validated like `site add`.
fn site_set_fields(
    ctx: &Ctx,
    uri: &str,
    db: Option<String>,
    db_password_file: Option<PathBuf>,
    bindings: Vec<PathBuf>,
) -> Result<()> {
    let repo = ctx.open_locked("site set")?;
    let cur = repo.cat.site(uri)?;
    let db = match (db.or_else(|| cur.db_url.clone()), &db_password_file) {
        (Some(url), Some(f)) => Some(crate::db::with_password_from_file(&url, f)?),
        (None, Some(_)) => {
            return Err(Error::Usage(format!(
                "site '{uri}' has no database URL to put a password in"
            ))
            .into());
        }
        (db, None) => db,
    };
    let mut rec = site::new_site(
        uri,
        &SiteSpec {
            platform: Some(cur.platform.clone()),
            site_dir: Some(cur.site_dir.clone()),
            db,
            bindings: if bindings.is_empty() {
                cur.bindings.clone()
            } else {
                bindings
            },
        },
    )?;
    rec.policy = cur.policy;
    repo.cat.update_site(&rec)?;
    if ctx.verbose {
        println!(
            "{uri}: database {}, {} binding file(s)",
            redacted_db(&rec),
            rec.bindings.len()
        );
    }
    Ok(())
}

fn site_set_cmd(ctx: &Ctx, uri: &str, keep: &KeepArgs, clear: bool) -> Result<i32> {
    let policy = keep.policy()?;
    if policy.is_none() && !clear {
        return Err(Error::Usage(
            "give the policy (--keep-last, --keep-daily, ... --keep-within) or --clear-policy"
                .into(),
        )
        .into());
    }
    let repo = ctx.open_locked("site set")?;
    repo.cat.site(uri)?;
    let json = policy.as_ref().map(Policy::to_json);
    repo.cat.set_policy(uri, json.as_deref())?;
    if ctx.verbose {
        match &policy {
            Some(p) => println!("{uri}: retention policy: {p}"),
            None => println!("{uri}: retention policy removed"),
        }
    }
    Ok(0)
}

/// Snapshots that an unfinished restore still needs, with the reason.
fn journal_holds(repo: &Repo) -> crate::Result<std::collections::HashMap<String, String>> {
    let mut holds = std::collections::HashMap::new();
    for j in repo.cat.open_journals()? {
        let why = format!("needed by unfinished restore {}", j.id);
        holds.insert(j.snapshot.clone(), why.clone());
        if let Some(p) = &j.pre_restore {
            holds.insert(p.clone(), why);
        }
    }
    Ok(holds)
}

fn local_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn prune_cmd(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    let explicit = a.keep.policy()?;
    let repo = if a.dry_run {
        ctx.open()?
    } else {
        ctx.open_locked("prune")?
    };
    if let Some(u) = &a.site {
        repo.cat.site(u)?;
    }
    let now = crate::fsutil::now();
    let holds = journal_holds(&repo)?;
    let mut by_site: std::collections::BTreeMap<String, Vec<SnapshotRecord>> =
        std::collections::BTreeMap::new();
    for s in repo.cat.sites()? {
        by_site.entry(s.uri).or_default();
    }
    for s in repo.cat.snapshots(None)? {
        by_site.entry(s.site.clone()).or_default().push(s);
    }
    if let Some(u) = &a.site {
        by_site.retain(|k, _| k == u);
    }
    let mut out = Vec::new();
    let mut remove_ids = Vec::new();
    let mut any_policy = false;
    for (site, snaps) in &by_site {
        let policy = match &explicit {
            Some(p) => Some(p.clone()),
            None => match repo.cat.find_site(site)?.and_then(|s| s.policy) {
                Some(j) => Some(Policy::from_json(&j)?),
                None => None,
            },
        };
        let Some(policy) = policy else {
            out.push(serde_json::json!({
                "site": site,
                "policy": null,
                "note": "no retention policy stored; nothing pruned",
                "keep": [],
                "remove": [],
            }));
            continue;
        };
        any_policy = true;
        let cands: Vec<retention::Candidate> = snaps
            .iter()
            .map(|s| retention::Candidate {
                id: s.id.clone(),
                time: s.time,
                kind: s.kind.clone(),
                pinned: s.pinned,
                hold: holds.get(&s.id).cloned(),
            })
            .collect();
        let verdicts = retention::apply(&policy, &cands, now, &chrono::Local);
        let by_id: std::collections::HashMap<&str, &SnapshotRecord> =
            snaps.iter().map(|s| (s.id.as_str(), s)).collect();
        let row = |v: &retention::Verdict| {
            let s = by_id[v.id.as_str()];
            serde_json::json!({
                "id": s.id,
                "short_id": short(&s.id),
                "time": s.time,
                "time_local": local_time(&s.time),
                "kind": s.kind,
                "label": s.label,
                "pinned": s.pinned,
                "reasons": v.reasons,
            })
        };
        let keep: Vec<_> = verdicts.iter().filter(|v| v.keep).map(row).collect();
        let remove: Vec<_> = verdicts.iter().filter(|v| !v.keep).map(row).collect();
        remove_ids.extend(verdicts.iter().filter(|v| !v.keep).map(|v| v.id.clone()));
        out.push(serde_json::json!({
            "site": site,
            "policy": serde_json::from_str::<serde_json::Value>(&policy.to_json())?,
            "policy_text": policy.to_string(),
            "keep": keep,
            "remove": remove,
        }));
    }
    if !a.dry_run && !remove_ids.is_empty() {
        repo.cat.delete_snapshots(&remove_ids)?;
    }
    if a.json {
        let v = serde_json::json!({
            "dry_run": a.dry_run,
            "removed": remove_ids.len(),
            "sites": out,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if a.dry_run || report_wanted(ctx) {
        for s in &out {
            let site = s["site"].as_str().unwrap_or("");
            match s["policy_text"].as_str() {
                None => println!(
                    "{site}: no retention policy stored; nothing pruned (set one: sitesnap site set {site} --keep-daily 7 ...)"
                ),
                Some(p) => {
                    println!("{site}: {p}");
                    for (tag, list) in [("keep", &s["keep"]), ("remove", &s["remove"])] {
                        for r in list.as_array().into_iter().flatten() {
                            let reasons: Vec<&str> = r["reasons"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|x| x.as_str())
                                .collect();
                            println!(
                                "  {tag:<6}  {}  {}  {:<11}  {}{}",
                                r["short_id"].as_str().unwrap_or(""),
                                r["time_local"].as_str().unwrap_or(""),
                                r["kind"].as_str().unwrap_or(""),
                                reasons.join(", "),
                                r["label"]
                                    .as_str()
                                    .map(|l| format!("  [{l}]"))
                                    .unwrap_or_default()
                            );
                        }
                    }
                }
            }
        }
        if a.dry_run {
            println!(
                "would remove {} snapshot(s) (dry run: nothing changed)",
                remove_ids.len()
            );
        } else {
            println!(
                "removed {} snapshot(s); `sitesnap gc` frees their data",
                remove_ids.len()
            );
        }
    }
    if explicit.is_none() && !any_policy && !by_site.is_empty() {
        eprintln!(
            "sitesnap: notice: no retention policy is stored for {}; nothing pruned (store one with `sitesnap site set <uri> --keep-daily 7 ...` or give --keep-* flags)",
            if a.site.is_some() {
                "this site"
            } else {
                "any site"
            }
        );
    }
    Ok(0)
}

fn pin_cmd(ctx: &Ctx, id: &str, pin: bool) -> Result<i32> {
    let repo = ctx.open_locked(if pin { "pin" } else { "unpin" })?;
    let s = repo.cat.resolve_snapshot(id)?;
    let what = if pin { "pinned" } else { "unpinned" };
    if s.pinned == pin {
        println!("snapshot {} of {} is already {what}", short(&s.id), s.site);
        return Ok(0);
    }
    repo.cat.set_pinned(&s.id, pin)?;
    println!(
        "{what} snapshot {} of {} ({})",
        short(&s.id),
        s.site,
        local_time(&s.time)
    );
    Ok(0)
}

fn forget_cmd(ctx: &Ctx, ids: &[String], force: bool) -> Result<i32> {
    let repo = ctx.open_locked("forget")?;
    let holds = journal_holds(&repo)?;
    // Resolve and check every id first: one bad id changes nothing.
    let mut snaps: Vec<SnapshotRecord> = Vec::new();
    for id in ids {
        let s = repo.cat.resolve_snapshot(id)?;
        if let Some(why) = holds.get(&s.id) {
            return Err(Error::Refused(format!(
                "snapshot {} is {why}; run `sitesnap recover` first",
                short(&s.id)
            ))
            .into());
        }
        if s.pinned && !force {
            return Err(Error::Refused(format!(
                "snapshot {} of {} is pinned ({}{}); `sitesnap unpin {}` first or add --force",
                short(&s.id),
                s.site,
                s.kind,
                s.label
                    .as_deref()
                    .map(|l| format!(" \"{l}\""))
                    .unwrap_or_default(),
                short(&s.id)
            ))
            .into());
        }
        if !snaps.iter().any(|x| x.id == s.id) {
            snaps.push(s);
        }
    }
    let list: Vec<String> = snaps.iter().map(|s| s.id.clone()).collect();
    repo.cat.delete_snapshots(&list)?;
    for s in &snaps {
        println!(
            "forgot snapshot {} of {} ({}, {})",
            short(&s.id),
            s.site,
            local_time(&s.time),
            s.kind
        );
    }
    println!("`sitesnap gc` frees their data");
    Ok(0)
}

fn gc_cmd(ctx: &Ctx, dry_run: bool, json: bool) -> Result<i32> {
    let repo = if dry_run {
        ctx.open()?
    } else {
        ctx.open_locked("gc")?
    };
    let opts = crate::gc::GcOpts {
        dry_run,
        ..Default::default()
    };
    let r = crate::gc::gc(&repo, &opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if dry_run || report_wanted(ctx) {
        println!(
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
    }
    Ok(0)
}

fn verify_cmd(ctx: &Ctx, read_data: bool, json: bool) -> Result<i32> {
    // Verify takes the writer lock so that a concurrent gc cannot make packs vanish under it.
    let repo = ctx.open_locked("verify")?;
    let r = crate::verify::verify(&repo, &crate::verify::VerifyOpts { read_data })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for p in &r.pack_problems {
            println!(
                "DAMAGED pack {}: {} ({} indexed chunk(s) affected)",
                p.pack, p.problem, p.damaged_chunks
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
        if !r.ok || report_wanted(ctx) {
            println!(
                "checked {} snapshot(s), {} pack(s), {} referenced chunk(s){}{}",
                r.snapshots,
                r.packs,
                r.referenced_chunks,
                if read_data {
                    format!(
                        "; read and re-hashed {} chunk(s), {}",
                        r.chunks_read,
                        fmt_bytes(r.bytes_read)
                    )
                } else {
                    String::new()
                },
                if r.unreferenced_damaged_chunks > 0 {
                    format!(
                        "; {} damaged chunk(s) belong to no snapshot (`sitesnap gc` removes them)",
                        r.unreferenced_damaged_chunks
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    if !r.ok {
        eprintln!(
            "sitesnap: verify: damage found: {} snapshot(s) damaged, {} pack problem(s), {} missing chunk(s)",
            r.damaged_snapshots.len(),
            r.pack_problems.len(),
            r.missing_chunks
        );
        return Ok(1);
    }
    Ok(0)
}

/// Prometheus label value escaping (backslash, double quote, newline).
fn prom_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn prom_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// Writes textfile-collector metrics for `sites` (this run), atomically.
fn write_metrics(repo: &Repo, path: &Path, sites: &[SiteRecord], failed: &[String]) -> Result<()> {
    let mut last = Vec::new();
    for s in sites {
        last.push((s, repo.cat.snapshots(Some(&s.uri))?.pop()));
    }
    let mut m = String::new();
    let mut family =
        |name: &str,
         help: &str,
         f: &dyn Fn(&SiteRecord, Option<&SnapshotRecord>) -> Option<String>| {
            m.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for (s, snap) in &last {
                if let Some(v) = f(s, snap.as_ref()) {
                    m.push_str(&format!("{name}{{site=\"{}\"}} {v}\n", prom_label(&s.uri)));
                }
            }
        };
    family(
        "sitesnap_last_success_timestamp_seconds",
        "Unix time of the site's newest snapshot (0: none yet).",
        &|_, snap| {
            Some(
                snap.map(|x| prom_time(&x.time))
                    .unwrap_or_else(|| "0".into()),
            )
        },
    );
    family(
        "sitesnap_last_duration_seconds",
        "How long the site's newest snapshot took.",
        &|_, snap| snap.map(|x| format!("{:.3}", x.duration_ms as f64 / 1000.0)),
    );
    family(
        "sitesnap_last_added_bytes",
        "Compressed bytes the site's newest snapshot added to the repository.",
        &|_, snap| snap.map(|x| x.bytes_added.to_string()),
    );
    family(
        "sitesnap_last_run_failed",
        "1 if the site's snapshot failed in the last run, else 0.",
        &|s, _| Some(if failed.contains(&s.uri) { "1" } else { "0" }.into()),
    );
    m.push_str(&format!(
        "# HELP sitesnap_last_run_timestamp_seconds Unix time the last `sitesnap snapshot` run ended.\n# TYPE sitesnap_last_run_timestamp_seconds gauge\nsitesnap_last_run_timestamp_seconds {}\n",
        prom_time(&crate::fsutil::now())
    ));
    crate::fsutil::write_atomic(path, m.as_bytes(), 0o644)
        .with_context(|| format!("writing metrics to {}", path.display()))?;
    Ok(())
}
