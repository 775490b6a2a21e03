//! Store against catalogue: what the store holds that the catalogue does not know, and what
//! the catalogue lists that the store does not hold. `verify` reports it; `gc` refuses to run
//! while they disagree (a gc planned from a catalogue that misses snapshots would delete their
//! data).

use super::codec::{Manifest, SiteObject};
use super::{get, names, read_blob_list, read_sites};
use crate::catalog::StoreFormat;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::repo::Repo;
use crate::store::ObjectKind;
use std::collections::{BTreeSet, HashMap, HashSet};

/// What the store holds, read once.
#[derive(Debug, Clone, Default)]
pub struct StoreView {
    /// Manifests by snapshot id.
    pub manifests: HashMap<String, Manifest>,
    /// Manifests that could not be read or decoded: (name, why).
    pub bad_manifests: Vec<(String, String)>,
    /// Snapshot ids with a pin object.
    pub pins: BTreeSet<String>,
    /// Blob ids with a blob list.
    pub blob_lists: BTreeSet<String>,
    /// Newest site object per URI.
    pub sites: Vec<SiteObject>,
    /// Older site object versions (removable).
    pub old_sites: Vec<String>,
}

impl StoreView {
    /// Reads every manifest, site object and the names of pins and blob lists.
    pub fn read(repo: &Repo) -> Result<StoreView> {
        let mut v = StoreView::default();
        for n in names(repo, ObjectKind::Snapshot)? {
            match get(repo, ObjectKind::Snapshot, &n).and_then(|b| Manifest::decode(&b)) {
                Ok(m) if m.id == n => {
                    v.manifests.insert(n, m);
                }
                Ok(m) => v
                    .bad_manifests
                    .push((n, format!("it names snapshot {}", m.id))),
                Err(e) => v.bad_manifests.push((n, e.to_string())),
            }
        }
        v.pins = names(repo, ObjectKind::Pin)?.into_iter().collect();
        v.blob_lists = names(repo, ObjectKind::BlobList)?.into_iter().collect();
        (v.sites, v.old_sites) = read_sites(repo)?;
        Ok(v)
    }

    /// Blob ids the manifests name: (id, is a tree).
    pub fn live_blobs(&self) -> Result<HashMap<Hash, bool>> {
        let mut out = HashMap::new();
        for m in self.manifests.values() {
            out.extend(m.blobs()?);
        }
        Ok(out)
    }
}

/// Where the catalogue and the store disagree. Each list is sorted.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Disagreement {
    /// The catalogue rows are from an older sitesnap and have no objects yet.
    pub v1_catalogue: bool,
    /// Snapshots in the store that the catalogue does not list.
    pub manifests_without_row: Vec<String>,
    /// Snapshot rows without a manifest.
    pub rows_without_manifest: Vec<String>,
    /// Snapshots whose row and manifest differ (blobs, pin, site).
    pub rows_differing: Vec<String>,
    /// Manifests that cannot be read.
    pub bad_manifests: Vec<String>,
    /// Blobs a manifest names whose blob list is missing or differs from the catalogue's.
    pub blob_lists: Vec<String>,
    /// Sites in the store that the catalogue does not list, or whose row differs.
    pub sites_differing: Vec<String>,
    /// Site rows without a site object.
    pub rows_without_site: Vec<String>,
}

impl Disagreement {
    /// Do they agree?
    pub fn is_empty(&self) -> bool {
        !self.v1_catalogue
            && self.manifests_without_row.is_empty()
            && self.rows_without_manifest.is_empty()
            && self.rows_differing.is_empty()
            && self.bad_manifests.is_empty()
            && self.blob_lists.is_empty()
            && self.sites_differing.is_empty()
            && self.rows_without_site.is_empty()
    }

    /// One line: what disagrees, with counts and first names.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |what: &str, v: &[String]| {
            if let Some(first) = v.first() {
                parts.push(format!("{} {what} (first: {first})", v.len()));
            }
        };
        add(
            "snapshot(s) in the store unknown to the catalogue",
            &self.manifests_without_row,
        );
        add(
            "snapshot row(s) without a manifest",
            &self.rows_without_manifest,
        );
        add(
            "snapshot(s) whose row differs from the manifest",
            &self.rows_differing,
        );
        add("unreadable manifest(s)", &self.bad_manifests);
        add("missing or differing blob list(s)", &self.blob_lists);
        add(
            "site(s) whose object differs from the catalogue",
            &self.sites_differing,
        );
        add("site row(s) without a site object", &self.rows_without_site);
        if self.v1_catalogue {
            parts.insert(0, "the catalogue is from an older sitesnap (v1)".into());
        }
        parts.join("; ")
    }
}

