//! `sitesnap site add|list|show|remove|set`.

use crate::catalog::SiteRecord;
use crate::cli::args::{Ctx, KeepArgs, SiteArgs};
use crate::cli::output::{policy_text, print_json, redacted_db, site_json};
use crate::db::StructureTables;
use crate::error::Error;
use crate::fsutil::shown;
use crate::retention::Policy;
use crate::site::{self, SiteSpec};
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// The `site` subcommands.
#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// Register a site
    Add {
        /// The site's URI (its folder name under sites/)
        uri: String,
        #[command(flatten)]
        spec: SiteArgs,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// List sites
    List,
    /// Show a site
    Show {
        /// The site's URI
        uri: String,
    },
    /// Forget a site (refused while it has snapshots unless --forget-snapshots)
    Remove {
        /// The site's URI
        uri: String,
        /// Also forget every snapshot of the site (their data goes at the next `gc`)
        #[arg(long)]
        forget_snapshots: bool,
    },
    /// Change a site's database, bindings, extra paths or structure-only tables, or store its
    /// retention policy (used by `prune` without flags)
    Set(SetArgs),
}

/// Arguments of `site set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// The site's URI
    pub uri: String,
    /// New database URL
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Read the database password from this file (first line)
    #[arg(long, value_name = "FILE")]
    pub db_password_file: Option<PathBuf>,
    /// Replace the binding files with these (repeat for several)
    #[arg(long = "bind", value_name = "FILE")]
    pub bindings: Vec<PathBuf>,
    /// Replace the site's extra paths (relative to the platform) with these (repeat for
    /// several)
    #[arg(long = "extra-path", value_name = "DIR")]
    pub extra_paths: Vec<String>,
    /// Tables dumped without their rows (comma-separated, `*` for any characters:
    /// 'cache,cache_*,sessions'); `default` for the default list (shown by `site show`)
    #[arg(long, value_name = "LIST", conflicts_with = "no_structure_tables")]
    pub structure_tables: Option<String>,
    /// Dump every table with its rows
    #[arg(long)]
    pub no_structure_tables: bool,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Remove the stored policy (prune then leaves the site alone)
    #[arg(long, conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within"])]
    pub clear_policy: bool,
}

/// Runs a `site` subcommand.
pub fn run(ctx: &Ctx, c: SiteCmd) -> Result<i32> {
    match c {
        SiteCmd::Add { uri, spec, keep } => add(ctx, &uri, spec, &keep),
        SiteCmd::List => list(ctx),
        SiteCmd::Show { uri } => show(ctx, &uri),
        SiteCmd::Remove {
            uri,
            forget_snapshots,
        } => {
            let repo = ctx.open_locked("site remove")?;
            crate::objects::remove_site(&repo, &uri, forget_snapshots)?;
            ctx.summary(format!("removed site {uri}"));
            Ok(0)
        }
        SiteCmd::Set(a) => set(ctx, a),
    }
}

fn add(ctx: &Ctx, uri: &str, spec: SiteArgs, keep: &KeepArgs) -> Result<i32> {
    let policy = keep.policy()?;
    let repo = ctx.open_locked("site add")?;
    let db = match (spec.db, &spec.db_password_file) {
        (Some(url), Some(f)) => Some(crate::db::with_password_from_file(&url, f)?),
        (db, _) => db,
    };
    let rec = site::register(
        &repo,
        uri,
        &SiteSpec {
            platform: spec.platform,
            site_dir: spec.site_dir,
            db,
            bindings: absolute(&spec.bindings)?,
            web_root: spec.web_root,
            extra_paths: spec.extra_paths,
        },
        policy.map(|p| p.to_json()),
    )?;
    ctx.summary(format!(
        "added site {} on {}",
        rec.uri,
        crate::fsutil::shown(&rec.platform)
    ));
    warn_unready(ctx, &rec);
    Ok(0)
}

/// Paths given on the command line, made absolute against the current folder the way
/// `--platform` is (binding files are stored by their absolute path).
fn absolute(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| std::path::absolute(p).map_err(|e| crate::error::Error::io(p, e).into()))
        .collect()
}

/// Warns (stderr, not an error: the site is registered) about what would make its next
/// snapshot fail: a site folder that does not exist, a database that cannot be reached.
fn warn_unready(ctx: &Ctx, rec: &SiteRecord) {
    if ctx.quiet {
        return;
    }
    let dir = rec.platform.join(&rec.site_dir);
    if !dir.is_dir() {
        ctx.warn(format!(
            "site {}: its folder {} does not exist (yet); snapshots fail until it does",
            rec.uri,
            crate::fsutil::shown(&dir)
        ));
    }
    let checked = rec
        .database_at(&rec.platform)
        .and_then(|d| d.map(|d| d.check()).transpose());
    if let Err(e) = checked {
        ctx.warn(format!(
            "site {}: {e}; snapshots fail until it can be read",
            rec.uri
        ));
    }
}

fn list(ctx: &Ctx) -> Result<i32> {
    let repo = ctx.open()?;
    let sites = repo.cat.sites()?;
    if ctx.json {
        let v: Vec<_> = sites.iter().map(site_json).collect();
        print_json(&v)?;
    } else {
        println!("{:<32} {:<8} PLATFORM", "SITE", "DB");
        for s in &sites {
            let db = s.database().ok().flatten().map(|d| d.kind()).unwrap_or("-");
            println!("{:<32} {:<8} {}", s.uri, db, shown(&s.platform));
        }
    }
    Ok(0)
}

