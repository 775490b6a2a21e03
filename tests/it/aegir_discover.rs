//! `discover --aegir`: an `/var/aegir`-shaped tree (drush aliases, nginx and Apache vhosts with
//! `db_*` credentials, a drushrc.php, a hostmaster alias, platform and server aliases), sites
//! registered with their databases on MariaDB, PostgreSQL and SQLite, credentials read from the
//! vhost at each run (a rotated password is picked up), read-only discovery without a
//! repository, and the warning for a site without a database.
use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};

/// An Aegir home under the world: `.drush/` and `config/server_master/{nginx,apache}/vhost.d`.
pub struct AegirHome {
    pub home: PathBuf,
}

impl AegirHome {
    pub fn new(w: &World) -> AegirHome {
        let home = w.path("aegir");
        for d in [
            ".drush",
            "config/server_master/nginx/vhost.d",
            "config/server_master/apache/vhost.d",
        ] {
            fs::create_dir_all(home.join(d)).unwrap();
        }
        AegirHome { home }
    }

    /// Writes `<name>.alias.drushrc.php` for a site `uri` on `platform`.
    pub fn alias(&self, name: &str, uri: &str, platform: &Path) -> PathBuf {
        let p = self.home.join(format!(".drush/{name}.alias.drushrc.php"));
        fs::write(
            &p,
            format!(
                "<?php\n$aliases['{name}'] = array (\n  'context_type' => 'site',\n  'platform' => '@platform_x',\n  'root' => '{r}',\n  'uri' => '{uri}',\n  'site_path' => '{r}/sites/{uri}',\n  'db_server' => '@server_localhost',\n);\n",
                r = platform.display()
            ),
        )
        .unwrap();
        p
    }

    /// Writes an nginx vhost for `uri` with `db_*` credentials (`creds`: type, name, user,
    /// password, host, port).
    pub fn nginx(&self, uri: &str, platform: &Path, creds: &[(&str, &str)]) -> PathBuf {
        let mut t = format!(
            "server {{\n  listen 80;\n  server_name {uri};\n  root {};\n",
            platform.display()
        );
        for (k, v) in creds {
            t.push_str(&format!("  fastcgi_param db_{k} {v};\n"));
        }
        t.push_str("}\n");
        let p = self
            .home
            .join("config/server_master/nginx/vhost.d")
            .join(uri);
        fs::write(&p, t).unwrap();
        p
    }

    /// Writes an Apache vhost for `uri` with `SetEnv db_*` credentials.
    pub fn apache(&self, uri: &str, platform: &Path, creds: &[(&str, &str)]) -> PathBuf {
        let mut t = format!(
            "<VirtualHost *:80>\n  ServerName {uri}\n  DocumentRoot {}\n",
            platform.display()
        );
        for (k, v) in creds {
            t.push_str(&format!("  SetEnv db_{k} {v}\n"));
        }
        t.push_str("</VirtualHost>\n");
        let p = self
            .home
            .join("config/server_master/apache/vhost.d")
            .join(uri);
        fs::write(&p, t).unwrap();
        p
    }

    pub fn home_str(&self) -> String {
        self.home.to_string_lossy().into_owned()
    }
}

/// A site folder with settings.php and a file.
fn site_folder(platform: &Path, uri: &str) -> PathBuf {
    let d = platform.join("sites").join(uri);
    fs::create_dir_all(d.join("files")).unwrap();
    fs::write(d.join("settings.php"), "<?php\n").unwrap();
    fs::write(d.join("files/a.txt"), uri).unwrap();
    d
}

