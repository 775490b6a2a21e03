//! Sites: registering one (validating its URI, platform, site directory, database URL and
//! binding files) and finding where it is now. A site's URI is its identity; its site directory
//! is always inside its platform. This module never touches snapshot data.

use crate::catalog::{Catalog, SiteRecord, SnapshotRecord};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::tree::PlatformFilter;
use crate::webroot;
use std::path::{Path, PathBuf};

/// Checks a site URI: a host name (letters, digits, `.`, `-`, `_`), no `/`, no `..`.
pub fn validate_uri(uri: &str) -> Result<()> {
    if uri.is_empty() || uri.len() > 253 {
        return Err(Error::Invalid(format!(
            "site URI '{uri}' is empty or too long"
        )));
    }
    if uri.contains("..") || uri.starts_with('.') || uri.starts_with('-') {
        return Err(Error::Invalid(format!(
            "site URI '{uri}' is not a host name ('..' or a leading '.'/'-' is not allowed)"
        )));
    }
    if let Some(c) = uri
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(Error::Invalid(format!(
            "site URI '{uri}' contains '{c}' (only letters, digits, '.', '-' and '_')"
        )));
    }
    Ok(())
}

/// Checks a platform folder: not `/`, and not a folder that holds the repository `repo`
/// (a restore or snapshot of it would reach into the repository).
pub fn check_platform(platform: &Path, repo: &Path) -> Result<()> {
    if platform.parent().is_none() {
        return Err(Error::Invalid(format!(
            "platform '{}' is the root folder, not a platform",
            platform.display()
        )));
    }
    let repo = std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_path_buf());
    let plat = std::fs::canonicalize(platform).unwrap_or_else(|_| platform.to_path_buf());
    if repo.starts_with(&plat) {
        return Err(Error::Invalid(format!(
            "platform {} holds the repository {}: refused",
            platform.display(),
            repo.display()
        )));
    }
    Ok(())
}

/// Absolute, symlink-free form of an existing platform folder.
pub fn canonical_platform(p: &Path) -> Result<PathBuf> {
    if !p.is_dir() {
        return Err(Error::Invalid(format!(
            "platform {} does not exist or is not a folder",
            p.display()
        )));
    }
    std::fs::canonicalize(p).map_err(|e| Error::io(p, e))
}

/// Options of `site add` / `site set`.
#[derive(Debug, Default, Clone)]
pub struct SiteSpec {
    /// The platform folder (`--platform`).
    pub platform: Option<PathBuf>,
    /// The site folder, relative to the platform (`--site-dir`).
    pub site_dir: Option<String>,
    /// The database URL (`--db`).
    pub db: Option<String>,
    /// Binding files (`--binding`).
    pub bindings: Vec<PathBuf>,
    /// The platform's web root, relative to it (`--web-root`; guessed when not given).
    pub web_root: Option<String>,
    /// Paths owned by the site outside its site folder, relative to the platform
    /// (`--extra-path`).
    pub extra_paths: Vec<String>,
}

/// Checks a site folder (relative to its platform) and returns it normalized (`./` parts and
/// trailing `/` dropped). Accepts `sites/<name>` and `<web root>/sites/<name>` (and other
/// folders inside the platform); refuses an empty path, `.`, `/`, anything leaving the platform,
/// the web root or a folder holding it, `sites`, `sites/all`, `sites/default` and anything
/// inside those two shared folders, with or without the web root in front.
pub fn validate_site_dir(site_dir: &str, web_root: Option<&str>) -> Result<String> {
    let trimmed = site_dir.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(Error::Invalid(format!(
            "site directory '{site_dir}' is the platform root: a site needs its own folder"
        )));
    }
    fsutil::check_relative(trimmed, "site directory")?;
    let norm: Vec<String> = Path::new(trimmed)
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let norm = norm.join("/");
    let refuse = |why: &str| {
        Err(Error::Invalid(format!(
            "site directory '{site_dir}' {why}: a site needs its own folder such as sites/<uri>"
        )))
    };
    if norm.is_empty() {
        return refuse("is the platform root");
    }
    let wr = web_root.unwrap_or("").trim_matches('/');
    let mut roots = vec![String::new()];
    if !wr.is_empty() {
        roots.push(format!("{wr}/"));
        if Path::new(wr).starts_with(&norm) {
            return refuse("holds the platform's web root");
        }
    }
    for r in &roots {
        if norm == format!("{r}sites") {
            return refuse("is the folder of all sites");
        }
        for shared in ["all", "default"] {
            let sh = format!("{r}sites/{shared}");
            if norm == sh || norm.starts_with(&format!("{sh}/")) {
                return refuse(&format!("is shared by every site ({sh})"));
            }
        }
    }
    Ok(norm)
}

