//! Cron mode: `snapshot --all` is silent on success (unless -v), goes on past a failing site
//! with one line per failure on stderr and exit 1, and writes Prometheus metrics atomically.
use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Two good sites and two broken ones (platform gone; database file gone).
fn world() -> World {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 30);
    w.site("a.example.com", &p);
    w.site("b.example.com", &p);
    let q = w.platform("platforms/doomed", 10);
    w.site("gone.example.com", &q);
    let s = w.site("nodb.example.com", &p);
    fs::remove_dir_all(&q).unwrap();
    fs::remove_file(&s.db).unwrap();
    w
}

/// `name{site="x"} value` lines of a textfile, as (name, site) -> value.
fn metrics(text: &str) -> BTreeMap<(String, String), String> {
    let mut m = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (key, value) = l.rsplit_once(' ').unwrap();
        let (name, site) = match key.split_once("{site=\"") {
            Some((n, rest)) => (n.to_string(), rest.trim_end_matches("\"}").to_string()),
            None => (key.to_string(), String::new()),
        };
        m.insert((name, site), value.to_string());
    }
    m
}

#[test]
fn snapshot_all_is_silent_on_success_and_talks_with_v() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 30);
    w.site("a.example.com", &p);
    w.site("b.example.com", &p);
    let r = w.run(&["snapshot", "--all", "--kind", "scheduled"]).ok();
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "");
    assert_eq!(w.snapshot_count(), 2);
    let r = w
        .run(&["-v", "snapshot", "--all", "--kind", "scheduled"])
        .ok();
    assert_eq!(r.stderr, "");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].starts_with("snapshot ") && lines[0].contains(" of a.example.com: "));
    assert!(lines[1].contains(" of b.example.com: "));
    // The summary line ends it.
    assert!(
        lines[2].starts_with("2 of 2 site(s) snapshotted"),
        "{}",
        lines[2]
    );
}

#[test]
fn snapshot_all_goes_on_past_failures_one_line_each_and_exits_1() {
    let w = world();
    let r = w
        .run(&["snapshot", "--all", "--kind", "scheduled"])
        .fails(1);
    assert_eq!(r.stdout, "");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "one line per failure and a total: {}",
        r.stderr
    );
    assert!(lines[0].starts_with("sitesnap: error: snapshot of site 'gone.example.com': "));
    assert!(lines[0].contains("does not exist"), "{}", lines[0]);
    assert!(lines[1].starts_with("sitesnap: error: snapshot of site 'nodb.example.com': "));
    assert_eq!(lines[2], "sitesnap: error: 2 of 4 site(s) failed");
    let l = w.run(&["list", "--json"]).ok().json();
    let sites: Vec<&str> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["site"].as_str().unwrap())
        .collect();
    assert_eq!(sites, ["a.example.com", "b.example.com"]);
}

#[test]
fn metrics_file_has_each_sites_last_success_duration_bytes_and_failure() {
    let w = world();
    let file = w.path("textfile/sitesnap.prom");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let now = "2026-11-20T03:00:00Z";
    w.run_env(
        &[
            "snapshot",
            "--all",
            "--kind",
            "scheduled",
            "--metrics",
            file.to_str().unwrap(),
        ],
        &[("SITESNAP_TEST_NOW", now)],
    )
    .fails(1);
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("# TYPE sitesnap_last_success_timestamp_seconds gauge"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE sitesnap_last_run_failed gauge"),
        "{text}"
    );
    let m = metrics(&text);
    let get = |n: &str, s: &str| m[&(n.to_string(), s.to_string())].clone();
    let list = w.run(&["list", "--json"]).ok().json();
    for s in list.as_array().unwrap() {
        let site = s["site"].as_str().unwrap();
        assert_eq!(
            get("sitesnap_last_success_timestamp_seconds", site),
            "1795143600.000"
        );
        assert_eq!(get("sitesnap_last_run_failed", site), "0");
        assert_eq!(
            get("sitesnap_last_added_bytes", site),
            s["bytes_added"].as_u64().unwrap().to_string()
        );
        let d: f64 = get("sitesnap_last_duration_seconds", site).parse().unwrap();
        assert!((d - s["duration_ms"].as_f64().unwrap() / 1000.0).abs() < 0.001);
    }
    for bad in ["gone.example.com", "nodb.example.com"] {
        assert_eq!(get("sitesnap_last_run_failed", bad), "1");
        assert_eq!(get("sitesnap_last_success_timestamp_seconds", bad), "0");
        assert!(!m.contains_key(&("sitesnap_last_duration_seconds".into(), bad.into())));
    }
    assert_eq!(
        get("sitesnap_last_run_timestamp_seconds", ""),
        "1795143600.000"
    );
    // Readable by the node exporter, written atomically (no temp file left beside it).
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_eq!(fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);

    // The next night one site is fixed: its gauge clears and its time advances; the other
    // keeps failing.
    let sites = w
        .run(&["site", "show", "nodb.example.com", "--json"])
        .ok()
        .json();
    let db = sites["db"]
        .as_str()
        .unwrap()
        .trim_start_matches("sqlite://")
        .to_string();
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    w.run_env(
        &[
            "snapshot",
            "--all",
            "--kind",
            "scheduled",
            "--metrics",
            file.to_str().unwrap(),
        ],
        &[("SITESNAP_TEST_NOW", "2026-11-21T03:00:00Z")],
    )
    .fails(1);
    let m = metrics(&fs::read_to_string(&file).unwrap());
    let get = |n: &str, s: &str| m[&(n.to_string(), s.to_string())].clone();
    assert_eq!(get("sitesnap_last_run_failed", "nodb.example.com"), "0");
    assert_eq!(
        get(
            "sitesnap_last_success_timestamp_seconds",
            "nodb.example.com"
        ),
        "1795230000.000"
    );
    assert_eq!(get("sitesnap_last_run_failed", "gone.example.com"), "1");
    // Bytes added are those of the newest snapshot (nothing changed: only new metadata).
    let list = w.run(&["list", "a.example.com", "--json"]).ok().json();
    let newest = list.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        get("sitesnap_last_added_bytes", "a.example.com"),
        newest["bytes_added"].as_u64().unwrap().to_string()
    );
}