fn show(ctx: &Ctx, uri: &str) -> Result<i32> {
    let repo = ctx.open()?;
    let s = repo.cat.site(uri)?;
    let now = site::locate(&repo.cat, &s)?;
    let n = repo.cat.snapshots(Some(uri))?.len();
    if ctx.json {
        let mut v = site_json(&s);
        v["located_on"] = serde_json::json!(now);
        v["snapshots"] = serde_json::json!(n);
        print_json(&v)?;
        return Ok(0);
    }
    println!("site:      {}", s.uri);
    println!("platform:  {}", shown(&s.platform));
    if now != s.platform {
        println!(
            "found on:  {} (its site directory is there now)",
            shown(&now)
        );
    }
    println!("site dir:  {}", s.site_dir);
    println!("web root:  {}", site::web_root(&repo.cat, &s, &now)?);
    for x in &s.extra_paths {
        println!("extra:     {x}");
    }
    println!("database:  {}", crate::fsutil::shown_text(&redacted_db(&s)));
    println!("structure: {}", structure_text(&s));
    println!("retention: {}", policy_text(&s));
    for b in &s.bindings {
        println!("binding:   {}", shown(b));
    }
    println!("snapshots: {n}");
    Ok(0)
}

fn set(ctx: &Ctx, a: SetArgs) -> Result<i32> {
    let structure = structure_choice(&a)?;
    if a.db.is_some()
        || a.db_password_file.is_some()
        || !a.bindings.is_empty()
        || !a.extra_paths.is_empty()
        || structure.is_some()
    {
        set_fields(ctx, &a, structure)?;
        if a.keep.policy()?.is_none() && !a.clear_policy {
            return Ok(0);
        }
    }
    set_policy(ctx, &a.uri, &a.keep, a.clear_policy)
}

/// The database URL `site set` stores: the new or current one, with the password file's.
fn new_db_url(cur: &SiteRecord, a: &SetArgs) -> Result<Option<String>> {
    match (
        a.db.clone().or_else(|| cur.db_url.clone()),
        &a.db_password_file,
    ) {
        (Some(url), Some(f)) => Ok(Some(crate::db::with_password_from_file(&url, f)?)),
        (None, Some(_)) => Err(Error::Usage(format!(
            "site '{}' has no database URL to put a password in",
            a.uri
        ))
        .into()),
        (db, None) => Ok(db),
    }
}

/// The structure-only tables `site set` was given: `None` when not given, `Some(None)` for
/// the default list.
fn structure_choice(a: &SetArgs) -> Result<Option<Option<StructureTables>>> {
    if a.no_structure_tables {
        return Ok(Some(Some(StructureTables::none())));
    }
    match a.structure_tables.as_deref().map(str::trim) {
        None => Ok(None),
        Some("default") => Ok(Some(None)),
        Some(list) => Ok(Some(Some(StructureTables::parse(list)?))),
    }
}

/// The structure-only tables in words, for `site show`.
fn structure_text(s: &SiteRecord) -> String {
    match &s.structure_tables {
        None => format!("{} (default)", StructureTables::default().to_list()),
        Some(t) if t.is_empty() => "none (every table is dumped with its rows)".into(),
        Some(t) => t.to_list(),
    }
}

/// Changes a site's database URL, binding files, extra paths or structure-only tables,
/// validated like `site add`.
fn set_fields(ctx: &Ctx, a: &SetArgs, structure: Option<Option<StructureTables>>) -> Result<()> {
    let repo = ctx.open_locked("site set")?;
    let cur = repo.cat.site(&a.uri)?;
    let db = new_db_url(&cur, a)?;
    let bindings = if a.bindings.is_empty() {
        cur.bindings.clone()
    } else {
        absolute(&a.bindings)?
    };
    let extra_paths = if a.extra_paths.is_empty() {
        cur.extra_paths.clone()
    } else {
        a.extra_paths.clone()
    };
    let spec = SiteSpec {
        platform: Some(cur.platform.clone()),
        site_dir: Some(cur.site_dir.clone()),
        db,
        bindings,
        web_root: None,
        extra_paths,
    };
    let mut rec = site::new_site(&a.uri, &spec)?;
    rec.policy = cur.policy;
    rec.structure_tables = structure.unwrap_or(cur.structure_tables);
    let web_root = site::web_root(&repo.cat, &rec, &rec.platform)?;
    rec.extra_paths = site::validate_extra_paths(&repo.cat, &rec, &web_root)?;
    crate::objects::update_site(&repo, &rec)?;
    ctx.summary(format!(
        "changed site {}: database {}, {} binding file(s)",
        a.uri,
        redacted_db(&rec),
        rec.bindings.len()
    ));
    if a.db.is_some() || a.db_password_file.is_some() {
        warn_unready(ctx, &rec);
    }
    Ok(())
}

fn set_policy(ctx: &Ctx, uri: &str, keep: &KeepArgs, clear: bool) -> Result<i32> {
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
    crate::objects::set_policy(&repo, uri, json.as_deref())?;
    ctx.summary(match &policy {
        Some(p) => format!("changed site {uri}: retention policy: {p}"),
        None => format!("changed site {uri}: retention policy removed"),
    });
    Ok(0)
}