/// Checks a site's own folder: what [`validate_site_dir`] allows, and also exactly
/// `sites/<name>` (or `<web root>/sites/<name>`), one folder deep, where `<name>` is a valid
/// site URI. The one place this rule lives, for registration and before a restore. Returns the
/// normalised path.
pub fn validate_site_folder(site_dir: &str, web_root: Option<&str>) -> Result<String> {
    let norm = validate_site_dir(site_dir, web_root)?;
    let wr = web_root.unwrap_or("").trim_matches('/');
    let bad = |why: String| {
        Error::Invalid(format!(
            "site directory '{site_dir}' {why} (a site folder is sites/<name>)"
        ))
    };
    let under = [String::new(), format!("{wr}/")]
        .into_iter()
        .filter(|r| r.is_empty() || !wr.is_empty())
        .find_map(|r| norm.strip_prefix(&format!("{r}sites/")).map(str::to_string));
    match under {
        Some(name) if !name.contains('/') => validate_uri(&name)
            .map(|_| norm.clone())
            .map_err(|e| bad(format!("is not a site name: {e}"))),
        _ => Err(bad("is not a site's own folder".into())),
    }
}

/// Builds and validates a new site record.
pub fn new_site(uri: &str, spec: &SiteSpec) -> Result<SiteRecord> {
    validate_uri(uri)?;
    let platform = spec
        .platform
        .as_deref()
        .ok_or_else(|| Error::Usage("site add needs --platform <path>".into()))?;
    let platform = canonical_platform(platform)?;
    let web_root = spec_web_root(&platform, spec)?;
    let site_dir = match &spec.site_dir {
        Some(d) => d.clone(),
        None if web_root.is_empty() => format!("sites/{uri}"),
        None => format!("{web_root}/sites/{uri}"),
    };
    let site_dir = validate_site_folder(&site_dir, Some(&web_root))?;
    // Also when it does not exist yet: an existing ancestor may be a symlink leading out.
    fsutil::check_inside(&platform, &platform.join(&site_dir))?;
    let mut bindings = Vec::new();
    for b in &spec.bindings {
        if !b.is_absolute() {
            return Err(Error::Invalid(format!(
                "binding file '{}' must be an absolute path",
                b.display()
            )));
        }
        fsutil::check_relative(
            b.to_string_lossy().trim_start_matches('/'),
            "binding file path",
        )?;
        if !b.is_file() {
            return Err(Error::Invalid(format!(
                "binding file {} does not exist or is not a regular file",
                b.display()
            )));
        }
        bindings.push(b.clone());
    }
    if let Some(url) = &spec.db {
        Database::resolve(url)?;
    }
    Ok(SiteRecord {
        uri: uri.to_string(),
        platform,
        site_dir,
        db_url: spec.db.clone(),
        bindings,
        policy: None,
        extra_paths: spec.extra_paths.clone(),
        structure_tables: None,
    })
}

/// The web root `site add` uses on `platform` (canonical): the explicit one; else the one the
/// site folder implies (`<web root>/sites/<name>`); else the `root` of a vhost or drush alias
/// among the binding files, when inside the platform; else guessed from the platform's files.
pub fn spec_web_root(platform: &Path, spec: &SiteSpec) -> Result<String> {
    if let Some(w) = &spec.web_root {
        return check_web_root(platform, w);
    }
    if let Some(w) = spec.site_dir.as_deref().and_then(webroot::from_site_dir) {
        return Ok(w);
    }
    Ok(served_web_root(platform, &spec.bindings).unwrap_or_else(|| webroot::detect(platform)))
}

