//! `rehearse`: a throw-away clone of the site on the target platform (temporary URI, copied
//! folder, scratch database), the preflight, the update command and the URL check against it,
//! a report; the live site (both platforms, its folder, its database) stays byte-identical,
//! and a killed rehearsal is cleaned by `recover` or the next `rehearse`.
use crate::preflight::{SYSTEM_DDL, URI, system_inserts, world};
use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};

/// The live site's state: both platforms' trees and the database's checksum.
#[derive(Debug, PartialEq)]
struct Live {
    a: Vec<String>,
    b: Vec<String>,
    db: String,
}

fn live(a: &Path, b: &Path, db: &dyn Fn() -> String) -> Live {
    Live {
        a: listing(a),
        b: listing(b),
        db: db(),
    }
}

/// Clone folders left on platform `b`.
fn clones(b: &Path) -> Vec<PathBuf> {
    fs::read_dir(b.join("sites"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("rehearse-")
        })
        .collect()
}

fn markers(w: &World) -> usize {
    fs::read_dir(w.repo.join("rehearsals"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The preflight world with an SQLite database (a `system` table) inside the site folder and
/// a settings.php naming it; registered.
fn sqlite_world() -> (World, PathBuf, PathBuf, PathBuf) {
    let (w, a, b, site) = world();
    let db = site.join("site.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!("{SYSTEM_DDL};\n{}", system_inserts()))
        .unwrap();
    drop(c);
    fs::write(
        site.join("settings.php"),
        format!(
            "<?php\n$databases['default']['default'] = array('driver' => 'sqlite', 'database' => '{}');\n",
            db.display()
        ),
    )
    .unwrap();
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &a.to_string_lossy(),
        "--db",
        &format!("sqlite://{}", db.display()),
    ])
    .ok();
    (w, a, b, db)
}

fn file_sum(p: &Path) -> String {
    sha_hex(&fs::read(p).unwrap())
}

#[test]
fn rehearse_on_sqlite_leaves_the_live_site_identical_and_reports() {
    let (w, a, b, db) = sqlite_world();
    let before = live(&a, &b, &|| file_sum(&db));
    let server = HttpServer::start(200);
    let cmd = "printf 'site=%s type=%s live=%s\\n' \"$SITESNAP_SITE\" \"$db_type\" \"$SITESNAP_LIVE_SITE\"; \
               sqlite3 \"$db_name\" 'UPDATE system SET status = 0; CREATE TABLE updated (x INT);' && \
               echo changed > \"$SITESNAP_SITE_DIR/files/new.txt\" && \
               grep -c \"$db_name\" \"$SITESNAP_SITE_DIR/settings.php\"";
    let r = w
        .run(&[
            "rehearse",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--update-cmd",
            cmd,
            "--check-url",
            &server.url("/user/login"),
            "--json",
        ])
        .fails(1);
    let j = r.json();
    let clone_uri = j["clone_uri"].as_str().unwrap().to_string();
    assert!(
        clone_uri.starts_with("rehearse-") && clone_uri.ends_with(URI),
        "{j}"
    );
    // The preflight names the missing module (so the rehearsal fails) and the moved one.
    let findings = j["preflight"]["findings"].to_string();
    assert!(findings.contains("ctools"), "{findings}");
    assert!(findings.contains("contrib/views"), "{findings}");
    assert_eq!(j["passed"], false);
    // The update command ran against the clone: its URI, its copy of the database, whose
    // settings.php was pointed at the copy.
    let u = &j["update"];
    assert_eq!(u["ok"], true, "{j}");
    let tail = u["tail"].to_string();
    assert!(
        tail.contains(&format!("site={clone_uri} type=sqlite live={URI}")),
        "{tail}"
    );
    assert!(
        tail.contains("\"1\""),
        "settings.php names the copy: {tail}"
    );
    assert_eq!(j["repointed"][0], "settings.php");
    // The URL was fetched with the clone's Host.
    assert_eq!(j["http"]["status"], 200);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].host, clone_uri);
    assert_eq!(reqs[0].path, "/user/login");
    // Nothing left, nothing changed, no snapshot taken.
    assert!(clones(&b).is_empty(), "{:?}", clones(&b));
    assert_eq!(markers(&w), 0);
    assert_eq!(live(&a, &b, &|| file_sum(&db)), before);
    assert_eq!(w.snapshot_count(), 0);
    assert_eq!(sqlite_rows(&db, "system").len(), 8);
    // The text report says the same, fit for a ticket.
    let r = w
        .run(&["rehearse", URI, "--to", &b.to_string_lossy()])
        .fails(1);
    for want in [
        "MISSING",
        "module 'ctools' is enabled but missing",
        "removed clone folder",
        "result:     FAILED (preflight: 1 enabled extension(s) missing on the target)",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }
    assert_eq!(live(&a, &b, &|| file_sum(&db)), before);
}

