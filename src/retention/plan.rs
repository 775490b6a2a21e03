//! Prune planning: reads the catalogue (sites, their stored policies, snapshots, unfinished
//! restores), applies each site's policy with [`apply`](super::apply) and returns a typed
//! [`PrunePlan`]. The same plan serves the dry run (shown) and the real run ([`execute_prune`]).
//! It never prints; the CLI shows the plan as a table or serializes it as JSON.

use super::{Candidate, Policy, Reason, apply};
use crate::catalog::SnapshotKind;
use crate::catalog::{Catalog, SnapshotRecord};
use crate::error::Result;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

/// What to plan: which policy, which sites.
#[derive(Debug, Clone, Default)]
pub struct PruneRequest {
    /// A policy given on the command line for every site; `None`: each site's stored policy.
    pub policy: Option<Policy>,
    /// Only this site (it must be registered); `None`: every site.
    pub site: Option<String>,
    /// The policy for sites that store none (the configuration file's); `None`: such sites
    /// are left alone.
    pub default_policy: Option<Policy>,
}

/// What prune keeps and forgets, grouped per site (sorted by uri).
#[derive(Debug, Clone, Serialize)]
pub struct PrunePlan {
    /// One group per site that is registered or has snapshots.
    pub sites: Vec<SitePlan>,
    /// The policy came from the request, not from the sites' stored policies.
    #[serde(skip)]
    pub explicit_policy: bool,
}

/// Why a site's group has no verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SiteNote {
    /// No policy given and none stored for the site: it is left alone.
    #[serde(rename = "no retention policy stored; nothing pruned")]
    NoPolicy,
}

/// One site's part of a [`PrunePlan`].
#[derive(Debug, Clone, Serialize)]
pub struct SitePlan {
    /// The site's uri.
    pub site: String,
    /// The policy applied (`None`: the site is left alone, see `note`).
    pub policy: Option<Policy>,
    /// The policy in words (`keep 7 daily, ...`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_text: Option<String>,
    /// Why nothing is decided for this site, when no policy applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<SiteNote>,
    /// Snapshots kept, newest first, each with its reasons.
    pub keep: Vec<PruneEntry>,
    /// Snapshots forgotten, newest first.
    pub remove: Vec<PruneEntry>,
}

/// One snapshot in a [`SitePlan`].
#[derive(Debug, Clone, Serialize)]
pub struct PruneEntry {
    /// Snapshot id.
    pub id: String,
    /// The id's first 8 characters, as shown in tables.
    pub short_id: String,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// `time` in the plan's time zone, `YYYY-mm-dd HH:MM:SS`.
    pub time_local: String,
    /// Snapshot kind (`manual`, `scheduled`, `pre-restore`, ...).
    pub kind: SnapshotKind,
    /// Its label, if any.
    pub label: Option<String>,
    /// Pinned (never removed by retention).
    pub pinned: bool,
    /// Why it is kept (empty in `remove`).
    pub reasons: Vec<Reason>,
}

impl PrunePlan {
    /// Ids of every snapshot the plan forgets.
    pub fn remove_ids(&self) -> Vec<String> {
        self.sites
            .iter()
            .flat_map(|s| s.remove.iter().map(|e| e.id.clone()))
            .collect()
    }

    /// How many snapshots the plan forgets.
    pub fn remove_count(&self) -> usize {
        self.sites.iter().map(|s| s.remove.len()).sum()
    }

    /// Whether any site had a policy to apply.
    pub fn any_policy(&self) -> bool {
        self.sites.iter().any(|s| s.policy.is_some())
    }
}

/// Snapshots that an unfinished restore still needs, with the reason to keep them.
pub fn journal_holds(cat: &Catalog) -> Result<HashMap<String, String>> {
    let mut holds = HashMap::new();
    for j in cat.open_journals()? {
        let why = format!("needed by unfinished restore {}", j.id);
        holds.insert(j.snapshot.clone(), why.clone());
        if let Some(p) = &j.pre_restore {
            holds.insert(p.clone(), why);
        }
    }
    Ok(holds)
}

