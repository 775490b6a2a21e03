//! Retention driven through the binary with fabricated snapshot times (SITESNAP_TEST_NOW, TZ=UTC):
//! for each policy the exact kept set against a table computed by hand; pinned checkpoints are
//! always kept; young pre-restore snapshots are protected; policies apply per site.
//!
//! Snapshots of a.example.com (UTC; ISO week in brackets), newest first:
//!   s16 2026-11-20 03:30 [W47]   s15 2026-11-20 03:00 [W47]   s14 2026-11-19 15:00 [W47]
//!   s13 2026-11-19 03:00 [W47]   s12 2026-11-18 03:00 [W47]   s11 2026-11-16 03:00 [W47]
//!   s10 2026-11-15 03:00 [W46]   s09 2026-11-09 03:00 [W46]   s08 2026-11-08 03:00 [W45]
//!   s07 2026-11-02 03:00 [W45]   s06 2026-10-31 03:00 [W44]   s05 2026-09-30 03:00 [W40]
//!   s04 2026-03-01 03:00 [W09]   C   2026-02-10 10:00 [W07] (checkpoint, pinned)
//!   s03 2026-01-15 03:00 [W03]   s02 2025-12-31 03:00 [2026-W01]   s01 2025-06-15 03:00 [W24]
//! and "now" is 2026-11-20 12:00.
use crate::support::*;
use std::collections::BTreeSet;

const NOW: &str = "2026-11-20T12:00:00Z";

const TIMES: &[(&str, &str)] = &[
    ("s01", "2025-06-15T03:00:00Z"),
    ("s02", "2025-12-31T03:00:00Z"),
    ("s03", "2026-01-15T03:00:00Z"),
    ("C", "2026-02-10T10:00:00Z"),
    ("s04", "2026-03-01T03:00:00Z"),
    ("s05", "2026-09-30T03:00:00Z"),
    ("s06", "2026-10-31T03:00:00Z"),
    ("s07", "2026-11-02T03:00:00Z"),
    ("s08", "2026-11-08T03:00:00Z"),
    ("s09", "2026-11-09T03:00:00Z"),
    ("s10", "2026-11-15T03:00:00Z"),
    ("s11", "2026-11-16T03:00:00Z"),
    ("s12", "2026-11-18T03:00:00Z"),
    ("s13", "2026-11-19T03:00:00Z"),
    ("s14", "2026-11-19T15:00:00Z"),
    ("s15", "2026-11-20T03:00:00Z"),
    ("s16", "2026-11-20T03:30:00Z"),
];

/// Policy flags -> labels kept (worked out by hand from the list above, restic 0.16 rules:
/// newest snapshot of each bucket, buckets counted from the newest, the oldest snapshot kept
/// while a bucket has room; the pinned checkpoint C is always kept and takes part in buckets).
const TABLE: &[(&[&str], &[&str])] = &[
    (&["--keep-last", "3"], &["s16", "s15", "s14", "C"]),
    // hours 2026-11-20 03h (s16; s15 same hour), 11-19 15h (s14), 11-19 03h (s13)
    (&["--keep-hourly", "3"], &["s16", "s14", "s13", "C"]),
    // days 11-20 (s16), 11-19 (s14), 11-18 (s12), 11-16 (s11)
    (&["--keep-daily", "4"], &["s16", "s14", "s12", "s11", "C"]),
    // ISO weeks W47 (s16), W46 (s10), W45 (s08)
    (&["--keep-weekly", "3"], &["s16", "s10", "s08", "C"]),
    // months 2026-11 (s16), 2026-10 (s06), 2026-09 (s05), 2026-03 (s04)
    (&["--keep-monthly", "4"], &["s16", "s06", "s05", "s04", "C"]),
    // months as above, then 2026-02 is C's (pinned, it still fills the bucket), 2026-01 s03
    (
        &["--keep-monthly", "6"],
        &["s16", "s06", "s05", "s04", "C", "s03"],
    ),
    // years 2026 (s16), 2025 (s02); s01 is the oldest and the bucket still has room
    (&["--keep-yearly", "5"], &["s16", "s02", "s01", "C"]),
    // newer than 2026-11-10 03:30 (10 days before s16)
    (
        &["--keep-within", "10d"],
        &["s16", "s15", "s14", "s13", "s12", "s11", "s10", "C"],
    ),
    // newer than 2026-11-06 03:30
    (
        &["--keep-within", "2w"],
        &[
            "s16", "s15", "s14", "s13", "s12", "s11", "s10", "s09", "s08", "C",
        ],
    ),
    // newer than 2025-09-20 03:30 (14 months before s16): all but s01
    (
        &["--keep-within", "1y2m"],
        &[
            "s16", "s15", "s14", "s13", "s12", "s11", "s10", "s09", "s08", "s07", "s06", "s05",
            "s04", "C", "s03", "s02",
        ],
    ),
    // last: s16 s15; daily: s16 s14 s12; weekly: s16 s10; monthly: s16 s06 s05
    (
        &[
            "--keep-last",
            "2",
            "--keep-daily",
            "3",
            "--keep-weekly",
            "2",
            "--keep-monthly",
            "3",
        ],
        &["s16", "s15", "s14", "s12", "s10", "s06", "s05", "C"],
    ),
];

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn env(now: &str) -> Vec<(&'static str, String)> {
    vec![("SITESNAP_TEST_NOW", now.to_string()), ("TZ", "UTC".into())]
}

