//! Site folders that are not a site are refused at registration (`all`, `sites`, `.`,
//! `sites/default`, deeper folders, platform `/`, a platform holding the repository), and a
//! stored site or snapshot that breaks the same rules is refused before a restore.
use super::*;
use std::fs;

#[test]
fn site_folders_that_are_not_a_site_are_refused() {
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    let ps = p.to_string_lossy().into_owned();
    let world_dir = w.dir.path().to_string_lossy().into_owned();
    let before = w.state();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["all", "--platform", &ps], "sites/all"),
        (vec!["default", "--platform", &ps], "sites/default"),
        (
            vec!["x.example.com", "--platform", &ps, "--site-dir", "sites"],
            "'sites'",
        ),
        (
            vec!["x.example.com", "--platform", &ps, "--site-dir", "."],
            "'.'",
        ),
        (
            vec![
                "x.example.com",
                "--platform",
                &ps,
                "--site-dir",
                "sites/all",
            ],
            "sites/all",
        ),
        (
            vec![
                "x.example.com",
                "--platform",
                &ps,
                "--site-dir",
                "sites/a.org/b",
            ],
            "sites/a.org/b",
        ),
        (
            vec!["x.example.com", "--platform", &ps, "--site-dir", "files/x"],
            "files/x",
        ),
        (vec!["x.example.com", "--platform", "/"], "'/'"),
        (
            vec!["x.example.com", "--platform", &world_dir],
            "holds the repository",
        ),
    ];
    for (args, name) in cases {
        let mut all = vec!["site", "add"];
        all.extend(args.iter());
        let r = w.run(&all);
        assert_one_line_error(&r, 1, &[name]);
    }
    assert_eq!(w.state(), before);
    // One folder under sites/ with another valid name is a site folder.
    fs::create_dir_all(p.join("sites/other.example.com")).unwrap();
    w.run(&[
        "site",
        "add",
        "x.example.com",
        "--platform",
        &ps,
        "--site-dir",
        "sites/other.example.com",
    ])
    .ok();
}

#[test]
fn a_stored_site_folder_that_is_not_a_site_is_refused_before_a_restore() {
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    let uri = "shop.example.com";
    w.site(uri, &p);
    let id = w.snapshot(uri)["id"].as_str().unwrap().to_string();
    for (table, bad) in [
        ("snapshots", "sites"),
        ("snapshots", "sites/all"),
        ("sites", "."),
        ("sites", "sites"),
    ] {
        let c = w.catalog();
        let old: String = c
            .query_row(&format!("SELECT site_dir FROM {table} LIMIT 1"), [], |r| {
                r.get(0)
            })
            .unwrap();
        c.execute(&format!("UPDATE {table} SET site_dir = ?1"), [bad])
            .unwrap();
        let before = world_print(&w);
        let r = w.run(&["restore", &id, "--yes"]);
        assert_one_line_error(&r, 1, &[&format!("'{bad}'")]);
        assert_same_world(bad, &world_print(&w), &before);
        c.execute(&format!("UPDATE {table} SET site_dir = ?1"), [old])
            .unwrap();
    }
    w.run(&["restore", &id, "--yes"]).ok();
}