fn server_creds(db: &TestDb, user: &str, pw: &str) -> Vec<(String, String)> {
    let (ty, port) = match db.engine {
        Engine::Mysql => ("mysql", "3306"),
        Engine::Postgres => ("pgsql", "5432"),
    };
    [
        ("type", ty),
        ("name", db.name.as_str()),
        ("user", user),
        ("passwd", pw),
        ("host", "127.0.0.1"),
        ("port", port),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn refs(c: &[(String, String)]) -> Vec<(&str, &str)> {
    c.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Every byte of every file under `root`, for "the password is nowhere" checks.
fn contains_anywhere(root: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            fs::read(e.path())
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|e| e.path().to_path_buf())
        .collect()
}

#[test]
fn discover_registers_complete_sites_on_mariadb_postgres_and_sqlite() {
    let (Some(my), Some(pg)) = (
        TestDb::create(Engine::Mysql, "disc"),
        TestDb::create(Engine::Postgres, "disc"),
    ) else {
        return;
    };
    my.create_user("disc_my", "MyPw-1x");
    my.sql("CREATE TABLE node (nid INT PRIMARY KEY, title VARCHAR(20)); INSERT INTO node VALUES (1, 'hello');");
    pg.create_user("disc_pg", "PgPw-1x");
    pg.sql_as("disc_pg", "PgPw-1x", "CREATE TABLE node (nid INT PRIMARY KEY, title TEXT); INSERT INTO node VALUES (1, 'hello');");
    // Encrypted: the vhost (a binding, stored by every snapshot) holds the password; only an
    // encrypted store keeps it unreadable, and then it must be found nowhere in the repository.
    let w = World::encrypted();
    let a = AegirHome::new(&w);
    let p = w.platform("aegir/platforms/drupal-7.98", 10);
    // MariaDB site: nginx vhost.
    site_folder(&p, "my.example.com");
    a.alias("my.example.com", "my.example.com", &p);
    a.nginx(
        "my.example.com",
        &p,
        &refs(&server_creds(&my, "disc_my", "MyPw-1x")),
    );
    // PostgreSQL site: Apache vhost.
    site_folder(&p, "pg.example.com");
    a.alias("pg.example.com", "pg.example.com", &p);
    a.apache(
        "pg.example.com",
        &p,
        &refs(&server_creds(&pg, "disc_pg", "PgPw-1x")),
    );
    // The hostmaster site, SQLite, credentials in its drushrc.php; its vhost has none.
    let hm = site_folder(&p, "aegir.example.com");
    let sqlite = hm.join("hostmaster.sqlite");
    rusqlite::Connection::open(&sqlite)
        .unwrap()
        .execute_batch("CREATE TABLE node (nid INTEGER PRIMARY KEY, title TEXT); INSERT INTO node VALUES (1, 'hm');")
        .unwrap();
    fs::write(
        hm.join("drushrc.php"),
        format!(
            "<?php\n$options['db_type'] = 'sqlite';\n$options['db_name'] = '{}';\n",
            sqlite.display()
        ),
    )
    .unwrap();
    a.alias("hostmaster", "aegir.example.com", &p);
    a.nginx("aegir.example.com", &p, &[]);
    // A site whose folder is gone and which has no credentials.
    a.alias("gone.example.com", "gone.example.com", &p);
    // Platform and server aliases are not sites.
    fs::write(
        a.home.join(".drush/platform_drupal798.alias.drushrc.php"),
        format!("<?php $aliases['platform_drupal798'] = array('context_type' => 'platform', 'root' => '{}');", p.display()),
    )
    .unwrap();
    fs::write(
        a.home.join(".drush/server_master.alias.drushrc.php"),
        "<?php $aliases['server_master'] = array('context_type' => 'server', 'remote_host' => 'localhost');",
    )
    .unwrap();

    // Read-only, without a repository: nothing is created.
    let none = w.path("no-repo");
    let r = w.run_env(
        &["discover", "--aegir", &a.home_str(), "--json"],
        &[("SITESNAP_REPO", &none.to_string_lossy())],
    );
    let r = r.ok();
    let found = r.json();
    assert!(!none.exists());
    let uris: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "aegir.example.com",
            "gone.example.com",
            "my.example.com",
            "pg.example.com"
        ]
    );
    let by = |u: &str| {
        found
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["uri"] == u)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by("gone.example.com")["problems"],
        serde_json::json!(["site-folder-missing", "no-database-credentials"])
    );
    assert_eq!(by("my.example.com")["problems"], serde_json::json!([]));
    assert_eq!(by("pg.example.com")["problems"], serde_json::json!([]));
    let hmf = by("aegir.example.com");
    assert_eq!(hmf["problems"], serde_json::json!([]), "{hmf}");
    assert!(
        hmf["credentials"]
            .as_str()
            .unwrap()
            .ends_with("drushrc.php")
    );
    assert!(
        by("my.example.com")["db"]
            .as_str()
            .unwrap()
            .contains(&my.name)
    );
    assert!(!r.stdout.contains("MyPw-1x") && !r.stdout.contains("PgPw-1x"));

    // --add registers the complete sites, each with its database.
    let r = w.run(&["discover", "--aegir", &a.home_str(), "--add"]).ok();
    assert!(r.stdout.contains("site folder missing"), "{}", r.stdout);
    assert!(
        r.stderr.contains("gone.example.com: not added"),
        "{}",
        r.stderr
    );
    let sites = w.run(&["site", "list", "--json"]).ok().json();
    assert_eq!(sites.as_array().unwrap().len(), 3, "{sites}");
    let r = w.run(&["snapshot", "--all", "--json"]).ok();
    let snaps = r.json();
    for s in snaps.as_array().unwrap() {
        assert!(s["db_url"].is_string(), "{s}");
    }
    let kinds: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["db_kind"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(kinds, ["sqlite", "mysql", "postgres"], "{snaps}");
    assert!(!r.stderr.contains("without a database"), "{}", r.stderr);
    // No password was copied into the repository.
    for pw in ["MyPw-1x", "PgPw-1x"] {
        assert_eq!(
            contains_anywhere(&w.repo, pw),
            Vec::<PathBuf>::new(),
            "{pw}"
        );
    }
    // A second discover marks them registered and adds nothing.
    let r = w.run(&["discover", "--aegir", &a.home_str()]).ok();
    assert_eq!(r.stdout.matches("(registered)").count(), 3, "{}", r.stdout);
}