fn run(w: &World, args: &[&str], now: &str) -> Run {
    let e = env(now);
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    w.run_env(args, &e)
}

/// The site's entry of a `prune --json` answer: (kept labels, removed labels, reasons by label).
fn site_result(
    v: &serde_json::Value,
    site: &str,
) -> (
    BTreeSet<String>,
    BTreeSet<String>,
    std::collections::BTreeMap<String, Vec<String>>,
) {
    let s = v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == site)
        .unwrap_or_else(|| panic!("{site} not in {v}"));
    let labels = |k: &str| -> BTreeSet<String> {
        s[k].as_array()
            .unwrap()
            .iter()
            .map(|r| r["label"].as_str().unwrap().to_string())
            .collect()
    };
    let reasons = s["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_string(),
                r["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    (labels("keep"), labels("remove"), reasons)
}

fn world() -> World {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 10);
    w.site("a.example.com", &p);
    w.site("b.example.com", &p);
    for (label, time) in TIMES {
        let args: Vec<&str> = if *label == "C" {
            vec!["checkpoint", "a.example.com", "--label", "C"]
        } else {
            vec![
                "snapshot",
                "a.example.com",
                "--kind",
                "scheduled",
                "--label",
                label,
            ]
        };
        run(&w, &args, time).ok();
    }
    for (label, time) in [
        ("b1", "2026-11-19T15:00:00Z"),
        ("b2", "2026-11-20T03:00:00Z"),
        ("b3", "2026-11-20T03:30:00Z"),
    ] {
        run(&w, &["snapshot", "b.example.com", "--label", label], time).ok();
    }
    w
}

#[test]
fn each_policy_keeps_exactly_the_hand_computed_set() {
    let w = world();
    let all_a: BTreeSet<String> = TIMES.iter().map(|t| t.0.to_string()).collect();
    for (flags, want) in TABLE {
        let mut args = vec!["prune", "--dry-run", "--json"];
        args.extend_from_slice(flags);
        let v = run(&w, &args, NOW).ok().json();
        let (kept, removed, reasons) = site_result(&v, "a.example.com");
        assert_eq!(kept, set(want), "policy {flags:?}");
        let rest: BTreeSet<String> = all_a.difference(&kept).cloned().collect();
        assert_eq!(removed, rest, "policy {flags:?}");
        assert!(
            reasons["C"].contains(&"pinned".to_string()),
            "{flags:?}: {:?}",
            reasons["C"]
        );
        // Per site: b's three snapshots are judged on their own.
        let (b_kept, _, _) = site_result(&v, "b.example.com");
        assert!(!b_kept.is_empty(), "{flags:?}");
    }
    // Nothing was removed by the dry runs.
    assert_eq!(w.snapshot_count(), 20);
}

