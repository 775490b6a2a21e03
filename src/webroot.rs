//! Web roots: where a platform's Drupal web root is. A classic Drupal platform serves its root
//! (`sites/` at the top); a Drupal 8+ composer platform keeps `composer.json` and `vendor/` at
//! the root and the web root in a subfolder (`web/`, `docroot/`, `public_html/`), so its sites'
//! folders are `<web root>/sites/<uri>`. This module reads the file system and binding files'
//! text only; it never touches the catalogue or snapshot data.

use std::path::{Component, Path, PathBuf};

/// Web root folder names tried, in order, when a platform has no `sites/` at its root.
pub const CANDIDATES: [&str; 3] = ["web", "docroot", "public_html"];

/// Guesses a platform's web root from its files: `""` when `sites/` (or `index.php`) is at its
/// root, else the first of [`CANDIDATES`] that holds `sites/`, `core/` or `index.php`, else `""`.
pub fn detect(platform: &Path) -> String {
    if platform.join("sites").is_dir() {
        return String::new();
    }
    for c in CANDIDATES {
        let d = platform.join(c);
        if d.join("sites").is_dir() || d.join("core").is_dir() || d.join("index.php").is_file() {
            return c.to_string();
        }
    }
    String::new()
}

/// The web root a site folder path implies: `x/y` for `x/y/sites/<name>`, `""` for
/// `sites/<name>`, None for another shape.
pub fn from_site_dir(site_dir: &str) -> Option<String> {
    let parts: Vec<&str> = site_dir.trim_end_matches('/').split('/').collect();
    let n = parts.len();
    if n < 2 || parts[n - 2] != "sites" || parts[n - 1].is_empty() {
        return None;
    }
    Some(parts[..n - 2].join("/"))
}

/// The document root a web server vhost names: nginx `root /path;` or Apache
/// `DocumentRoot /path` (quotes allowed). Comment lines are skipped.
pub fn vhost_root(text: &str) -> Option<PathBuf> {
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        // nginx puts several statements on a line (`server { root /p; }`).
        for st in l.split(['{', '}', ';']).map(str::trim) {
            let rest = if let Some(r) = st
                .strip_prefix("root ")
                .or_else(|| st.strip_prefix("root\t"))
            {
                r
            } else if let Some(r) = st.strip_prefix("DocumentRoot") {
                r
            } else {
                continue;
            };
            let v = rest.trim().trim_matches(|c| c == '"' || c == '\'');
            if v.starts_with('/') {
                return Some(PathBuf::from(v));
            }
        }
    }
    None
}

/// A served root (a vhost `root`, a drush alias `root`) as a web root relative to `platform`:
/// Some(`""`) when it is the platform itself, Some(`web`) for `<platform>/web`, None when it
/// lies elsewhere or leaves the platform.
pub fn relative_to(platform: &Path, served: &Path) -> Option<String> {
    let rel = served.strip_prefix(platform).ok()?;
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(rel.to_string_lossy().trim_end_matches('/').to_string())
}

/// Splits a served root into (platform root, web root) the way Aegir lays out composer
/// platforms: a root named like a web root whose parent holds `composer.json` or `vendor/` is
/// the web root of that parent; anything else is a platform root with `""` as its web root.
pub fn split_served_root(served: &Path) -> (PathBuf, String) {
    if let (Some(parent), Some(name)) = (served.parent(), served.file_name()) {
        let name = name.to_string_lossy();
        let composer = parent.join("composer.json").is_file() || parent.join("vendor").is_dir();
        let looks_served = CANDIDATES.contains(&name.as_ref()) || served.join("sites").is_dir();
        if composer && looks_served && !parent.join("sites").is_dir() {
            return (parent.to_path_buf(), name.into_owned());
        }
    }
    (served.to_path_buf(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_dir_shapes() {
        assert_eq!(from_site_dir("sites/a.test").as_deref(), Some(""));
        assert_eq!(from_site_dir("web/sites/a.test").as_deref(), Some("web"));
        assert_eq!(from_site_dir("a/b/sites/x/").as_deref(), Some("a/b"));
        assert_eq!(from_site_dir("custom/place"), None);
        assert_eq!(from_site_dir("sites"), None);
    }

    #[test]
    fn vhost_roots() {
        let nginx = "server {\n  # root /nope;\n  root /var/aegir/platforms/p/web;\n}";
        assert_eq!(
            vhost_root(nginx),
            Some(PathBuf::from("/var/aegir/platforms/p/web"))
        );
        let apache = "<VirtualHost *:80>\n  DocumentRoot \"/var/aegir/platforms/d7\"\n";
        assert_eq!(
            vhost_root(apache),
            Some(PathBuf::from("/var/aegir/platforms/d7"))
        );
        assert_eq!(vhost_root("fastcgi_param db_name x;"), None);
        assert_eq!(
            vhost_root("server { root /p/web; }"),
            Some(PathBuf::from("/p/web"))
        );
        let p = Path::new("/p");
        assert_eq!(relative_to(p, Path::new("/p/web")).as_deref(), Some("web"));
        assert_eq!(relative_to(p, Path::new("/p")).as_deref(), Some(""));
        assert_eq!(relative_to(p, Path::new("/q/web")), None);
    }

    #[test]
    fn detection_and_split() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("composer");
        std::fs::create_dir_all(p.join("docroot/core")).unwrap();
        std::fs::write(p.join("composer.json"), "{}").unwrap();
        assert_eq!(detect(&p), "docroot");
        assert_eq!(
            split_served_root(&p.join("docroot")),
            (p.clone(), "docroot".into())
        );
        let c = d.path().join("d7");
        std::fs::create_dir_all(c.join("sites/all")).unwrap();
        assert_eq!(detect(&c), "");
        assert_eq!(split_served_root(&c), (c.clone(), String::new()));
    }
}
