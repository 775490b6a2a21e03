//! `sitesnap doctor`: what would make tonight's snapshot fail, reported without changing anything.
use crate::support::*;
use std::fs;

const URI: &str = "blog.example.net";

#[test]
fn doctor_reports_what_would_break_a_snapshot() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 20);
    let site = w.site(URI, &a);
    let r = w.run(&["doctor", "--json"]).ok().json();
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .any(|f| f["message"] == "no snapshot yet")
    );
    w.snapshot(URI);
    let r = w.run(&["doctor"]).ok();
    assert!(r.stdout.contains("1 snapshot(s)"), "{}", r.stdout);
    fs::remove_file(&site.vhost).unwrap();
    fs::remove_file(&site.db).unwrap();
    let r = w.run(&["doctor", URI]).fails(1);
    assert!(r.stdout.contains("binding file"), "{}", r.stdout);
    assert!(
        r.stdout.contains("database file does not exist"),
        "{}",
        r.stdout
    );
}
