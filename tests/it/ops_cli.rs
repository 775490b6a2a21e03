//! Operations commands: pin, unpin, forget (pinned ones need --force or unpin; one bad id
//! changes nothing), stored per-site policies (`site add/set --keep-*`) used by `prune` with no
//! flags, and clear errors for bad policies.
use crate::support::*;

fn world() -> (World, Vec<String>) {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 10);
    w.site("a.example.com", &p);
    w.site("b.example.com", &p);
    let mut ids = Vec::new();
    for (i, t) in [
        "2026-11-17T03:00:00Z",
        "2026-11-18T03:00:00Z",
        "2026-11-19T03:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        for site in ["a.example.com", "b.example.com"] {
            let r = w
                .run_env(
                    &[
                        "snapshot",
                        site,
                        "--label",
                        &format!("{site}-{i}"),
                        "--json",
                    ],
                    &[("SITESNAP_TEST_NOW", t)],
                )
                .ok();
            ids.push(r.json()[0]["id"].as_str().unwrap().to_string());
        }
    }
    (w, ids)
}

fn labels(w: &World, site: &str) -> Vec<String> {
    w.run(&["list", site, "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pinned_snapshots_need_force_or_unpin_to_be_forgotten() {
    let (w, ids) = world();
    let cp = w
        .run(&[
            "checkpoint",
            "a.example.com",
            "--label",
            "before 7.105",
            "--json",
        ])
        .ok()
        .json();
    let cp = cp["id"].as_str().unwrap().to_string();
    assert_eq!(cp.len(), 16);
    // One pinned id among others: refused, nothing forgotten.
    let r = w.run(&["forget", &ids[0], &cp[..8]]).fails(1);
    assert!(
        r.stderr.contains("is pinned (checkpoint \"before 7.105\")"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "sitesnap --repo {} unpin {}",
            w.repo.display(),
            &cp[..8]
        )),
        "{}",
        r.stderr
    );
    assert_eq!(w.snapshot_count(), 7);
    // An unknown id among good ones: refused, nothing forgotten.
    let r = w.run(&["forget", &ids[0], "ffffffff"]).fails(1);
    assert!(
        r.stderr.contains("no snapshot matches id 'ffffffff'"),
        "{}",
        r.stderr
    );
    assert_eq!(w.snapshot_count(), 7);
    // Unpin, then forget works.
    let r = w.run(&["-v", "unpin", &cp]).ok();
    assert!(
        r.stdout
            .starts_with(&format!("unpinned snapshot {}", &cp[..8]))
    );
    let r = w.run(&["-v", "forget", &cp, &ids[0]]).ok();
    assert_eq!(
        r.stdout.matches("forgot snapshot ").count(),
        2,
        "{}",
        r.stdout
    );
    assert_eq!(w.snapshot_count(), 5);
    // Pin a scheduled snapshot: retention keeps it; forget needs --force.
    w.run(&["pin", &ids[2]]).ok();
    let again = w.run(&["-v", "pin", &ids[2]]).ok();
    assert!(again.stdout.contains("already pinned"));
    let v = w
        .run(&[
            "prune",
            "--keep-last",
            "1",
            "--site",
            "a.example.com",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["removed"], 0, "a-1 is pinned, a-2 is the last: {v}");
    assert_eq!(
        labels(&w, "a.example.com"),
        ["a.example.com-1", "a.example.com-2"]
    );
    w.run(&["forget", &ids[2]]).fails(1);
    w.run(&["forget", "--force", &ids[2]]).ok();
    assert_eq!(labels(&w, "a.example.com"), ["a.example.com-2"]);
    // Whatever was forgotten, the rest verifies.
    w.run(&["gc"]).ok();
    w.run(&["verify", "--read-data"]).ok();
}

#[test]
fn stored_policies_drive_prune_without_flags() {
    let (w, _) = world();
    // No policy anywhere: prune does nothing and says so.
    let r = w.run(&["prune"]).ok();
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .contains("no retention policy is stored for any site; nothing pruned"),
        "{}",
        r.stderr
    );
    assert_eq!(w.snapshot_count(), 6);

    w.run(&[
        "site",
        "set",
        "a.example.com",
        "--keep-last",
        "1",
        "--keep-within",
        "1d",
    ])
    .ok();
    let show = w
        .run(&["site", "show", "a.example.com", "--json"])
        .ok()
        .json();
    assert_eq!(
        show["policy"],
        serde_json::json!({"last": 1, "within": "1d"})
    );
    let human = w.run(&["site", "show", "a.example.com"]).ok();
    assert!(
        human
            .stdout
            .contains("retention: keep 1 last, all within 1d of the newest"),
        "{}",
        human.stdout
    );
    // Cron: silent, only the site with a policy is pruned.
    let r = w
        .run_env(&["prune"], &[("SITESNAP_TEST_NOW", "2026-11-20T00:00:00Z")])
        .ok();
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "");
    assert_eq!(labels(&w, "a.example.com"), ["a.example.com-2"]);
    assert_eq!(labels(&w, "b.example.com").len(), 3);
    // With -v it tells which site has no policy.
    let r = w.run(&["-v", "prune"]).ok();
    assert!(
        r.stdout
            .contains("b.example.com: no retention policy stored; nothing pruned"),
        "{}",
        r.stdout
    );
    // `site set` replaces the policy; --clear-policy removes it.
    w.run(&["site", "set", "a.example.com", "--keep-daily", "7"])
        .ok();
    let show = w
        .run(&["site", "show", "a.example.com", "--json"])
        .ok()
        .json();
    assert_eq!(show["policy"], serde_json::json!({"daily": 7}));
    w.run(&["site", "set", "a.example.com", "--clear-policy"])
        .ok();
    let show = w
        .run(&["site", "show", "a.example.com", "--json"])
        .ok()
        .json();
    assert!(show["policy"].is_null());
    // `site add` takes the same flags.
    let p = w.path("platforms/drupal-7.98");
    make_site(w.dir.path(), "c.example.com", &p);
    w.run(&[
        "site",
        "add",
        "c.example.com",
        "--platform",
        p.to_str().unwrap(),
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "6",
    ])
    .ok();
    let show = w
        .run(&["site", "show", "c.example.com", "--json"])
        .ok()
        .json();
    assert_eq!(
        show["policy"],
        serde_json::json!({"weekly": 4, "monthly": 6})
    );
}

