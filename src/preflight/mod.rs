//! Migrate preflight: before a Drupal site moves to another platform, check that every module
//! and theme enabled in its database is on the target platform where Drupal looks for it. Read
//! only: it reads the site's database (Drupal 7's `system` table) and both platforms' files.
//!
//! Drupal 7 searches core `modules/`/`themes/`, `profiles/<profile>/`, `sites/all/` and
//! `sites/<uri>/`, a later folder overriding an earlier one. An enabled extension the target
//! lacks breaks the site ("Call to undefined function"); one whose path changes needs a registry
//! rebuild; code in `sites/<uri>/modules|themes` moves with the site and is never upgraded (the
//! Aegir field report's first recipe for disaster); a core jump combined with contrib changes is
//! better split in two migrations.

use crate::catalog::SiteRecord;
use crate::db::Database;
use crate::error::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

mod d8;

/// What kind of extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtensionKind {
    Module,
    Theme,
}

impl ExtensionKind {
    fn folder(self) -> &'static str {
        match self {
            ExtensionKind::Module => "modules",
            ExtensionKind::Theme => "themes",
        }
    }

    /// The file name Drupal 7 finds it by.
    fn file_name(self, name: &str) -> String {
        match self {
            ExtensionKind::Module => format!("{name}.module"),
            ExtensionKind::Theme => format!("{name}.info"),
        }
    }
}

/// An enabled extension as the site's database records it.
#[derive(Debug, Clone, Serialize)]
pub struct Extension {
    pub name: String,
    pub kind: ExtensionKind,
    /// Its file, relative to the web root (`sites/all/modules/views/views.module`).
    pub path: String,
}

/// One thing the preflight found.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "finding", rename_all = "kebab-case")]
pub enum Finding {
    /// Enabled on the site, absent from the target platform: the site would break.
    Missing { extension: Extension },
    /// On the target at another path: a registry rebuild is needed after the move.
    Moved { extension: Extension, to: String },
    /// Code in the site's own folder, which moves with it and is never upgraded.
    SiteCode { path: String },
    /// A core version change combined with contrib version changes.
    SplitUpgrade {
        from_core: String,
        to_core: String,
        changed: Vec<String>,
    },
    /// The site's database has no extension list (not Drupal, or unreadable).
    NoExtensionList { why: String },
}

impl Finding {
    /// Whether it stops a migration (unless forced).
    pub fn blocks(&self) -> bool {
        matches!(self, Finding::Missing { .. })
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Missing { extension: e } => write!(
                f,
                "{} '{}' is enabled but missing on the target platform (was {}): the site would fail with \"Call to undefined function\"",
                kind_name(e.kind),
                e.name,
                e.path
            ),
            Finding::Moved { extension: e, to } => write!(
                f,
                "{} '{}' moves from {} to {}: rebuild the registry after the migration (drush rr)",
                kind_name(e.kind),
                e.name,
                e.path,
                to
            ),
            Finding::SiteCode { path } => write!(
                f,
                "code in {path}: it moves with the site and is never upgraded; keep it in sites/all or profiles/<profile> on the platform instead"
            ),
            Finding::SplitUpgrade {
                from_core,
                to_core,
                changed,
            } => write!(
                f,
                "core {from_core} -> {to_core} together with contrib changes ({}): split the upgrade, core first with the same contrib versions, then contrib",
                changed.join(", ")
            ),
            Finding::NoExtensionList { why } => {
                write!(
                    f,
                    "no Drupal extension list in the database ({why}); nothing checked"
                )
            }
        }
    }
}

fn kind_name(k: ExtensionKind) -> &'static str {
    match k {
        ExtensionKind::Module => "module",
        ExtensionKind::Theme => "theme",
    }
}

/// The report for one site and target platform.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub site: String,
    pub from: PathBuf,
    pub to: PathBuf,
    /// How many enabled extensions were checked.
    pub enabled: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether a finding stops a migration.
    pub fn blocks(&self) -> bool {
        self.findings.iter().any(Finding::blocks)
    }
}

