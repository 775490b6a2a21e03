//! The Prometheus textfile-collector writer of `snapshot --metrics` and `push --metrics`
//! (`snapshot --push NAME --metrics FILE` writes both in one file).

use crate::catalog::{SiteRecord, SnapshotRecord};
use crate::remote::PushReport;
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

/// The textfile-collector metrics of a snapshot run over `sites`.
pub fn snapshot_metrics(repo: &Repo, sites: &[SiteRecord], failed: &[String]) -> Result<String> {
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
    Ok(m)
}

/// Writes metrics text to `path` atomically (temp file, fsync, rename), readable by the
/// collector.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)
        .with_context(|| format!("writing metrics to {}", path.display()))?;
    Ok(())
}

/// The name of the push success gauge.
const PUSH_SUCCESS: &str = "sitesnap_push_last_success_timestamp_seconds";

/// The metrics of a push to `remote`: `pushed` is its report, or `None` when it failed (the
/// last success time is then the one `previous`, the file's old text, holds for `remote`).
pub fn push_metrics(remote: &str, pushed: Option<&PushReport>, previous: &str) -> String {
    let label = format!("{{remote=\"{}\"}}", prom_label(remote));
    let now = prom_time(&crate::fsutil::now());
    let success = match pushed {
        Some(_) => now.clone(),
        None => previous
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{PUSH_SUCCESS}{label} ")))
            .map_or_else(|| "0".to_string(), |v| v.trim().to_string()),
    };
    let mut m = String::new();
    let mut gauge = |name: &str, help: &str, v: String| {
        m.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{label} {v}\n"
        ));
    };
    let counts: [(&str, &str, u64); 4] = match pushed {
        Some(r) => [
            (
                "uploaded_objects",
                "Objects the last push uploaded.",
                r.uploaded,
            ),
            (
                "uploaded_bytes",
                "Bytes the last push uploaded.",
                r.uploaded_bytes,
            ),
            (
                "skipped_objects",
                "Objects the last push found already there.",
                r.skipped,
            ),
            (
                "skipped_bytes",
                "Bytes of the objects already there.",
                r.skipped_bytes,
            ),
        ],
        None => [("", "", 0); 4],
    };
    gauge(
        PUSH_SUCCESS,
        "Unix time the last successful push to the remote ended (0: none yet).",
        success,
    );
    gauge(
        "sitesnap_push_last_run_timestamp_seconds",
        "Unix time the last push to the remote ended.",
        now,
    );
    gauge(
        "sitesnap_push_last_run_failed",
        "1 if the last push to the remote failed, else 0.",
        if pushed.is_some() { "0" } else { "1" }.into(),
    );
    // A failed push reports no counts (only its failure and the last success).
    if let Some(r) = pushed {
        for (name, help, v) in counts {
            gauge(&format!("sitesnap_push_{name}"), help, v.to_string());
        }
        gauge(
            "sitesnap_push_duration_seconds",
            "How long the last push took.",
            format!("{:.3}", r.duration_ms as f64 / 1000.0),
        );
    }
    m
}

/// The old text of a metrics file (empty when there is none yet).
pub fn previous(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