#[test]
fn a_failing_update_command_fails_the_report_and_still_cleans_up() {
    let (w, a, b, db) = sqlite_world();
    // A target that has every module: only the update command can fail the rehearsal.
    fs::create_dir_all(b.join("sites/all/modules/ctools")).unwrap();
    fs::write(b.join("sites/all/modules/ctools/ctools.module"), "<?php\n").unwrap();
    let before = live(&a, &b, &|| file_sum(&db));
    let r = w
        .run(&[
            "rehearse",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--update-cmd",
            "echo 'Performing system_update_7081'; echo 'Call to undefined function node_types_rebuild()' >&2; exit 4",
        ])
        .fails(1);
    assert!(
        r.stdout
            .contains("result:     FAILED (the update command failed)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("node_types_rebuild"), "{}", r.stdout);
    // Streamed to the terminal too.
    assert!(
        r.stderr.contains("Performing system_update_7081"),
        "{}",
        r.stderr
    );
    assert!(clones(&b).is_empty());
    assert_eq!(markers(&w), 0);
    assert_eq!(live(&a, &b, &|| file_sum(&db)), before);
    // The same with a passing command passes.
    let r = w
        .run(&[
            "rehearse",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--update-cmd",
            "true",
        ])
        .ok();
    assert!(r.stdout.contains("result:     PASSED"), "{}", r.stdout);
    assert_eq!(live(&a, &b, &|| file_sum(&db)), before);
}

#[test]
fn keep_keeps_the_clone() {
    let (w, _a, b, _db) = sqlite_world();
    let r = w
        .run(&[
            "rehearse",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--keep",
            "--json",
        ])
        .fails(1);
    let j = r.json();
    let dir = PathBuf::from(j["clone_dir"].as_str().unwrap());
    assert_eq!(clones(&b), vec![dir.clone()]);
    // Its database is a copy in its folder, the settings point there.
    assert_eq!(sqlite_rows(&dir.join("site.sqlite"), "system").len(), 8);
    let settings = fs::read_to_string(dir.join("settings.php")).unwrap();
    assert!(settings.contains(&dir.join("site.sqlite").display().to_string()));
    assert_eq!(markers(&w), 0, "a kept clone is not cleaned by recover");
    w.run(&["recover"]).ok();
    assert!(dir.is_dir());
}

/// The server suites' world: the site's database on `engine`, with a `system` table.
fn server_world(engine: Engine, tag: &str) -> Option<(World, PathBuf, PathBuf, TestDb)> {
    let my = TestDb::create(engine, tag)?;
    my.sql(&format!("{SYSTEM_DDL};\n{}", system_inserts()));
    let (w, a, b, _site) = world();
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &a.to_string_lossy(),
        "--db",
        &my.url(),
    ])
    .ok();
    Some((w, a, b, my))
}

/// The scratch databases of `db` on its server.
fn scratch_dbs(db: &TestDb) -> Vec<String> {
    let q = match db.engine {
        Engine::Mysql => format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_rh%';",
            db.name
        ),
        Engine::Postgres => format!(
            "SELECT datname FROM pg_database WHERE datname LIKE '{}\\_rh%';",
            db.name
        ),
    };
    db.admin_sql(&q)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The update command that changes the scratch database through the engine's client.
fn client_update(engine: Engine) -> &'static str {
    match engine {
        Engine::Mysql => {
            "MYSQL_PWD=\"$db_passwd\" mysql -h \"$db_host\" -P \"$db_port\" -u \"$db_user\" \"$db_name\" -e 'UPDATE system SET status = 0; CREATE TABLE updated (x INT);' && echo \"updated $db_name\""
        }
        Engine::Postgres => {
            "PGPASSWORD=\"$db_passwd\" psql -X -q -h \"$db_host\" -p \"$db_port\" -U \"$db_user\" -d \"$db_name\" -c 'UPDATE system SET status = 0; CREATE TABLE updated (x INT);' && echo \"updated $db_name\""
        }
    }
}

