//! `sitesnap import` (an Aegir backup archive) and `sitesnap discover` (an Aegir server's sites).

use crate::aegir::Found;
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
    /// The Aegir backup tarball (<uri>-YYYYmmdd.HHMMSS.tar.gz)
    pub file: PathBuf,
    /// The site (default: from the file name)
    #[arg(long, value_name = "URI")]
    pub site: Option<String>,
}

/// Arguments of `discover`.
#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// Aegir home folder
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "/var/aegir")]
    pub aegir: Option<PathBuf>,
    /// Register the sites found that are not registered yet (without a database URL)
    #[arg(long)]
    pub add: bool,
}

/// Imports an Aegir backup as a snapshot.
pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<i32> {
    let repo = ctx.open_locked("import")?;
    let s = crate::aegir::import(&repo, &a.file, a.site.as_deref())?;
    if ctx.json {
        print_json(&snapshot_json(&s))?;
    } else {
        println!(
            "imported {} as snapshot {} of {}",
            a.file.display(),
            short(&s.id),
            s.site
        );
        if let Some(n) = &s.note {
            println!("note: {n}");
        }
    }
    Ok(0)
}

/// Lists the sites of an Aegir server, registering the new ones with `--add`.
pub fn discover(ctx: &Ctx, a: DiscoverArgs) -> Result<i32> {
    let root = a
        .aegir
        .ok_or_else(|| Error::Usage("say where to look: discover --aegir [/var/aegir]".into()))?;
    let repo = if a.add {
        ctx.open_locked("discover")?
    } else {
        ctx.open()?
    };
    let found = crate::aegir::discover(&repo, &root)?;
    let added = if a.add {
        add_found(&repo, &found)
    } else {
        Vec::new()
    };
    if ctx.json {
        print_json(&found)?;
    } else {
        for f in &found {
            let note = if f.registered {
                "  (registered)"
            } else if added.contains(&f.uri) {
                "  (added; give it --db with `site set`)"
            } else {
                ""
            };
            println!("{:<32} {}{note}", f.uri, f.platform.display());
        }
    }
    Ok(0)
}

/// Registers the found sites that are not registered yet; returns the uris added.
fn add_found(repo: &Repo, found: &[Found]) -> Vec<String> {
    let mut added = Vec::new();
    for f in found.iter().filter(|f| !f.registered) {
        let spec = SiteSpec {
            platform: Some(f.platform.clone()),
            site_dir: None,
            db: None,
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
