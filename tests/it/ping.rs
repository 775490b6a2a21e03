//! Monitoring pings (`--ping URL`, or the URL stored with `hooks ping`): start, success and
//! fail requests, Healthchecks style, checked against a local HTTP server; a failing ping is
//! a warning, never a failed backup.
use crate::support::*;
use std::fs;

const URI: &str = "shop.example.com";

fn calls(s: &HttpServer) -> Vec<String> {
    s.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn pings_mark_start_success_and_failure_with_the_reason() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 10);
    let site = w.site(URI, &a);
    let hc = HttpServer::start(200);
    let url = hc.url("/ping/5f1e-key");
    w.run(&["snapshot", URI, "--ping", &url]).ok();
    assert_eq!(
        calls(&hc),
        ["POST /ping/5f1e-key/start", "POST /ping/5f1e-key"]
    );
    w.run(&["checkpoint", URI, "--label", "before 7.99", "--ping", &url])
        .ok();
    assert_eq!(calls(&hc).len(), 4);
    // A failed snapshot: the fail URL, with the reason in the body.
    fs::remove_file(&site.db).unwrap();
    let r = w.run(&["snapshot", URI, "--ping", &url]);
    assert_ne!(r.code, 0);
    let reqs = hc.requests();
    assert_eq!(reqs.len(), 6, "{:?}", calls(&hc));
    assert_eq!(reqs[4].path, "/ping/5f1e-key/start");
    assert_eq!(reqs[5].path, "/ping/5f1e-key/fail");
    assert!(
        reqs[5].body.contains("database file does not exist"),
        "{}",
        reqs[5].body
    );
    // A stored URL serves the runs that give none; prune pings too.
    let stored = HttpServer::start(200);
    w.run(&["hooks", "ping", &stored.url("/hc/stored")]).ok();
    let listed = w.run(&["hooks", "list"]).ok().stdout;
    assert!(listed.contains("ping"), "{listed}");
    assert!(
        !listed.contains("/hc/stored"),
        "the key is not shown: {listed}"
    );
    w.run(&["prune", "--keep-last", "5"]).ok();
    assert_eq!(calls(&stored), ["POST /hc/stored/start", "POST /hc/stored"]);
    w.run(&["hooks", "ping", "--unset"]).ok();
    w.run(&["prune", "--keep-last", "5"]).ok();
    assert_eq!(calls(&stored).len(), 2);
    // Not a URL: refused, nothing stored.
    let r = w.run(&["hooks", "ping", "ftp://x/y"]);
    assert_ne!(r.code, 0);
    assert!(
        !fs::read_to_string(w.repo.join("hooks.json"))
            .unwrap()
            .contains("ftp")
    );
}

#[test]
fn a_failing_ping_is_a_warning_not_a_failed_backup() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 10);
    w.site(URI, &a);
    let broken = HttpServer::start(500);
    let r = w
        .run(&["snapshot", URI, "--ping", &broken.url("/hc/key")])
        .ok();
    assert!(
        r.stderr
            .contains("warning: ping to http://127.0.0.1/… answered HTTP 500"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("/hc/key"), "{}", r.stderr);
    assert_eq!(w.snapshot_count(), 1);
    // Nobody listening at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = w
        .run(&[
            "snapshot",
            URI,
            "--ping",
            &format!("http://127.0.0.1:{port}/hc/key"),
        ])
        .ok();
    assert!(r.stderr.contains("warning: ping to"), "{}", r.stderr);
    assert_eq!(w.snapshot_count(), 2);
}