/// Compares the catalogue with the store `view`.
pub fn compare(repo: &Repo, view: &StoreView) -> Result<Disagreement> {
    let cat = &repo.cat;
    let mut d = Disagreement {
        v1_catalogue: cat.store_format()? == StoreFormat::V1,
        bad_manifests: view.bad_manifests.iter().map(|b| b.0.clone()).collect(),
        ..Disagreement::default()
    };
    let rows = cat.snapshots(None)?;
    let row_ids: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut checked = HashSet::new();
    for r in &rows {
        let Some(m) = view.manifests.get(&r.id) else {
            d.rows_without_manifest.push(r.id.clone());
            continue;
        };
        let pinned = view.pins.contains(&r.id);
        let same = m.record(pinned).is_ok_and(|mr| {
            mr.site == r.site
                && mr.pinned == r.pinned
                && mr.platform_tree == r.platform_tree
                && mr.site_tree == r.site_tree
                && mr.bindings_tree == r.bindings_tree
                && mr.db_dump == r.db_dump
        });
        if !same {
            d.rows_differing.push(r.id.clone());
        }
        for (b, _) in m.blobs()? {
            if checked.insert(b) && !blob_list_agrees(repo, &b)? {
                d.blob_lists.push(b.to_hex());
            }
        }
    }
    d.manifests_without_row = view
        .manifests
        .keys()
        .filter(|k| !row_ids.contains(k.as_str()))
        .cloned()
        .collect();
    let site_rows = cat.sites()?;
    let objs: HashMap<&str, &SiteObject> = view.sites.iter().map(|s| (s.uri.as_str(), s)).collect();
    for s in &site_rows {
        match objs.get(s.uri.as_str()) {
            None => d.rows_without_site.push(s.uri.clone()),
            Some(o) if !o.describes(s) => d.sites_differing.push(s.uri.clone()),
            Some(_) => {}
        }
    }
    let known: HashSet<&str> = site_rows.iter().map(|s| s.uri.as_str()).collect();
    d.sites_differing.extend(
        view.sites
            .iter()
            .filter(|s| !known.contains(s.uri.as_str()))
            .map(|s| s.uri.clone()),
    );
    for v in [
        &mut d.manifests_without_row,
        &mut d.rows_without_manifest,
        &mut d.rows_differing,
        &mut d.blob_lists,
        &mut d.sites_differing,
        &mut d.rows_without_site,
    ] {
        v.sort();
    }
    Ok(d)
}

/// Is the blob list of `id` in the store, the same as the catalogue's?
fn blob_list_agrees(repo: &Repo, id: &Hash) -> Result<bool> {
    let Ok(store) = read_blob_list(repo, id) else {
        return Ok(false);
    };
    Ok(repo.cat.blob(id).is_ok_and(|c| c == store))
}

/// Refuses (naming `repair catalog`, or `upgrade` for a v1 catalogue) when the catalogue and
/// the store disagree; returns the store view otherwise.
pub fn refuse_if_disagree(repo: &Repo, command: &str) -> Result<StoreView> {
    let view = StoreView::read(repo)?;
    let d = compare(repo, &view)?;
    if d.is_empty() {
        return Ok(view);
    }
    let hint = if d.v1_catalogue {
        "sitesnap upgrade"
    } else {
        "sitesnap repair catalog"
    };
    Err(Error::Refused(format!(
        "the catalogue and the store disagree: {}; {command} changed nothing (run `{hint}`)",
        d.summary()
    )))
}

/// Store objects nothing refers to (besides packs, which gc handles through the index): blob
/// lists no manifest names, pins without a manifest, superseded site versions. Garbage for gc.
pub fn unreferenced(view: &StoreView) -> Result<Vec<crate::store::ObjectName>> {
    use crate::store::ObjectName;
    let live: HashSet<String> = view.live_blobs()?.keys().map(|h| h.to_hex()).collect();
    let mut out: Vec<ObjectName> = view
        .blob_lists
        .iter()
        .filter(|b| !live.contains(*b))
        .map(|b| ObjectName::new(ObjectKind::BlobList, b))
        .collect();
    out.extend(
        view.pins
            .iter()
            .filter(|p| !view.manifests.contains_key(*p))
            .map(|p| ObjectName::new(ObjectKind::Pin, p)),
    );
    out.extend(
        view.old_sites
            .iter()
            .map(|s| ObjectName::new(ObjectKind::Site, s)),
    );
    Ok(out)
}
