//! The command line: clap definitions, dispatch to the library, and output (human tables or
//! `--json`). Errors become one line on stderr and an exit code (1 failure, 2 usage). This is
//! the only place that prints; the library returns values.

use crate::capture::{self, CaptureOpts};
use crate::catalog::{SiteRecord, SnapshotRecord};
use crate::error::Error;
use crate::repo::{self, Repo};
use crate::restore::{self, PlatformAction, RestoreOpts};
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
        SiteCmd::Add { uri, spec } => {
            let repo = ctx.open_locked("site add")?;
            let rec = site::new_site(
                &uri,
                &SiteSpec {
                    platform: spec.platform,
                    site_dir: spec.site_dir,
                    db: spec.db,
                    bindings: spec.bindings,
                },
            )?;
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
    for s in &sites {
        match take_snapshot(&repo, s, &opts) {
            Ok(snap) => done.push(snap),
            Err(e) => {
                failures += 1;
                if !a.all {
                    return Err(e);
                }
                eprintln!("sitesnap: error: {}", one_line(&e));
            }
        }
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
