//! Differences between two snapshots of a site, or between a snapshot and the live site: which
//! platform, site and binding files were added, removed or changed, whether the platform path
//! moved, whether the database dump differs (or why it was not compared), and with `content`
//! the unified diff of changed text files, secrets masked. Read-only: it never stores or
//! changes anything. Snapshots of two different sites are refused unless forced.

mod content;
mod mask;

pub use content::{Content, FileDiff, MAX_TEXT};
pub use mask::mask;

use crate::capture;
use crate::catalog::SnapshotRecord;
use crate::error::{Error, Result};
use crate::read::tree_or_empty;
use crate::repo::Repo;
use crate::site;
use crate::tree::{self, Tree, TreeDiff, TreePart};
use content::{PartPair, Source};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How to compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOpts {
    /// Also show the unified diff of changed text files.
    pub content: bool,
    /// Compare snapshots of two different sites.
    pub force: bool,
}

/// Why the database was not compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DbNotCompared {
    /// A snapshot holds no dump: taken with `--no-db`, or the site had no database then.
    NoDump {
        /// The snapshot without a dump.
        snapshot: String,
        /// The site had a database when it was taken (so `--no-db` was given).
        had_database: bool,
    },
    /// The other side is the live site, whose database `diff` does not dump.
    Live,
}

impl std::fmt::Display for DbNotCompared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbNotCompared::NoDump {
                snapshot,
                had_database: true,
            } => write!(
                f,
                "snapshot {} holds no database dump (taken with --no-db)",
                short(snapshot)
            ),
            DbNotCompared::NoDump { snapshot, .. } => write!(
                f,
                "snapshot {} holds no database dump (the site had no database then)",
                short(snapshot)
            ),
            DbNotCompared::Live => f.write_str(
                "diff does not dump the live database (take a snapshot and diff the two)",
            ),
        }
    }
}

fn short(s: &str) -> &str {
    &s[..8.min(s.len())]
}

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
    /// None when the database was not compared (see `database_not_compared`).
    pub database_changed: Option<bool>,
    /// Why the database was not compared.
    pub database_not_compared: Option<DbNotCompared>,
    /// With `content`: the differences of changed text files (secrets masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<FileDiff>>,
}

/// Refuses two snapshots of different sites unless forced.
fn check_same_site(a: &SnapshotRecord, b: &SnapshotRecord, force: bool) -> Result<()> {
    if a.site == b.site || force {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "snapshots {} ({}) and {} ({}) are of different sites; add --force to compare them",
        short(&a.id),
        a.site,
        short(&b.id),
        b.site
    )))
}

/// Whether the dumps of `a` and `b` differ, or why they cannot be compared.
fn compare_db(
    a: &SnapshotRecord,
    b: Option<&SnapshotRecord>,
) -> std::result::Result<bool, DbNotCompared> {
    let no_dump = |s: &SnapshotRecord| DbNotCompared::NoDump {
        snapshot: s.id.clone(),
        had_database: s.db_kind.is_some(),
    };
    let x = a.db_dump.ok_or_else(|| no_dump(a))?;
    let b = b.ok_or(DbNotCompared::Live)?;
    let y = b.db_dump.ok_or_else(|| no_dump(b))?;
    Ok(x != y)
}

/// Compares snapshot `a` with snapshot `b`, or with the live site when `b` is None.
/// Other sites' folders and extra paths are left out of both platform trees, on every platform
/// shape, whatever an older snapshot recorded.
pub fn diff(
    repo: &Repo,
    a: &SnapshotRecord,
    b: Option<&SnapshotRecord>,
    opts: DiffOpts,
) -> Result<SiteDiff> {
    if let Some(b) = b {
        check_same_site(a, b, opts.force)?;
    }
    let (to, platform_to, mut other) = match b {
        Some(b) => (
            b.id.clone(),
            b.platform_path.clone(),
            Parts::stored(repo, b)?,
        ),
        None => {
            let (now, parts) = Parts::live(repo, a)?;
            ("live".to_string(), now, parts)
        }
    };
    let mut filter = site::snapshot_filter(&repo.cat, a, &platform_to)?;
    filter = filter.with_extra(b.map(|b| b.extra_paths.clone()).unwrap_or_default());
    let mut mine = Parts::stored(repo, a)?;
    mine.platform = filter.apply(&mine.platform);
    other.platform = filter.apply(&other.platform);
    let db = compare_db(a, b);
    let mut d = SiteDiff {
        from: a.id.clone(),
        to,
        platform_from: a.platform_path.clone(),
        platform_to,
        platform: tree::diff(&mine.platform, &other.platform),
        site: tree::diff(&mine.site, &other.site),
        bindings: tree::diff(&mine.bindings, &other.bindings),
        extra: tree::diff(&mine.extra, &other.extra),
        database_changed: db.as_ref().ok().copied(),
        database_not_compared: db.err(),
        content: None,
    };
    if opts.content {
        d.content = Some(contents(repo, &d, &mine, &other)?);
    }
    Ok(d)
}