/// The enabled modules and themes in a Drupal 7 database (`system` table, `status = 1`).
pub fn enabled_extensions(db: &Database) -> Result<Vec<Extension>> {
    let rows = db.query_rows(
        "SELECT name, type, filename FROM system WHERE status = 1 AND type IN ('module', 'theme') ORDER BY type, name",
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let kind = match r.get(1)?.as_str() {
                "module" => ExtensionKind::Module,
                "theme" => ExtensionKind::Theme,
                _ => return None,
            };
            Some(Extension {
                name: r.first()?.clone(),
                kind,
                path: r.get(2)?.clone(),
            })
        })
        .collect())
}

/// The install profile an extension list implies (`profiles/<p>/<p>.profile`).
fn profile_of(exts: &[Extension]) -> Option<String> {
    exts.iter().find_map(|e| {
        let rest = e.path.strip_prefix("profiles/")?;
        let (p, file) = rest.split_once('/')?;
        (file == format!("{p}.profile")).then(|| p.to_string())
    })
}

/// Where Drupal 7 finds each extension file under `web` (file name -> path relative to `web`),
/// later search folders overriding earlier ones. `site_folder` (relative to `web`) is searched
/// last, at `site_src` (the folder as it is now, which moves with the site).
fn index(
    web: &Path,
    kind: ExtensionKind,
    profile: Option<&str>,
    site_folder: &str,
    site_src: &Path,
) -> BTreeMap<String, String> {
    let f = kind.folder();
    let mut dirs: Vec<(PathBuf, String)> = vec![(web.join(f), f.to_string())];
    if let Some(p) = profile {
        let rel = format!("profiles/{p}/{f}");
        dirs.push((web.join(&rel), rel));
    }
    dirs.push((web.join("sites/all").join(f), format!("sites/all/{f}")));
    dirs.push((site_src.join(f), format!("{site_folder}/{f}")));
    let mut out = BTreeMap::new();
    for (dir, rel) in dirs {
        for e in walkdir::WalkDir::new(&dir).into_iter().flatten() {
            if !e.file_type().is_file() {
                continue;
            }
            let Ok(sub) = e.path().strip_prefix(&dir) else {
                continue;
            };
            let name = e.file_name().to_string_lossy().into_owned();
            out.insert(name, format!("{rel}/{}", sub.display()));
        }
    }
    out
}

/// The `version = "..."` line of an extension's `.info` file next to `file` (under `web`).
fn info_version(web: &Path, file: &str, name: &str) -> Option<String> {
    let dir = web.join(file);
    let info = dir.parent()?.join(format!("{name}.info"));
    let text = fs::read_to_string(info).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "version").then(|| v.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

/// The core version (`modules/system/system.info`), major.minor.
fn core_version(web: &Path) -> Option<String> {
    info_version(web, "modules/system/system.module", "system")
}

/// Checks `site` (its database and site folder where it is now, on `from`) against the target
/// platform `to`, whose web root is `to_web` (relative).
pub fn check(site: &SiteRecord, from: &Path, to: &Path, to_web: &str) -> Result<Report> {
    let mut report = Report {
        site: site.uri.clone(),
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        enabled: 0,
        findings: Vec::new(),
    };
    let site_src = from.join(&site.site_dir);
    // The site folder relative to the web root, as Drupal names it (`sites/<uri>`).
    let site_folder = match site.site_dir.find("sites/") {
        Some(i) => site.site_dir[i..].to_string(),
        None => site.site_dir.clone(),
    };
    let from_web = from.join(site.site_dir.strip_suffix(&site_folder).unwrap_or(""));
    site_code(&site_src, &site_folder, &mut report.findings);
    let db = match site.database_at(from) {
        Ok(d) => d,
        Err(e) => {
            report
                .findings
                .push(Finding::NoExtensionList { why: e.to_string() });
            return Ok(report);
        }
    };
    if let Some(d8) = db.as_ref().and_then(|d| d8::enabled(d).ok()) {
        let web = to.join(to_web);
        report.enabled = d8.extensions.len();
        d8::check(&d8, &web, &site_src, &mut report.findings);
        return Ok(report);
    }
    let exts = match db.map(|d| enabled_extensions(&d)).unwrap_or(Ok(Vec::new())) {
        Ok(e) if e.is_empty() => {
            report.findings.push(Finding::NoExtensionList {
                why: "no database or no enabled extension".into(),
            });
            return Ok(report);
        }
        Ok(e) => e,
        Err(e) => {
            let why = e.to_string();
            let why = why.lines().next().unwrap_or("").to_string();
            report.findings.push(Finding::NoExtensionList { why });
            return Ok(report);
        }
    };
    report.enabled = exts.len();
    let web = to.join(to_web);
    let places = Places {
        web: &web,
        from_web: &from_web,
        site_folder: &site_folder,
        site_src: &site_src,
    };
    let changed = locate_d7(&exts, &places, &mut report.findings);
    split_advice(&from_web, &web, changed, &mut report.findings);
    Ok(report)
}

/// Where a Drupal 7 preflight looks: the target's web root, the source's, the site folder.
struct Places<'a> {
    web: &'a Path,
    from_web: &'a Path,
    site_folder: &'a str,
    site_src: &'a Path,
}