#[test]
fn a_password_rotated_in_the_vhost_is_picked_up_by_the_next_snapshot() {
    let Some(my) = TestDb::create(Engine::Mysql, "rot") else {
        return;
    };
    let user = format!("rot{}", &my.name[my.name.len() - 6..]);
    my.create_user(&user, "First-Pw1");
    my.sql("CREATE TABLE node (nid INT PRIMARY KEY); INSERT INTO node VALUES (1);");
    // Encrypted: the vhost (a binding, stored by every snapshot) holds the password; only an
    // encrypted store keeps it unreadable, and then it must be found nowhere in the repository.
    let w = World::encrypted();
    let a = AegirHome::new(&w);
    let p = w.platform("aegir/platforms/d7", 5);
    let uri = "rot.example.com";
    site_folder(&p, uri);
    a.alias(uri, uri, &p);
    a.nginx(uri, &p, &refs(&server_creds(&my, &user, "First-Pw1")));
    w.run(&["discover", "--aegir", &a.home_str(), "--add"]).ok();
    let first = w.snapshot(uri);
    assert_eq!(first["db_kind"], "mysql");
    // Aegir's Migrate rotates the password: the server and the vhost change, the catalogue not.
    for host in ["localhost", "%"] {
        my.admin_sql(&format!(
            "ALTER USER '{user}'@'{host}' IDENTIFIED BY 'Second-Pw2';"
        ));
    }
    a.nginx(uri, &p, &refs(&server_creds(&my, &user, "Second-Pw2")));
    let second = w.snapshot(uri);
    assert_eq!(second["db_kind"], "mysql");
    assert_ne!(first["id"], second["id"]);
    for pw in ["First-Pw1", "Second-Pw2"] {
        assert_eq!(
            contains_anywhere(&w.repo, pw),
            Vec::<PathBuf>::new(),
            "{pw}"
        );
    }
    // A restore of the second snapshot reads the credentials from the vhost as it is then.
    my.sql("INSERT INTO node VALUES (2);");
    let id = second["id"].as_str().unwrap();
    w.run(&["restore", id, "--yes"]).ok();
    assert_eq!(my.sql("SELECT COUNT(*) FROM node;").trim(), "1");
    // A vhost with a wrong password fails the snapshot and records nothing.
    let before = w.snapshot_count();
    a.nginx(uri, &p, &refs(&server_creds(&my, &user, "Wrong-Pw3")));
    let r = w.run(&["snapshot", uri]).fails(1);
    assert!(!r.stderr.contains("Wrong-Pw3"), "{}", r.stderr);
    assert_eq!(w.snapshot_count(), before);
}

#[test]
fn discover_says_where_it_looked_when_it_finds_nothing() {
    let w = World::new();
    let a = AegirHome::new(&w);
    let r = w.run(&["discover", "--aegir", &a.home_str()]).ok();
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("no Aegir sites found"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{}/.drush", a.home_str())),
        "{}",
        r.stderr
    );
    let r = w
        .run(&["discover", "--aegir", &w.path("nowhere").to_string_lossy()])
        .fails(1);
    assert!(r.stderr.contains("an Aegir home"), "{}", r.stderr);
}

#[test]
fn a_snapshot_of_a_site_without_a_database_warns() {
    let w = World::new();
    let p = w.platform("platforms/p", 5);
    site_folder(&p, "nodb.example.com");
    w.run(&[
        "site",
        "add",
        "nodb.example.com",
        "--platform",
        &p.to_string_lossy(),
    ])
    .ok();
    let r = w.run(&["snapshot", "nodb.example.com"]).ok();
    assert!(
        r.stderr.contains("has no database registered"),
        "{}",
        r.stderr
    );
    let metrics = w.path("m.prom");
    let r = w
        .run(&["snapshot", "--all", "--metrics", &metrics.to_string_lossy()])
        .ok();
    assert!(
        r.stderr
            .contains("1 site(s) snapshotted without a database: nodb.example.com"),
        "{}",
        r.stderr
    );
    let m = fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("sitesnap_site_has_database{site=\"nodb.example.com\"} 0"),
        "{m}"
    );
}
