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
    pub platform: Option<PathBuf>,
    pub site_dir: Option<String>,
    pub db: Option<String>,
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

    pub fn database(&self) -> Result<Option<Database>> {
        self.db_url.as_deref().map(Database::parse).transpose()
    }
}

/// Where the site is now: its registered platform if its site directory is there, else any
/// platform sitesnap has seen whose `sites/<uri>` exists; else the registered platform.
pub fn locate(cat: &Catalog, site: &SiteRecord) -> Result<PathBuf> {
    if site.site_path().is_dir() {
        return Ok(site.platform.clone());
    }
    let mut seen: Vec<PathBuf> = cat.sites()?.into_iter().map(|s| s.platform).collect();
    seen.extend(cat.snapshots(None)?.into_iter().map(|s| s.platform_path));
    seen.sort();
    seen.dedup();
    for p in seen {
        if p.join(&site.site_dir).is_dir() {
            return Ok(p);
        }
    }
    Ok(site.platform.clone())
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
}