/// The web root a vhost `root` (or else a drush alias `root`) among `bindings` names, when it
/// lies inside `platform`.
fn served_web_root(platform: &Path, bindings: &[PathBuf]) -> Option<String> {
    let texts: Vec<String> = bindings
        .iter()
        .filter_map(|b| std::fs::read_to_string(b).ok())
        .collect();
    let vhost = texts.iter().filter_map(|t| webroot::vhost_root(t));
    let alias = texts.iter().filter_map(|t| alias_root(t));
    vhost
        .chain(alias)
        .find_map(|r| webroot::relative_to(platform, &r))
}

/// Validates and registers a new site (see [`new_site`]) with its retention policy (JSON):
/// its extra paths are checked against the other sites, and its platform's web root is stored
/// (an explicit `--web-root` replaces the stored one; otherwise a platform seen for the first
/// time keeps the web root its site folder implies or its files suggest).
pub fn register(
    repo: &crate::repo::Repo,
    uri: &str,
    spec: &SiteSpec,
    policy: Option<String>,
) -> Result<SiteRecord> {
    let cat = &repo.cat;
    if cat.find_site(uri)?.is_some() {
        return Err(Error::Invalid(format!(
            "site '{uri}' is already registered"
        )));
    }
    let mut spec = spec.clone();
    if spec.web_root.is_none() {
        let platform = spec
            .platform
            .as_deref()
            .map(canonical_platform)
            .transpose()?;
        if let Some(p) = platform {
            spec.web_root = cat.platform_web_root(&p)?;
        }
    }
    let mut rec = new_site(uri, &spec)?;
    check_platform(&rec.platform, &repo.root)?;
    rec.policy = policy;
    let web_root = spec_web_root(&rec.platform, &spec)?;
    rec.extra_paths = validate_extra_paths(cat, &rec, &web_root)?;
    cat.set_platform_web_root(&rec.platform, &web_root)?;
    crate::objects::add_site(repo, &rec)?;
    Ok(rec)
}

/// Checks an explicit web root (relative to the platform, inside it) and returns it
/// normalized (`.` and `""` are the platform root).
pub fn check_web_root(platform: &Path, web_root: &str) -> Result<String> {
    let w = web_root.trim_matches('/');
    if w.is_empty() || w == "." {
        return Ok(String::new());
    }
    fsutil::check_relative(w, "web root")?;
    fsutil::check_inside(platform, &platform.join(w))?;
    Ok(w.trim_start_matches("./").to_string())
}

impl SiteRecord {
    /// The site directory on its registered platform.
    pub fn site_path(&self) -> PathBuf {
        self.platform.join(&self.site_dir)
    }

    /// The site's database as registered (on its registered platform).
    pub fn database(&self) -> Result<Option<Database>> {
        self.db_url.as_deref().map(Database::resolve).transpose()
    }

    /// Whether its database credentials are read from a file at each use (`aegir:///<file>`)
    /// rather than stored: such a URL is never rewritten when the site moves.
    pub fn credentials_by_reference(&self) -> bool {
        self.db_url
            .as_deref()
            .is_some_and(|u| crate::db::aegir::reference(u).is_some())
    }

    /// The site's database when the site sits on `platform`: an SQLite file inside the site
    /// directory moves with the directory, so its path is rebased onto that platform.
    pub fn database_at(&self, platform: &Path) -> Result<Option<Database>> {
        Ok(self
            .database()?
            .map(|d| rebase_db(d, &self.site_path(), &platform.join(&self.site_dir))))
    }

    /// The SQLite file's path relative to the site directory, if it lies inside it.
    pub fn sqlite_in_site_dir(&self) -> Result<Option<PathBuf>> {
        Ok(match self.database()? {
            Some(Database::Sqlite(p)) => {
                p.strip_prefix(self.site_path()).ok().map(Path::to_path_buf)
            }
            _ => None,
        })
    }
}