fn rehearse_on_a_server(engine: Engine) {
    let Some((w, a, b, my)) = server_world(engine, "reh") else {
        return;
    };
    let sum = || {
        format!(
            "{:?} {:?}",
            my.table_digest("system", "filename"),
            my.tables()
        )
    };
    let before = live(&a, &b, &sum);
    let r = w
        .run(&[
            "rehearse",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--update-cmd",
            client_update(engine),
            "--json",
        ])
        .fails(1);
    let j = r.json();
    assert_eq!(j["update"]["ok"], true, "{j}");
    let scratch = j["scratch_db"].as_str().unwrap();
    assert!(scratch.contains(&format!("{}_rh", my.name)), "{scratch}");
    assert!(
        j["update"]["tail"]
            .to_string()
            .contains(&format!("updated {}_rh", my.name)),
        "{j}"
    );
    assert!(j["preflight"]["findings"].to_string().contains("ctools"));
    assert!(
        j["cleaned"]
            .to_string()
            .contains("dropped scratch database"),
        "{j}"
    );
    assert!(scratch_dbs(&my).is_empty(), "{:?}", scratch_dbs(&my));
    assert!(clones(&b).is_empty());
    assert_eq!(live(&a, &b, &sum), before);
    // --keep keeps the scratch database (with the update's changes) and the folder.
    let j = w
        .run(&[
            "rehearse",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--keep",
            "--update-cmd",
            client_update(engine),
            "--json",
        ])
        .fails(1)
        .json();
    let kept = scratch_dbs(&my);
    assert_eq!(kept.len(), 1, "{j}");
    let kept_dir = clones(&b);
    assert_eq!(kept_dir.len(), 1);
    assert_eq!(PathBuf::from(j["clone_dir"].as_str().unwrap()), kept_dir[0]);
    fs::remove_dir_all(&kept_dir[0]).unwrap();
    assert_eq!(live(&a, &b, &sum), before);
    let drop = match engine {
        Engine::Mysql => format!("DROP DATABASE `{}`;", kept[0]),
        Engine::Postgres => format!("DROP DATABASE \"{}\" WITH (FORCE);", kept[0]),
    };
    my.admin_sql(&drop);
}

#[test]
fn rehearse_on_mariadb_leaves_the_live_database_identical() {
    rehearse_on_a_server(Engine::Mysql);
}

#[test]
fn rehearse_on_postgresql_leaves_the_live_database_identical() {
    rehearse_on_a_server(Engine::Postgres);
}

#[test]
fn a_killed_rehearsal_is_cleaned_by_recover_and_by_the_next_rehearsal() {
    let Some((w, a, b, my)) = server_world(Engine::Mysql, "rkill") else {
        return;
    };
    let sum = || {
        format!(
            "{:?} {:?}",
            my.table_digest("system", "filename"),
            my.tables()
        )
    };
    let before = live(&a, &b, &sum);
    let to = b.to_string_lossy().into_owned();
    // Killed (SIGKILL) once the clone exists: folder and scratch database are left.
    let r = w.run_env(
        &["rehearse", URI, "--to", &to],
        &[("SITESNAP_FAILPOINT", "rehearse-cloned")],
    );
    assert_eq!(r.code, -1, "killed: {}", r.stderr);
    assert_eq!(clones(&b).len(), 1);
    assert_eq!(scratch_dbs(&my).len(), 1);
    assert_eq!(markers(&w), 1);
    let r = w.run(&["recover"]).ok();
    assert!(r.stdout.contains("removed clone folder"), "{}", r.stdout);
    assert!(
        r.stdout.contains("dropped scratch database"),
        "{}",
        r.stdout
    );
    assert!(clones(&b).is_empty());
    assert!(scratch_dbs(&my).is_empty());
    assert_eq!(markers(&w), 0);
    // Killed during the update command this time; the next rehearsal cleans it first.
    let r = w.run_env(
        &[
            "rehearse",
            URI,
            "--to",
            &to,
            "--update-cmd",
            client_update(Engine::Mysql),
        ],
        &[("SITESNAP_FAILPOINT", "rehearse-updated")],
    );
    assert_eq!(r.code, -1, "killed: {}", r.stderr);
    assert_eq!(clones(&b).len(), 1);
    assert_eq!(scratch_dbs(&my).len(), 1);
    let r = w.run(&["rehearse", URI, "--to", &to]).fails(1);
    assert!(
        r.stdout.contains("was interrupted: removed clone folder"),
        "{}",
        r.stdout
    );
    assert!(clones(&b).is_empty());
    assert!(scratch_dbs(&my).is_empty());
    assert_eq!(markers(&w), 0);
    assert_eq!(live(&a, &b, &sum), before);
}

#[test]
fn bad_rehearsals_change_nothing() {
    let (w, a, b, db) = sqlite_world();
    let before = live(&a, &b, &|| file_sum(&db));
    let r = w
        .run(&[
            "rehearse",
            "nosuch.example.com",
            "--to",
            &b.to_string_lossy(),
        ])
        .fails(1);
    assert_one_line_error(&r, 1, &["nosuch.example.com"]);
    let r = w
        .run(&[
            "rehearse",
            URI,
            "--to",
            &w.path("nowhere").to_string_lossy(),
        ])
        .fails(1);
    assert_one_line_error(&r, 1, &["nowhere"]);
    assert_eq!(live(&a, &b, &|| file_sum(&db)), before);
    assert_eq!(markers(&w), 0);
}
