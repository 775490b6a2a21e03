//! Differences between two snapshots of a site, or between a snapshot and the live site: which
//! platform, site and binding files were added, removed or changed, whether the platform path
//! moved, and whether the database dump differs. Read-only: it never stores or changes anything.

use crate::capture;
use crate::catalog::SnapshotRecord;
use crate::error::Result;
use crate::read::tree_or_empty;
use crate::repo::Repo;
use crate::site;
use crate::tree::{self, Tree, TreeDiff};
use serde::Serialize;
use std::path::PathBuf;

/// What differs between two snapshots of a site, or a snapshot and the live site.
#[derive(Debug, Serialize)]
pub struct SiteDiff {
    /// The older snapshot's id.
    pub from: String,
    /// The newer snapshot's id, or `live`.
    pub to: String,
    /// The platform path of `from`.
    pub platform_from: PathBuf,
    /// The platform path of `to`.
    pub platform_to: PathBuf,
    /// Platform files added, removed, changed.
    pub platform: TreeDiff,
    /// Site directory files added, removed, changed.
    pub site: TreeDiff,
    /// Binding files added, removed, changed.
    pub bindings: TreeDiff,
    /// Files of the site's extra paths (private files, config sync) added, removed, changed.
    pub extra: TreeDiff,
    /// None when there is no database on one side or the live one was not dumped.
    pub database_changed: Option<bool>,
}

/// Compares snapshot `a` with snapshot `b`, or with the live site when `b` is None.
/// Other sites' folders and extra paths are left out of both platform trees, on every platform
/// shape, whatever an older snapshot recorded.
pub fn diff(repo: &Repo, a: &SnapshotRecord, b: Option<&SnapshotRecord>) -> Result<SiteDiff> {
    let (to, platform_to, other, db) = match b {
        Some(b) => (
            b.id.clone(),
            b.platform_path.clone(),
            Parts::stored(repo, b)?,
            match (a.db_dump, b.db_dump) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            },
        ),
        None => {
            let (now, parts) = Parts::live(repo, a)?;
            ("live".to_string(), now, parts, None)
        }
    };
    let mut filter = site::snapshot_filter(&repo.cat, a, &platform_to)?;
    filter = filter.with_extra(b.map(|b| b.extra_paths.clone()).unwrap_or_default());
    let mine = Parts::stored(repo, a)?;
    Ok(SiteDiff {
        from: a.id.clone(),
        to,
        platform_from: a.platform_path.clone(),
        platform_to,
        platform: tree::diff(
            &filter.apply(&mine.platform),
            &filter.apply(&other.platform),
        ),
        site: tree::diff(&mine.site, &other.site),
        bindings: tree::diff(&mine.bindings, &other.bindings),
        extra: tree::diff(&mine.extra, &other.extra),
        database_changed: db,
    })
}

/// The four file parts of one side of a diff.
struct Parts {
    platform: Tree,
    site: Tree,
    bindings: Tree,
    extra: Tree,
}

impl Parts {
    /// A snapshot's stored trees (empty where it holds none).
    fn stored(repo: &Repo, s: &SnapshotRecord) -> Result<Parts> {
        Ok(Parts {
            platform: tree_or_empty(repo, s.platform_tree)?,
            site: tree_or_empty(repo, s.site_tree)?,
            bindings: tree_or_empty(repo, s.bindings_tree)?,
            extra: tree_or_empty(repo, s.extra_tree)?,
        })
    }

    /// The live site of snapshot `a`, wherever it is now; returns that platform too.
    fn live(repo: &Repo, a: &SnapshotRecord) -> Result<(PathBuf, Parts)> {
        let s = repo.cat.site(&a.site)?;
        let now = site::locate(&repo.cat, &s)?;
        let db = s.database_at(&now)?;
        let site_dir = now.join(&s.site_dir);
        let mut skip = capture::db_side_files(db.as_ref());
        skip.push(site_dir.clone());
        let (platform, extra) = if now.is_dir() {
            let web_root = site::web_root(&repo.cat, &s, &now)?;
            let filter = site::platform_filter(&repo.cat, &now, &web_root, &s.extra_paths)?;
            (
                capture::scan_platform(repo, &now, &filter, &skip)?,
                capture::scan_extra(repo, &now, &s.extra_paths, db.as_ref())?,
            )
        } else {
            (Tree::default(), Tree::default())
        };
        let site = if site_dir.is_dir() {
            capture::scan_site_dir(repo, &site_dir, db.as_ref())?
        } else {
            Tree::default()
        };
        let bindings = capture::scan_bindings(repo, &s.bindings)?;
        Ok((
            now,
            Parts {
                platform,
                site,
                bindings,
                extra,
            },
        ))
    }
}

impl SiteDiff {
    /// The difference in words, one part per paragraph.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let short = |s: &str| s[..8.min(s.len())].to_string();
        out.push_str(&format!(
            "from {} to {}\n",
            short(&self.from),
            short(&self.to)
        ));
        if self.platform_from != self.platform_to {
            out.push_str(&format!(
                "platform moved: {} -> {}\n",
                self.platform_from.display(),
                self.platform_to.display()
            ));
        }
        for (name, d) in [
            ("platform", &self.platform),
            ("site directory", &self.site),
            ("bindings", &self.bindings),
            ("extra paths", &self.extra),
        ] {
            if name == "extra paths" && d.is_empty() {
                continue; // most sites have none
            }
            if d.is_empty() {
                out.push_str(&format!("{name}: unchanged\n"));
            } else {
                out.push_str(&format!(
                    "{name}: {} added, {} removed, {} changed\n{}\n",
                    d.added.len(),
                    d.removed.len(),
                    d.changed.len(),
                    d.summary(50)
                ));
            }
        }
        match self.database_changed {
            Some(true) => out.push_str("database: changed\n"),
            Some(false) => out.push_str("database: unchanged\n"),
            None => out.push_str("database: not compared\n"),
        }
        out
    }
}