/// Moves an SQLite path from one site directory to another (other databases are unchanged).
pub fn rebase_db(d: Database, from_site_dir: &Path, to_site_dir: &Path) -> Database {
    match d {
        Database::Sqlite(p) => match p.strip_prefix(from_site_dir) {
            Ok(rel) => Database::Sqlite(to_site_dir.join(rel)),
            Err(_) => Database::Sqlite(p),
        },
        other => other,
    }
}

/// Where the site is now. In order: its registered platform if its site directory is there;
/// the platform root named by a drush alias among its binding files (`'root' => '...'`); any
/// platform sitesnap has seen (registered or in a snapshot); any folder beside the registered
/// platform (Aegir keeps all platforms in one folder). If none holds the site directory, the
/// registered platform.
pub fn locate(cat: &Catalog, site: &SiteRecord) -> Result<PathBuf> {
    if site.site_path().is_dir() {
        return Ok(site.platform.clone());
    }
    let mut candidates: Vec<PathBuf> = site
        .bindings
        .iter()
        .filter_map(|b| std::fs::read_to_string(b).ok())
        .filter_map(|text| alias_root(&text))
        .flat_map(|r| [webroot::split_served_root(&r).0, r])
        .collect();
    let mut seen: Vec<PathBuf> = cat.sites()?.into_iter().map(|s| s.platform).collect();
    seen.extend(
        cat.snapshots(Some(&site.uri))?
            .into_iter()
            .map(|s| s.platform_path),
    );
    seen.sort();
    seen.dedup();
    candidates.extend(seen);
    if let Some(parent) = site.platform.parent()
        && let Ok(rd) = std::fs::read_dir(parent)
    {
        let mut siblings: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        siblings.sort();
        candidates.extend(siblings);
    }
    for p in candidates {
        if p.is_absolute() && p.join(&site.site_dir).is_dir() {
            return Ok(p);
        }
    }
    Ok(site.platform.clone())
}

/// The platform root a drush alias file names: `'root' => '/path'`.
pub fn alias_root(text: &str) -> Option<PathBuf> {
    let i = text.find("'root'")?;
    let rest = &text[i + 6..];
    let rest = rest.trim_start().strip_prefix("=>")?.trim_start();
    let q = rest.chars().next()?;
    if q != '\'' && q != '"' {
        return None;
    }
    let end = rest[1..].find(q)?;
    Some(PathBuf::from(&rest[1..1 + end]))
}

/// The web root of `site`'s platform `platform`, relative to it (`""`: the platform root). In
/// order: stored for the platform in the catalogue; implied by the site folder
/// (`<web root>/sites/<name>`); the `root` of a vhost or drush alias among the site's binding
/// files, when it lies inside the platform; guessed from the platform's files.
pub fn web_root(cat: &Catalog, site: &SiteRecord, platform: &Path) -> Result<String> {
    if let Some(w) = cat.platform_web_root(platform)? {
        return Ok(w);
    }
    if let Some(w) = webroot::from_site_dir(&site.site_dir) {
        return Ok(w);
    }
    Ok(served_web_root(platform, &site.bindings).unwrap_or_else(|| webroot::detect(platform)))
}

/// The platform filter for `platform` with web root `web_root`: it also leaves out the extra
/// paths of every site registered on that platform, and `also` (a snapshot's extra paths).
pub fn platform_filter(
    cat: &Catalog,
    platform: &Path,
    web_root: &str,
    also: &[String],
) -> Result<PlatformFilter> {
    let mut extra: Vec<String> = cat
        .sites()?
        .into_iter()
        .filter(|s| s.platform == platform)
        .flat_map(|s| s.extra_paths)
        .collect();
    extra.extend(also.iter().cloned());
    Ok(PlatformFilter::new(web_root).with_extra(extra))
}

