//! Generates a small Aegir-style world for the quick start: a Drupal-like platform, one site
//! folder with an SQLite database, and a vhost and drush alias naming the platform.
//! Usage: `cargo run --release --example make_demo_site -- <folder>`; prints the paths.

use std::fs;
use std::path::Path;

fn main() {
    let root = std::env::args()
        .nth(1)
        .expect("usage: make_demo_site <folder>");
    let root = Path::new(&root);
    let platform = root.join("platforms/drupal-7.98");
    let uri = "demo.example.com";
    for d in [
        "includes",
        "modules/node",
        "modules/system",
        "sites/all/modules",
        "sites/default",
        "themes/bartik",
    ] {
        fs::create_dir_all(platform.join(d)).unwrap();
    }
    for i in 0..500 {
        let d = [
            "includes",
            "modules/node",
            "modules/system",
            "sites/all/modules",
            "themes/bartik",
        ][i % 5];
        fs::write(
            platform.join(d).join(format!("file{i}.php")),
            format!("<?php\n// demo code file {i}\nfunction demo_{i}() {{ return {i}; }}\n"),
        )
        .unwrap();
    }
    fs::write(platform.join("index.php"), "<?php // front controller\n").unwrap();
    let site = platform.join("sites").join(uri);
    fs::create_dir_all(site.join("files")).unwrap();
    fs::write(site.join("settings.php"), "<?php $databases = array();\n").unwrap();
    for i in 0..20 {
        fs::write(
            site.join("files").join(format!("upload{i}.txt")),
            format!("uploaded file {i}\n").repeat(200),
        )
        .unwrap();
    }
    let db = site.join("site.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("CREATE TABLE node (nid INTEGER PRIMARY KEY, title TEXT);")
        .unwrap();
    for i in 0..100 {
        c.execute(
            "INSERT INTO node (title) VALUES (?1)",
            [format!("node {i}")],
        )
        .unwrap();
    }
    let conf = root.join("config");
    fs::create_dir_all(&conf).unwrap();
    let p = platform.display();
    fs::write(
        conf.join("vhost"),
        format!("server {{ server_name {uri}; root {p}; }}\n"),
    )
    .unwrap();
    fs::write(
        conf.join("alias.drushrc.php"),
        format!("<?php $aliases['{uri}'] = array('root' => '{p}', 'uri' => '{uri}');\n"),
    )
    .unwrap();
    println!("{}", platform.display());
}