/// Finds each enabled Drupal 7 extension on the target platform: missing and moved ones go to
/// `findings`; returns the contrib extensions whose version changes.
fn locate_d7(exts: &[Extension], at: &Places, findings: &mut Vec<Finding>) -> Vec<String> {
    let (web, from_web) = (at.web, at.from_web);
    let profile = profile_of(exts);
    let mut changed = Vec::new();
    for kind in [ExtensionKind::Module, ExtensionKind::Theme] {
        let idx = index(web, kind, profile.as_deref(), at.site_folder, at.site_src);
        for e in exts.iter().filter(|e| e.kind == kind) {
            if e.path.ends_with(".profile") {
                let p = format!("profiles/{n}/{n}.profile", n = e.name);
                if !web.join(&p).is_file() {
                    findings.push(Finding::Missing {
                        extension: e.clone(),
                    });
                }
                continue;
            }
            match idx.get(&kind.file_name(&e.name)) {
                None => findings.push(Finding::Missing {
                    extension: e.clone(),
                }),
                Some(p) if *p != e.path => findings.push(Finding::Moved {
                    extension: e.clone(),
                    to: p.clone(),
                }),
                Some(_) => {}
            }
            let contrib = e.path.starts_with("sites/all/") || e.path.starts_with("profiles/");
            if let (true, Some(p)) = (contrib, idx.get(&kind.file_name(&e.name)))
                && info_version(from_web, &e.path, &e.name) != info_version(web, p, &e.name)
            {
                changed.push(e.name.clone());
            }
        }
    }
    changed
}

/// Code in `sites/<uri>/modules|themes`.
fn site_code(site_src: &Path, site_folder: &str, out: &mut Vec<Finding>) {
    for f in ["modules", "themes"] {
        let d = site_src.join(f);
        let has_code = walkdir::WalkDir::new(&d)
            .into_iter()
            .flatten()
            .any(|e| e.file_type().is_file());
        if has_code {
            out.push(Finding::SiteCode {
                path: format!("{site_folder}/{f}"),
            });
        }
    }
}

/// A core major.minor change together with contrib version changes.
fn split_advice(from_web: &Path, to_web: &Path, changed: Vec<String>, out: &mut Vec<Finding>) {
    let (Some(a), Some(b)) = (core_version(from_web), core_version(to_web)) else {
        return;
    };
    if a != b && !changed.is_empty() {
        out.push(Finding::SplitUpgrade {
            from_core: a,
            to_core: b,
            changed,
        });
    }
}