#[test]
fn reasons_name_the_bucket() {
    let w = world();
    let v = run(
        &w,
        &[
            "prune",
            "--dry-run",
            "--json",
            "--keep-last",
            "2",
            "--keep-daily",
            "3",
            "--keep-weekly",
            "2",
            "--keep-monthly",
            "6",
            "--keep-yearly",
            "3",
        ],
        NOW,
    )
    .ok()
    .json();
    let (_, _, r) = site_result(&v, "a.example.com");
    let r = |l: &str| r[l].join(", ");
    assert_eq!(
        r("s16"),
        "last #1, daily 2026-11-20, weekly 2026-W47, monthly 2026-11, yearly 2026"
    );
    assert_eq!(r("s15"), "last #2");
    assert_eq!(r("s14"), "daily 2026-11-19");
    assert_eq!(r("s10"), "weekly 2026-W46");
    assert_eq!(r("C"), "pinned, monthly 2026-02");
    assert_eq!(r("s02"), "yearly 2025");
    assert_eq!(r("s01"), "oldest yearly 2025");
    // b keeps its own newest as last #1 and #2: grouping is per site.
    let (b, _, br) = site_result(&v, "b.example.com");
    assert!(b.contains("b3") && b.contains("b2"));
    assert_eq!(br["b3"][0], "last #1");
    // The human form shows the same.
    let h = run(
        &w,
        &[
            "prune",
            "--dry-run",
            "--keep-daily",
            "4",
            "--site",
            "a.example.com",
        ],
        NOW,
    )
    .ok();
    assert!(
        h.stdout.contains("a.example.com: keep 4 daily"),
        "{}",
        h.stdout
    );
    assert!(h.stdout.contains("daily 2026-11-18"), "{}", h.stdout);
    assert!(h.stdout.contains("pinned  [C]"), "{}", h.stdout);
    assert!(!h.stdout.contains("b.example.com"), "{}", h.stdout);
    assert!(
        h.stdout.contains("would remove 12 snapshot(s)"),
        "{}",
        h.stdout
    );
}

#[test]
fn prune_removes_exactly_the_table_set_and_protects_young_undo_points() {
    let w = world();
    // Restore and migrate take these kinds (a real restore is in tests/ops_cli.rs); here two
    // snapshots of the table are relabelled so the undo points sit at chosen times: s13 (1.4
    // days old, protected) and s05 (old, not protected).
    let c = w.catalog();
    c.execute(
        "UPDATE snapshots SET kind = 'pre-restore' WHERE label = 's13'",
        [],
    )
    .unwrap();
    c.execute(
        "UPDATE snapshots SET kind = 'pre-migrate' WHERE label = 's05'",
        [],
    )
    .unwrap();
    drop(c);
    let v = run(
        &w,
        &[
            "prune",
            "--json",
            "--site",
            "a.example.com",
            "--keep-last",
            "3",
        ],
        NOW,
    )
    .ok()
    .json();
    let (kept, _, reasons) = site_result(&v, "a.example.com");
    assert_eq!(kept, set(&["s16", "s15", "s14", "s13", "C"]));
    assert_eq!(reasons["s13"], ["pre-restore younger than 7 days"]);
    assert_eq!(v["removed"], 12);
    let l = w.run(&["list", "a.example.com", "--json"]).ok().json();
    let left: BTreeSet<String> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, set(&["s16", "s15", "s14", "s13", "C"]));
    // --site left b alone.
    assert_eq!(w.snapshot_count(), 5 + 3);
    // Eight days later s13 is no longer protected; the checkpoint still is.
    run(
        &w,
        &["prune", "--site", "a.example.com", "--keep-last", "1"],
        "2026-11-28T12:00:00Z",
    )
    .ok();
    let l = w.run(&["list", "a.example.com", "--json"]).ok().json();
    let left: BTreeSet<String> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, set(&["s16", "C"]));
    // What is left is intact after gc.
    let g = w.run(&["gc", "--json"]).ok().json();
    assert_eq!(g["snapshots"], 5, "{g}");
    let v = w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(v["ok"], true);
}