#[test]
fn bad_policies_are_usage_errors_that_change_nothing() {
    let (w, _) = world();
    for (args, msg) in [
        (
            &["site", "set", "a.example.com", "--keep-within", "7x"][..],
            "unknown unit 'x'",
        ),
        (
            &["prune", "--keep-within", "1d1d"][..],
            "unit 'd' given twice",
        ),
        (
            &["prune", "--keep-daily", "0"][..],
            "this policy keeps nothing",
        ),
        (&["site", "set", "a.example.com"][..], "--clear-policy"),
        (&["prune", "--keep-daily", "-1"][..], "-1"),
    ] {
        let r = w.run(args).fails(2);
        assert!(r.stderr.contains(msg), "{args:?}: {}", r.stderr);
    }
    let r = w
        .run(&["site", "set", "nope.example.com", "--keep-daily", "3"])
        .fails(1);
    assert!(
        r.stderr.contains("unknown site 'nope.example.com'"),
        "{}",
        r.stderr
    );
    let r = w
        .run(&["prune", "--site", "nope.example.com", "--keep-daily", "3"])
        .fails(1);
    assert!(
        r.stderr.contains("unknown site 'nope.example.com'"),
        "{}",
        r.stderr
    );
    let show = w
        .run(&["site", "show", "a.example.com", "--json"])
        .ok()
        .json();
    assert!(show["policy"].is_null());
    assert_eq!(w.snapshot_count(), 6);
}

