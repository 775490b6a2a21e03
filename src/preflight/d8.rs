//! Drupal 8+: the enabled modules and themes are the `module` and `theme` maps of the
//! `core.extension` config (table `config`, a PHP-serialized array); each is found by its
//! `<name>.info.yml` under `core/modules`, `core/themes`, `core/profiles/<p>`, `modules`,
//! `themes`, `profiles/<p>`, `sites/all/…` and the site's own folder. Only missing extensions are
//! reported (the config records no paths), plus code in `sites/<uri>/modules|themes`.

use super::{Extension, ExtensionKind, Finding};
use crate::db::Database;
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// The enabled extensions and the install profile of a Drupal 8+ site.
pub struct Enabled {
    pub extensions: Vec<Extension>,
    pub profile: Option<String>,
}

/// Reads `core.extension` from the site's database.
pub fn enabled(db: &Database) -> Result<Enabled> {
    let rows =
        db.query_rows("SELECT data FROM config WHERE collection = '' AND name = 'core.extension'")?;
    let data = rows
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| Error::Invalid("no core.extension config".into()))?;
    parse(data).ok_or_else(|| Error::Invalid("core.extension is not a PHP-serialized array".into()))
}

/// A PHP-serialized value, as far as core.extension needs.
#[derive(Debug, PartialEq)]
enum Php {
    Str(String),
    Int,
    Array(Vec<(Php, Php)>),
}

/// Parses one value at the start of `s`; returns it and the rest.
fn value(s: &str) -> Option<(Php, &str)> {
    let (tag, rest) = s.split_at_checked(2)?;
    match tag {
        "s:" => {
            let (len, rest) = rest.split_once(':')?;
            let len: usize = len.parse().ok()?;
            let rest = rest.strip_prefix('"')?;
            let text = rest.get(..len)?;
            let rest = rest.get(len..)?.strip_prefix("\";")?;
            Some((Php::Str(text.to_string()), rest))
        }
        "i:" | "b:" => {
            let (_, rest) = rest.split_once(';')?;
            Some((Php::Int, rest))
        }
        "a:" => {
            let (n, rest) = rest.split_once(':')?;
            let n: usize = n.parse().ok()?;
            let mut rest = rest.strip_prefix('{')?;
            let mut items = Vec::with_capacity(n.min(10_000));
            for _ in 0..n {
                let (k, r) = value(rest)?;
                let (v, r) = value(r)?;
                items.push((k, v));
                rest = r;
            }
            Some((Php::Array(items), rest.strip_prefix('}')?))
        }
        _ => None,
    }
}

fn get<'a>(items: &'a [(Php, Php)], key: &str) -> Option<&'a Php> {
    items
        .iter()
        .find(|(k, _)| *k == Php::Str(key.to_string()))
        .map(|(_, v)| v)
}

fn parse(data: &str) -> Option<Enabled> {
    let (Php::Array(top), _) = value(data.trim())? else {
        return None;
    };
    let mut extensions = Vec::new();
    for (key, kind) in [
        ("module", ExtensionKind::Module),
        ("theme", ExtensionKind::Theme),
    ] {
        if let Some(Php::Array(m)) = get(&top, key) {
            for (k, _) in m {
                if let Php::Str(name) = k {
                    extensions.push(Extension {
                        name: name.clone(),
                        kind,
                        path: String::new(),
                    });
                }
            }
        }
    }
    let profile = match get(&top, "profile") {
        Some(Php::Str(p)) => Some(p.clone()),
        _ => None,
    };
    Some(Enabled {
        extensions,
        profile,
    })
}

/// The `<name>` of every `<name>.info.yml` where Drupal 8+ looks under `web`, plus the site's
/// own folder (as it is now, at `site_src`).
fn available(web: &Path, profile: Option<&str>, site_src: &Path) -> BTreeSet<String> {
    let mut dirs = vec![
        web.join("core/modules"),
        web.join("core/themes"),
        web.join("modules"),
        web.join("themes"),
        web.join("sites/all/modules"),
        web.join("sites/all/themes"),
        site_src.join("modules"),
        site_src.join("themes"),
    ];
    if let Some(p) = profile {
        dirs.push(web.join("core/profiles").join(p));
        dirs.push(web.join("profiles").join(p));
    }
    let mut out = BTreeSet::new();
    for d in dirs {
        for e in walkdir::WalkDir::new(&d).into_iter().flatten() {
            if let Some(n) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".info.yml"))
            {
                out.insert(n.to_string());
            }
        }
    }
    out
}

/// Reports the enabled extensions missing under `web`.
pub fn check(en: &Enabled, web: &Path, site_src: &Path, out: &mut Vec<Finding>) {
    let have = available(web, en.profile.as_deref(), site_src);
    for e in &en.extensions {
        if !have.contains(&e.name) {
            out.push(Finding::Missing {
                extension: e.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_extension_parses() {
        let d = r#"a:3:{s:6:"module";a:3:{s:5:"block";i:0;s:5:"views";i:10;s:8:"standard";i:1000;}s:5:"theme";a:1:{s:7:"olivero";i:0;}s:7:"profile";s:8:"standard";}"#;
        let e = parse(d).unwrap();
        let names: Vec<&str> = e.extensions.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["block", "views", "standard", "olivero"]);
        assert_eq!(e.extensions[3].kind, ExtensionKind::Theme);
        assert_eq!(e.profile.as_deref(), Some("standard"));
        assert!(parse("a:1:{s:99:\"x\";i:0;}").is_none());
        assert!(parse("garbage").is_none());
    }
}
