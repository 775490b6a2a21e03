//! `site set`: changing a site's database URL (with the password from a file) and bindings.
use crate::support::*;
use std::fs;

#[test]
fn site_set_changes_db_and_bindings_without_showing_the_password() {
    let w = World::new();
    let p = w.platform("platforms/p", 10);
    let site = w.site("example.com", &p);
    let pw = w.path("db.pw");
    fs::write(&pw, "S3cr:t@pw\n").unwrap();
    w.run(&[
        "site",
        "set",
        "example.com",
        "--db",
        "mysql://drupal@127.0.0.1:3306/example",
        "--db-password-file",
        &pw.to_string_lossy(),
        "--bind",
        &site.alias.to_string_lossy(),
    ])
    .ok();
    let show = w.run(&["site", "show", "example.com", "--json"]).ok();
    assert!(!show.stdout.contains("S3cr"), "{}", show.stdout);
    let v = show.json();
    assert_eq!(v["db"], "mysql://drupal:***@127.0.0.1:3306/example");
    assert_eq!(v["bindings"].as_array().unwrap().len(), 1);
    // The stored URL carries the password, percent-encoded, for the dump tools.
    let url: String = w
        .catalog()
        .query_row("SELECT db_url FROM sites", [], |r| r.get(0))
        .unwrap();
    let parsed = sitesnap::db::Database::parse(&url).unwrap();
    match parsed {
        sitesnap::db::Database::Mysql(s) => assert_eq!(s.password.as_deref(), Some("S3cr:t@pw")),
        other => panic!("{other:?}"),
    }
    // A binding that does not exist is refused and nothing changes.
    let r = w
        .run(&["site", "set", "example.com", "--bind", "/nonexistent/vhost"])
        .fails(1);
    assert_eq!(r.stderr.lines().count(), 1);
    let v = w
        .run(&["site", "show", "example.com", "--json"])
        .ok()
        .json();
    assert_eq!(v["bindings"].as_array().unwrap().len(), 1);
}