/// The content differences of every part.
fn contents(repo: &Repo, d: &SiteDiff, old: &Parts, new: &Parts) -> Result<Vec<FileDiff>> {
    let mut out = Vec::new();
    for part in TreePart::ALL {
        let pair = PartPair {
            part,
            old: old.tree(part),
            new: new.tree(part),
            diff: d.part(part),
            old_src: old.source(part),
            new_src: new.source(part),
        };
        out.extend(content::part_content(repo, &pair)?);
    }
    Ok(out)
}

/// The live folders a live side's parts are relative to.
struct LiveRoots {
    platform: PathBuf,
    site: PathBuf,
}

/// The four file parts of one side of a diff.
struct Parts {
    platform: Tree,
    site: Tree,
    bindings: Tree,
    extra: Tree,
    /// Set for the live site.
    live: Option<LiveRoots>,
}

impl Parts {
    /// A snapshot's stored trees (empty where it holds none).
    fn stored(repo: &Repo, s: &SnapshotRecord) -> Result<Parts> {
        Ok(Parts {
            platform: tree_or_empty(repo, s.platform_tree)?,
            site: tree_or_empty(repo, s.site_tree)?,
            bindings: tree_or_empty(repo, s.bindings_tree)?,
            extra: tree_or_empty(repo, s.extra_tree)?,
            live: None,
        })
    }

    fn tree(&self, part: TreePart) -> &Tree {
        match part {
            TreePart::Platform => &self.platform,
            TreePart::Site => &self.site,
            TreePart::Bindings => &self.bindings,
            TreePart::Extra => &self.extra,
        }
    }

    /// Where a part's contents are read from.
    fn source(&self, part: TreePart) -> Source<'_> {
        match (&self.live, part) {
            (None, _) => Source::Stored,
            (Some(r), TreePart::Platform | TreePart::Extra) => Source::Live(&r.platform),
            (Some(r), TreePart::Site) => Source::Live(&r.site),
            (Some(_), TreePart::Bindings) => Source::Live(Path::new("/")),
        }
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
        let live = Some(LiveRoots {
            platform: now.clone(),
            site: site_dir,
        });
        Ok((
            now,
            Parts {
                platform,
                site,
                bindings,
                extra,
                live,
            },
        ))
    }
}

impl SiteDiff {
    /// The difference in words, one part per paragraph.
    pub fn describe(&self) -> String {
        let mut out = String::new();
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
        match (self.database_changed, &self.database_not_compared) {
            (Some(true), _) => out.push_str("database: changed\n"),
            (Some(false), _) => out.push_str("database: unchanged\n"),
            (None, Some(why)) => out.push_str(&format!("database: not compared: {why}\n")),
            (None, None) => out.push_str("database: not compared\n"),
        }
        if let Some(c) = &self.content {
            out.push_str(&describe_content(c));
        }
        out
    }

    /// The difference of one part.
    pub fn part(&self, part: TreePart) -> &TreeDiff {
        match part {
            TreePart::Platform => &self.platform,
            TreePart::Site => &self.site,
            TreePart::Bindings => &self.bindings,
            TreePart::Extra => &self.extra,
        }
    }
}

/// The content differences in words: each text diff in full, other files named.
fn describe_content(files: &[FileDiff]) -> String {
    let mut out = String::new();
    for f in files {
        let name = format!("{} {}", f.part, f.path);
        match &f.content {
            Content::Text { diff } => {
                out.push_str(&format!("\n{name}:\n{diff}"));
                if !diff.ends_with('\n') {
                    out.push('\n');
                }
            }
            Content::SecretsOnly => {
                out.push_str(&format!("\n{name}: only masked secrets differ\n"))
            }
            Content::Binary => out.push_str(&format!("\n{name}: binary, not shown\n")),
            Content::TooLarge { size } => out.push_str(&format!(
                "\n{name}: {size} bytes, over the {MAX_TEXT}-byte limit, not shown\n"
            )),
        }
    }
    out
}
