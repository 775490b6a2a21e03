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
    /// None when there is no database on one side or the live one was not dumped.
    pub database_changed: Option<bool>,
}

/// Compares snapshot `a` with snapshot `b`, or with the live site when `b` is None.
pub fn diff(repo: &Repo, a: &SnapshotRecord, b: Option<&SnapshotRecord>) -> Result<SiteDiff> {
    let pa = tree_or_empty(repo, a.platform_tree)?;
    let sa = tree_or_empty(repo, a.site_tree)?;
    let ba = tree_or_empty(repo, a.bindings_tree)?;
    let (to, platform_to, pb, sb, bb, db) = match b {
        Some(b) => (
            b.id.clone(),
            b.platform_path.clone(),
            tree_or_empty(repo, b.platform_tree)?,
            tree_or_empty(repo, b.site_tree)?,
            tree_or_empty(repo, b.bindings_tree)?,
            match (a.db_dump, b.db_dump) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            },
        ),
        None => {
            let s = repo.cat.site(&a.site)?;
            let now = site::locate(&repo.cat, &s)?;
            let db = s.database_at(&now)?;
            let site_dir = now.join(&s.site_dir);
            let mut skip = capture::db_side_files(db.as_ref());
            skip.push(site_dir.clone());
            let pb = if now.is_dir() {
                capture::scan_platform(&repo.cat, &now, &skip)?
            } else {
                Tree::default()
            };
            let sb = if site_dir.is_dir() {
                capture::scan_site_dir(&repo.cat, &site_dir, db.as_ref())?
            } else {
                Tree::default()
            };
            let bb = capture::scan_bindings(&repo.cat, &s.bindings)?;
            ("live".to_string(), now, pb, sb, bb, None)
        }
    };
    Ok(SiteDiff {
        from: a.id.clone(),
        to,
        platform_from: a.platform_path.clone(),
        platform_to,
        platform: tree::diff(&pa, &pb),
        site: tree::diff(&sa, &sb),
        bindings: tree::diff(&ba, &bb),
        database_changed: db,
    })
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
        ] {
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
