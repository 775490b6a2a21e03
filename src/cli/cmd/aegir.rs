//! `sitesnap import` (an Aegir backup archive) and `sitesnap discover` (an Aegir server's sites).

use crate::aegir::discover::{Found, Problem};
use crate::cli::ERROR_PREFIX;
use crate::cli::args::Ctx;
use crate::cli::output::{print_json, short, snapshot_json};
use crate::error::Error;
use crate::repo::Repo;
use crate::site::{self, SiteSpec};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// An archive `sitesnap export` wrote, or an Aegir backup tarball
    /// (<uri>-YYYYmmdd.HHMMSS.tar.gz)
    pub file: PathBuf,
    /// The site (default: the one the archive names, or from the Aegir backup's file name)
    #[arg(long, value_name = "URI")]
    pub site: Option<String>,
}

/// Arguments of `discover`.
#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// Aegir home folder
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "/var/aegir")]
    pub aegir: Option<PathBuf>,
    /// Register the sites found that are not registered yet; their database credentials are
    /// read from their vhost or drushrc.php at each snapshot and restore, never copied
    #[arg(long)]
    pub add: bool,
    /// Do not connect to each site's database to check that it exists
    #[arg(long)]
    pub no_db_check: bool,
}

/// Imports an Aegir backup as a snapshot.
pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<i32> {
    let repo = ctx.open_locked("import")?;
    let own = a.file.is_file() && crate::archive::is_sitesnap_archive(&a.file)?;
    let s = if own {
        crate::archive::import(&repo, &a.file, a.site.as_deref())?
    } else {
        crate::aegir::import(&repo, &a.file, a.site.as_deref())?
    };
    if ctx.json {
        print_json(&snapshot_json(&s))?;
    }
    if let Some(n) = &s.note {
        ctx.explain(format!("note: {n}"));
    }
    ctx.summary(format!(
        "imported {} as snapshot {} of {}",
        a.file.display(),
        short(&s.id),
        s.site
    ));
    Ok(0)
}

/// Lists the sites of an Aegir server (read-only, with or without a repository), registering
/// the new ones with `--add`.
pub fn discover(ctx: &Ctx, a: DiscoverArgs) -> Result<i32> {
    let home = a
        .aegir
        .ok_or_else(|| Error::Usage("say where to look: discover --aegir [/var/aegir]".into()))?;
    let repo = if a.add {
        Some(ctx.open_locked("discover")?)
    } else if ctx.repo_path.exists() {
        Some(ctx.open()?)
    } else {
        None
    };
    let is_registered = |uri: &str| {
        matches!(
            repo.as_ref().map(|r| r.cat.find_site(uri)),
            Some(Ok(Some(_)))
        )
    };
    let found = crate::aegir::discover::discover(&home, &is_registered, !a.no_db_check)?;
    let added = match &repo {
        Some(r) if a.add => add_found(r, &found),
        _ => Vec::new(),
    };
    if ctx.json {
        print_json(&found)?;
    } else {
        found.iter().for_each(|f| print_found(f, &added));
    }
    if found.is_empty() {
        eprintln!(
            "sitesnap: no Aegir sites found under {}; looked for {}",
            home.display(),
            crate::aegir::discover::looked_in(&home)
        );
    }
    Ok(0)
}

fn print_found(f: &Found, added: &[String]) {
    let note = if f.registered {
        "  (registered)"
    } else if added.contains(&f.uri) {
        "  (added)"
    } else {
        ""
    };
    println!(
        "{:<32} {}  db: {}{note}",
        f.uri,
        f.platform.display(),
        f.db.as_deref().unwrap_or("-")
    );
    for p in &f.problems {
        println!("  warning: {p}");
    }
}

/// Registers the found sites that are not registered yet, their database credentials read
/// from their vhost or drushrc.php at each use; returns the uris added.
fn add_found(repo: &Repo, found: &[Found]) -> Vec<String> {
    let mut added = Vec::new();
    for f in found.iter().filter(|f| !f.registered) {
        if f.problems.contains(&Problem::SiteFolderMissing) {
            eprintln!(
                "sitesnap: {}: not added: its site folder {} is missing",
                f.uri,
                f.platform.join(&f.site_dir).display()
            );
            continue;
        }
        let spec = SiteSpec {
            platform: Some(f.platform.clone()),
            site_dir: Some(f.site_dir.clone()),
            db: f.db_reference(),
            bindings: f.bindings.clone(),
            web_root: Some(f.web_root.clone()),
            extra_paths: Vec::new(),
        };
        match site::register(repo, &f.uri, &spec, None) {
            Ok(_) => added.push(f.uri.clone()),
            Err(e) => eprintln!("{ERROR_PREFIX}{}: not added: {e}", f.uri),
        }
    }
    added
}
