//! Discovering an Aegir server's sites, read-only: each drush alias with a `site_path`
//! (`<home>/.drush/*.alias.drushrc.php`; platform and server aliases have none) is a site named
//! by its `'uri'`, on the platform its `'root'` names. Its vhosts
//! (`<home>/config/<server>/{nginx,apache}/vhost.d/<uri>`) are its binding files, and the first
//! of its vhosts or its `sites/<uri>/drushrc.php` holding `db_*` credentials is where its
//! database credentials are read from at each use (never copied).

use crate::db::{self, Database};
use crate::error::{Error, Result};
use crate::webroot;
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// Something wrong with a discovered site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// Its site folder is not on disk.
    SiteFolderMissing,
    /// Neither its vhosts nor its drushrc.php hold database credentials.
    NoDatabaseCredentials,
    /// Its credentials do not reach a database (why).
    DatabaseUnreachable(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::SiteFolderMissing => f.write_str("site folder missing"),
            Problem::NoDatabaseCredentials => f.write_str("no database credentials found"),
            Problem::DatabaseUnreachable(why) => write!(f, "database missing: {why}"),
        }
    }
}

/// A site found on an Aegir server.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The site's URI (the alias's `'uri'`).
    pub uri: String,
    /// The drush alias it was found in.
    pub alias: PathBuf,
    /// The platform it is on.
    pub platform: PathBuf,
    /// The platform's web root, relative to it (`""`: the platform root).
    pub web_root: String,
    /// The site folder, relative to the platform.
    pub site_dir: String,
    /// Its binding files (drush alias, vhosts).
    pub bindings: Vec<PathBuf>,
    /// The file its database credentials are read from.
    pub credentials: Option<PathBuf>,
    /// Its database (redacted).
    pub db: Option<String>,
    /// What is wrong with it.
    pub problems: Vec<Problem>,
    /// Already registered with sitesnap.
    pub registered: bool,
}

impl Found {
    /// The database URL to register: a reference to the credentials file.
    pub fn db_reference(&self) -> Option<String> {
        self.credentials.as_deref().map(db::aegir::reference_to)
    }
}

/// The value of `'key' => '...'` in PHP array text.
pub fn php_value(text: &str, key: &str) -> Option<String> {
    let i = text.find(&format!("'{key}'"))?;
    let rest = text[i + key.len() + 2..]
        .trim_start()
        .strip_prefix("=>")?
        .trim_start();
    let q = rest.chars().next()?;
    if q != '\'' && q != '"' {
        return None;
    }
    let end = rest[1..].find(q)?;
    Some(rest[1..1 + end].to_string())
}

/// Where discovery looks under `home`, for messages.
pub fn looked_in(home: &Path) -> String {
    format!(
        "drush aliases with a 'site_path' in {}/*.alias.drushrc.php, vhosts in {}/*/{{nginx,apache}}/vhost.d",
        home.join(".drush").display(),
        home.join("config").display()
    )
}

/// The vhosts of `uri` under `<home>/config/<server>/{nginx,apache}/vhost.d/`, sorted.
fn vhosts(home: &Path, uri: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(home.join("config")) else {
        return Vec::new();
    };
    let mut servers: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    servers.sort();
    let mut out = Vec::new();
    for s in servers {
        for kind in ["nginx", "apache"] {
            let v = s.join(kind).join("vhost.d").join(uri);
            if v.is_file() {
                out.push(v);
            }
        }
    }
    out
}

/// The alias files under `<home>/.drush`, sorted.
fn alias_files(home: &Path) -> Result<Vec<PathBuf>> {
    let drush = home.join(".drush");
    let rd = fs::read_dir(&drush).map_err(|e| {
        Error::Invalid(format!(
            "{}: {e} (is {} an Aegir home?)",
            drush.display(),
            home.display()
        ))
    })?;
    let mut names: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".alias.drushrc.php"))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Finds the sites of the Aegir server whose home is `home`. `registered` says whether a URI
/// is registered already; `check_db` connects to each database to flag missing ones.
pub fn discover(
    home: &Path,
    registered: &dyn Fn(&str) -> bool,
    check_db: bool,
) -> Result<Vec<Found>> {
    let mut out: Vec<Found> = Vec::new();
    for alias in alias_files(home)? {
        let Ok(text) = fs::read_to_string(&alias) else {
            continue;
        };
        let Some(mut f) = site_of_alias(home, &alias, &text) else {
            continue;
        };
        if out.iter().any(|o| o.uri == f.uri) {
            continue;
        }
        f.registered = registered(&f.uri);
        check(&mut f, check_db);
        out.push(f);
    }
    out.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(out)
}

/// The site an alias file describes (None for platform and server aliases).
fn site_of_alias(home: &Path, alias: &Path, text: &str) -> Option<Found> {
    let site_path = PathBuf::from(php_value(text, "site_path")?);
    let name = alias
        .file_name()?
        .to_str()?
        .strip_suffix(".alias.drushrc.php")?;
    let uri = php_value(text, "uri").unwrap_or_else(|| name.to_string());
    crate::site::validate_uri(&uri).ok()?;
    let served = PathBuf::from(php_value(text, "root")?);
    let (platform, mut web_root) = webroot::split_served_root(&served);
    let mut bindings = vec![alias.to_path_buf()];
    let vh = vhosts(home, &uri);
    for v in &vh {
        // The vhost's root is the web root (Aegir's publish path).
        if let Some(w) = fs::read_to_string(v)
            .ok()
            .and_then(|t| webroot::vhost_root(&t))
            .and_then(|r| webroot::relative_to(&platform, &r))
        {
            web_root = w;
        }
    }
    bindings.extend(vh.iter().cloned());
    let site_dir = match site_path.strip_prefix(&platform) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ if web_root.is_empty() => format!("sites/{uri}"),
        _ => format!("{web_root}/sites/{uri}"),
    };
    let drushrc = site_path.join("drushrc.php");
    let credentials = vh
        .iter()
        .chain(std::iter::once(&drushrc))
        .find(|p| {
            fs::read_to_string(p)
                .map(|t| db::aegir::has_credentials(&t))
                .unwrap_or(false)
        })
        .cloned();
    Some(Found {
        uri,
        alias: alias.to_path_buf(),
        platform,
        web_root,
        site_dir,
        bindings,
        credentials,
        db: None,
        problems: Vec::new(),
        registered: false,
    })
}

/// Fills in the redacted database and the problems of a found site.
fn check(f: &mut Found, check_db: bool) {
    if !f.platform.join(&f.site_dir).is_dir() {
        f.problems.push(Problem::SiteFolderMissing);
    }
    let Some(file) = &f.credentials else {
        f.problems.push(Problem::NoDatabaseCredentials);
        return;
    };
    match db::aegir::read(file) {
        Ok(d) => {
            f.db = Some(d.redacted());
            if check_db && let Err(e) = reachable(&d) {
                f.problems.push(Problem::DatabaseUnreachable(e));
            }
        }
        Err(e) => f.problems.push(Problem::DatabaseUnreachable(e.to_string())),
    }
}

fn reachable(d: &Database) -> std::result::Result<(), String> {
    d.check().map_err(|e| {
        let s = e.to_string();
        s.lines().next().unwrap_or("").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_values() {
        let t =
            "$aliases['x'] = array ('root' => '/var/aegir/platforms/d7', 'site_path' => \"/s\");";
        assert_eq!(
            php_value(t, "root").as_deref(),
            Some("/var/aegir/platforms/d7")
        );
        assert_eq!(php_value(t, "site_path").as_deref(), Some("/s"));
        assert_eq!(php_value(t, "uri"), None);
    }
}