/// The platform filter a snapshot's platform tree is compared with on `platform` (drift,
/// repair, diff, recreation): the snapshot's web root (for a snapshot older than recorded web
/// roots, the site's web root there now), the extra paths of the sites registered on that
/// platform and the snapshot's own extra paths.
pub fn snapshot_filter(
    cat: &Catalog,
    snap: &SnapshotRecord,
    platform: &Path,
) -> Result<PlatformFilter> {
    let web_root = match &snap.web_root {
        Some(w) => w.clone(),
        None => match cat.find_site(&snap.site)? {
            Some(s) => web_root(cat, &s, platform)?,
            None => webroot::from_site_dir(&snap.site_dir).unwrap_or_default(),
        },
    };
    platform_filter(cat, platform, &web_root, &snap.extra_paths)
}

/// Code folders of a Drupal platform (relative to its web root) that no site may own.
const SHARED_CODE: [&str; 9] = [
    "core",
    "modules",
    "themes",
    "profiles",
    "libraries",
    "includes",
    "misc",
    "scripts",
    "sites",
];

/// Checks `site`'s extra paths (relative to its platform) and returns them normalized. Each
/// must stay inside the platform (no `..`, no symlink leading out), must not be shared (the
/// platform root, the web root or a folder holding it, `vendor/`, the web root's code folders
/// such as `core/` or `sites/`, or anything inside them), must not overlap the site's own
/// folder, and must not be another registered site's folder or extra path.
pub fn validate_extra_paths(
    cat: &Catalog,
    site: &SiteRecord,
    web_root: &str,
) -> Result<Vec<String>> {
    let others: Vec<SiteRecord> = cat
        .sites()?
        .into_iter()
        .filter(|s| s.uri != site.uri && s.platform == site.platform)
        .collect();
    let mut out = Vec::new();
    for x in &site.extra_paths {
        let refuse = |why: String| Error::Invalid(format!("extra path '{x}' {why}"));
        let p = validate_site_dir(x, Some(web_root)).map_err(|_| {
            refuse("is the platform root, a shared folder or leaves the platform".into())
        })?;
        let pp = Path::new(&p);
        let wr = Path::new(web_root);
        let own = Path::new(&site.site_dir);
        if pp.starts_with(own) || own.starts_with(pp) {
            return Err(refuse(format!(
                "overlaps the site folder {}",
                site.site_dir
            )));
        }
        for o in &others {
            let theirs = std::iter::once(&o.site_dir).chain(&o.extra_paths);
            if let Some(t) = theirs
                .map(Path::new)
                .find(|t| pp.starts_with(t) || t.starts_with(pp))
            {
                return Err(refuse(format!(
                    "belongs to site '{}' ({})",
                    o.uri,
                    t.display()
                )));
            }
        }
        let mut shared: Vec<PathBuf> = SHARED_CODE.iter().map(|c| wr.join(c)).collect();
        shared.push(PathBuf::from("vendor"));
        if wr.starts_with(pp)
            || shared
                .iter()
                .any(|c| pp.starts_with(c) || c.starts_with(pp))
        {
            return Err(refuse(
                "is shared platform code (or holds it), not the site's own".into(),
            ));
        }
        if !web_root.is_empty() && pp.starts_with(wr) {
            return Err(refuse(
                "lies in the web root, which is platform code".into(),
            ));
        }
        fsutil::check_inside(&site.platform, &site.platform.join(&p))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert!(validate_uri("example.com").is_ok());
        assert!(validate_uri("a-b_c.example.org").is_ok());
        assert!(validate_uri("../etc").is_err());
        assert!(validate_uri("a/b").is_err());
        assert!(validate_uri("").is_err());
        assert!(validate_uri(".hidden").is_err());
    }

    #[test]
    fn drush_alias_root() {
        let t = "<?php\n$aliases['a'] = array('uri' => 'a', 'root' => '/var/aegir/platforms/d7', 'site_path' => 'x');";
        assert_eq!(
            alias_root(t),
            Some(PathBuf::from("/var/aegir/platforms/d7"))
        );
        assert_eq!(alias_root("no alias"), None);
    }
}
