//! The harness itself works and a basic snapshot round trip is listed.
use crate::support::*;

#[test]
fn snapshot_is_listed_with_its_parts() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 300);
    w.site("example.com", &p);
    let s = w.snapshot("example.com");
    assert_eq!(s["site"], "example.com");
    assert!(s["files"].as_u64().unwrap() > 300);
    assert!(s["platform_tree"].is_string());
    assert!(s["site_tree"].is_string());
    assert!(s["db_dump"].is_string());
    let list = w.run(&["list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

/// `sitesnap list | head -0`: a closed stdout ends the process quietly with status 141, as
/// SIGPIPE would, and without a panic message (SIGPIPE itself stays ignored, so a database
/// client that exits early makes a write fail instead of killing sitesnap).
#[test]
fn closed_stdout_ends_quietly() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 20);
    w.site("example.com", &p);
    w.snapshot("example.com");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let bin = env!("CARGO_BIN_EXE_sitesnap");
    let out = std::process::Command::new(bin)
        .env("SITESNAP_REPO", &w.repo)
        .args(["list"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "stderr: {err}");
    assert!(err.is_empty(), "no message on a closed stdout: {err}");
}