#[test]
fn a_restores_pre_restore_snapshot_is_protected_for_seven_days() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 10);
    let site = w.site("a.example.com", &p);
    let at = |args: &[&str], now: &str| w.run_env(args, &[("SITESNAP_TEST_NOW", now)]);
    let s1 = at(
        &["snapshot", "a.example.com", "--json"],
        "2026-11-10T03:00:00Z",
    )
    .ok()
    .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(site.dir.join("files/broken.bin"), noise(3, 1000)).unwrap();
    at(&["restore", &s1, "--yes"], "2026-11-12T10:00:00Z").ok();
    let s2 = at(
        &["snapshot", "a.example.com", "--json"],
        "2026-11-13T03:00:00Z",
    )
    .ok()
    .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = w.run(&["list", "--json"]).ok().json();
    let pre = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "pre-restore")
        .expect("the restore took a pre-restore snapshot")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let decide = |now: &str| {
        let v = at(&["prune", "--keep-last", "1", "--dry-run", "--json"], now)
            .ok()
            .json();
        let site = &v["sites"][0];
        let ids = |k: &str| -> Vec<(String, Vec<String>)> {
            site[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["id"].as_str().unwrap().to_string(),
                        r["reasons"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_str().unwrap().to_string())
                            .collect(),
                    )
                })
                .collect()
        };
        (ids("keep"), ids("remove"))
    };
    // Two days after the restore: the pre-restore snapshot is kept although the policy would
    // drop it.
    let (keep, remove) = decide("2026-11-14T00:00:00Z");
    assert_eq!(
        keep,
        [
            (s2.clone(), vec!["last #1".to_string()]),
            (
                pre.clone(),
                vec!["pre-restore younger than 7 days".to_string()]
            )
        ]
    );
    assert_eq!(remove, [(s1.clone(), vec![])]);
    // Eight days after it: the policy alone decides.
    let (keep, remove) = decide("2026-11-20T12:00:00Z");
    assert_eq!(keep, [(s2.clone(), vec!["last #1".to_string()])]);
    assert_eq!(remove, [(pre.clone(), vec![]), (s1.clone(), vec![])]);
    at(&["prune", "--keep-last", "1"], "2026-11-20T12:00:00Z").ok();
    let left: Vec<String> = w
        .run(&["list", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [s2]);
}

#[test]
fn snapshots_an_unfinished_restore_needs_are_neither_forgotten_nor_pruned() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 10);
    let site = w.site("a.example.com", &p);
    let old = w.snapshot("a.example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(site.dir.join("files/new.bin"), noise(4, 5000)).unwrap();
    let newer = w.snapshot("a.example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = w.run_env(
        &["restore", &old, "--yes"],
        &[("SITESNAP_FAILPOINT", "restore-site")],
    );
    assert_eq!(r.code, -1, "the restore was killed mid-way: {}", r.stderr);
    let list = w.run(&["list", "--json"]).ok().json();
    let pre = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "pre-restore")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for id in [&old, &pre] {
        let r = w.run(&["forget", "--force", id]).fails(1);
        assert!(
            r.stderr.contains("needed by unfinished restore"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains(&format!("sitesnap --repo {} recover", w.repo.display())),
            "{}",
            r.stderr
        );
    }
    let v = w.run(&["prune", "--keep-last", "1", "--json"]).ok().json();
    let kept: Vec<&str> = v["sites"][0]["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        kept.contains(&old.as_str()) && kept.contains(&pre.as_str()),
        "{v}"
    );
    let reasons = v["sites"][0]["keep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == old.as_str())
        .unwrap()["reasons"]
        .to_string();
    assert!(
        reasons.contains("needed by unfinished restore"),
        "{reasons}"
    );
    // Only `newer` could go, and it is the only one the restore does not need.
    assert_eq!(v["removed"], 1, "{v}");
    assert!(!w.run(&["list", "--json"]).ok().stdout.contains(&newer));
    w.run(&["gc"]).ok();
    w.run(&["recover"]).ok();
    w.run(&["verify", "--read-data"]).ok();
}