/// Plans a prune: per site, the policy (the request's, else the stored one) applied to its
/// snapshots at `now`, with calendar buckets and local times in `tz`.
pub fn plan_prune<Tz: TimeZone>(
    cat: &Catalog,
    req: &PruneRequest,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Result<PrunePlan>
where
    Tz::Offset: Display,
{
    if let Some(u) = &req.site {
        cat.site(u)?;
    }
    let holds = journal_holds(cat)?;
    let mut sites = Vec::new();
    for (site, snaps) in group_by_site(cat, req.site.as_deref())? {
        let policy = match &req.policy {
            Some(p) => Some(p.clone()),
            None => stored_policy(cat, &site)?.or_else(|| req.default_policy.clone()),
        };
        sites.push(match policy {
            None => SitePlan {
                site,
                policy: None,
                policy_text: None,
                note: Some(SiteNote::NoPolicy),
                keep: Vec::new(),
                remove: Vec::new(),
            },
            Some(p) => site_plan(site, p, &snaps, &holds, now, tz),
        });
    }
    Ok(PrunePlan {
        sites,
        explicit_policy: req.policy.is_some(),
    })
}

/// Forgets the snapshots `plan` removes (their data goes at the next gc); returns how many.
pub fn execute_prune(repo: &crate::repo::Repo, plan: &PrunePlan) -> Result<usize> {
    let ids = plan.remove_ids();
    if !ids.is_empty() {
        crate::objects::forget_snapshots(repo, &ids)?;
    }
    Ok(ids.len())
}

/// Every registered site and every site with snapshots (or only `only`), with its snapshots.
fn group_by_site(
    cat: &Catalog,
    only: Option<&str>,
) -> Result<BTreeMap<String, Vec<SnapshotRecord>>> {
    let mut by_site: BTreeMap<String, Vec<SnapshotRecord>> = BTreeMap::new();
    for s in cat.sites()? {
        by_site.entry(s.uri).or_default();
    }
    for s in cat.snapshots(None)? {
        by_site.entry(s.site.clone()).or_default().push(s);
    }
    if let Some(u) = only {
        by_site.retain(|k, _| k == u);
    }
    Ok(by_site)
}

fn stored_policy(cat: &Catalog, site: &str) -> Result<Option<Policy>> {
    match cat.find_site(site)?.and_then(|s| s.policy) {
        Some(j) => Ok(Some(Policy::from_json(&j)?)),
        None => Ok(None),
    }
}

fn site_plan<Tz: TimeZone>(
    site: String,
    policy: Policy,
    snaps: &[SnapshotRecord],
    holds: &HashMap<String, String>,
    now: DateTime<Utc>,
    tz: &Tz,
) -> SitePlan
where
    Tz::Offset: Display,
{
    let cands: Vec<Candidate> = snaps
        .iter()
        .map(|s| Candidate {
            id: s.id.clone(),
            time: s.time,
            kind: s.kind,
            pinned: s.pinned,
            hold: holds.get(&s.id).cloned(),
        })
        .collect();
    let by_id: HashMap<&str, &SnapshotRecord> = snaps.iter().map(|s| (s.id.as_str(), s)).collect();
    let (mut keep, mut remove) = (Vec::new(), Vec::new());
    for v in apply(&policy, &cands, now, tz) {
        let list = if v.keep { &mut keep } else { &mut remove };
        list.push(entry(by_id[v.id.as_str()], v.reasons, tz));
    }
    SitePlan {
        site,
        policy_text: Some(policy.to_string()),
        policy: Some(policy),
        note: None,
        keep,
        remove,
    }
}

fn entry<Tz: TimeZone>(s: &SnapshotRecord, reasons: Vec<Reason>, tz: &Tz) -> PruneEntry
where
    Tz::Offset: Display,
{
    PruneEntry {
        id: s.id.clone(),
        short_id: crate::catalog::short_id(&s.id).to_string(),
        time: s.time,
        time_local: s
            .time
            .with_timezone(tz)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        kind: s.kind,
        label: s.label.clone(),
        pinned: s.pinned,
        reasons,
    }
}
