//! Sites: registering one (validating its URI, platform, site directory, database URL and
//! binding files) and finding where it is now. A site's URI is its identity; its site directory
//! is always inside its platform. This module never touches snapshot data.

use crate::catalog::{Catalog, SiteRecord};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::fsutil;
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
}

/// Builds and validates a new site record.
pub fn new_site(uri: &str, spec: &SiteSpec) -> Result<SiteRecord> {
    validate_uri(uri)?;
    let platform = spec
        .platform
        .as_deref()
        .ok_or_else(|| Error::Usage("site add needs --platform <path>".into()))?;
    let platform = canonical_platform(platform)?;
    let site_dir = spec
        .site_dir
        .clone()
        .unwrap_or_else(|| format!("sites/{uri}"));
    let site_dir = site_dir.trim_end_matches('/').to_string();
    fsutil::check_relative(&site_dir, "site directory")?;
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
        Database::parse(url)?;
    }
    Ok(SiteRecord {
        uri: uri.to_string(),
        platform,
        site_dir,
        db_url: spec.db.clone(),
        bindings,
        policy: None,
    })
}

impl SiteRecord {
    /// The site directory on its registered platform.
    pub fn site_path(&self) -> PathBuf {
        self.platform.join(&self.site_dir)
    }

    /// The site's database as registered (on its registered platform).
    pub fn database(&self) -> Result<Option<Database>> {
        self.db_url.as_deref().map(Database::parse).transpose()
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
