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
