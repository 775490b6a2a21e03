//! The Prometheus textfile-collector writer of `snapshot --metrics`.

use crate::catalog::{SiteRecord, SnapshotRecord};
use crate::repo::Repo;
use anyhow::{Context, Result};
use std::path::Path;

/// Prometheus label value escaping (backslash, double quote, newline).
fn prom_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn prom_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// Each site of the run with its newest snapshot.
type Latest<'a> = [(&'a SiteRecord, Option<SnapshotRecord>)];

/// Appends one gauge family: a value per site (sites for which `f` gives none are left out).
fn family(
    m: &mut String,
    last: &Latest,
    name: &str,
    help: &str,
    f: &dyn Fn(&SiteRecord, Option<&SnapshotRecord>) -> Option<String>,
) {
    m.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    for (s, snap) in last {
        if let Some(v) = f(s, snap.as_ref()) {
            m.push_str(&format!("{name}{{site=\"{}\"}} {v}\n", prom_label(&s.uri)));
        }
    }
}

/// Writes textfile-collector metrics for `sites` (this run), atomically.
pub fn write_metrics(
    repo: &Repo,
    path: &Path,
    sites: &[SiteRecord],
    failed: &[String],
) -> Result<()> {
    let mut last = Vec::new();
    for s in sites {
        last.push((s, repo.cat.snapshots(Some(&s.uri))?.pop()));
    }
    let mut m = String::new();
    family(
        &mut m,
        &last,
        "sitesnap_last_success_timestamp_seconds",
        "Unix time of the site's newest snapshot (0: none yet).",
        &|_, snap| Some(snap.map_or_else(|| "0".into(), |x| prom_time(&x.time))),
    );
    family(
        &mut m,
        &last,
        "sitesnap_last_duration_seconds",
        "How long the site's newest snapshot took.",
        &|_, snap| snap.map(|x| format!("{:.3}", x.duration_ms as f64 / 1000.0)),
    );
    family(
        &mut m,
        &last,
        "sitesnap_last_added_bytes",
        "Compressed bytes the site's newest snapshot added to the repository.",
        &|_, snap| snap.map(|x| x.bytes_added.to_string()),
    );
    family(
        &mut m,
        &last,
        "sitesnap_site_has_database",
        "1 if the site has a database registered (its snapshots hold a dump), else 0.",
        &|s, _| Some(if s.db_url.is_some() { "1" } else { "0" }.into()),
    );
    family(
        &mut m,
        &last,
        "sitesnap_last_run_failed",
        "1 if the site's snapshot failed in the last run, else 0.",
        &|s, _| Some(if failed.contains(&s.uri) { "1" } else { "0" }.into()),
    );
    m.push_str(&format!(
        "# HELP sitesnap_last_run_timestamp_seconds Unix time the last `sitesnap snapshot` run ended.\n# TYPE sitesnap_last_run_timestamp_seconds gauge\nsitesnap_last_run_timestamp_seconds {}\n",
        prom_time(&crate::fsutil::now())
    ));
    crate::fsutil::write_atomic(path, m.as_bytes(), 0o644)
        .with_context(|| format!("writing metrics to {}", path.display()))?;
    Ok(())
}
