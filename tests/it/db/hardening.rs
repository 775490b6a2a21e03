//! Database hardening (issue 11) against the real MariaDB and PostgreSQL servers: a dump is
//! data (hostile dumps are refused naming their line, change nothing and run nothing), definers
//! and owners the restoring account cannot use do not fail a load, the privilege preflight
//! names what is missing, and a dump that never ends is stopped without leaving its option
//! file or its process behind.
use crate::support::*;
use sitesnap::db::{Database, Privilege, PrivilegeError};
use std::io::Read;

fn canary() -> std::path::PathBuf {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    std::env::temp_dir().join(format!("sitesnap-canary-{}", hex::encode(b)))
}

fn load_text(db: &Database, text: &str) -> sitesnap::Result<sitesnap::db::LoadNotes> {
    let bytes = text.as_bytes().to_vec();
    db.load_checked(&mut || Ok(Box::new(std::io::Cursor::new(bytes.clone())) as Box<dyn Read>))
}

/// Checks that each hostile dump is refused in one line naming `line N`, that the canary never
/// appears, and that the database still holds its one row.
fn refuse_all(db: &TestDb, corpus: &[(&str, u64)], c: &std::path::Path, streaming: bool) {
    let url = db.url();
    let d = Database::parse(&url).unwrap();
    for (dump, line) in corpus {
        let e = load_text(&d, dump).expect_err(dump).to_string();
        assert!(
            e.contains(&format!("refused at line {line}")),
            "{e}\n{dump}"
        );
        assert!(!e.contains('\n'), "{e}");
        if streaming {
            // PostgreSQL's streaming load (no check pass first) refuses too, and rolls back.
            let e = d.load(&mut dump.as_bytes()).expect_err(dump).to_string();
            assert!(e.contains("refused at line"), "{e}");
        }
        assert!(!c.exists(), "canary appeared after {dump}");
        assert_eq!(db.sql("SELECT v FROM keep;").trim(), "still here", "{dump}");
    }
}

#[test]
fn postgres_hostile_dumps_run_nothing_and_change_nothing() {
    let Some(db) = TestDb::create(Engine::Postgres, "hostile") else {
        return;
    };
    db.sql("CREATE TABLE keep (v text); INSERT INTO keep VALUES ('still here');");
    let c = canary();
    let cs = c.display().to_string();
    let head = "SET standard_conforming_strings = on;\nCREATE TABLE x (a text);\n";
    let corpus = [
        format!("{head}\\! touch {cs}\n"),
        format!("{head}SELECT 1 \\g |touch {cs}\n"),
        format!("{head}\\o |touch {cs}\nSELECT 1;\n"),
        format!("{head}\\set x `touch {cs}`\n"),
        format!("{head}\\copy x from program 'touch {cs}'\n"),
        format!("{head}COPY x FROM PROGRAM 'touch {cs}';\n"),
        format!("{head}COPY x TO\n PROGRAM 'touch {cs}';\n"),
        format!("{head}COPY x (a) FROM stdin;\nrow\n\\.\nSELECT 'a\\';\n\\! touch {cs}\n"),
        format!("{head}DO $$BEGIN EXECUTE 'COPY x TO PROGRAM ''touch {cs}'''; END$$;\n"),
        format!("{head}\\connect postgres\n"),
    ];
    let lines = [3, 3, 3, 3, 3, 3, 4, 7, 3, 3];
    let corpus: Vec<(&str, u64)> = corpus.iter().map(String::as_str).zip(lines).collect();
    refuse_all(&db, &corpus, &c, true);
    assert_eq!(db.tables(), ["keep"]);
}

#[test]
fn mysql_hostile_dumps_run_nothing_and_change_nothing() {
    let Some(db) = TestDb::create(Engine::Mysql, "hostile") else {
        return;
    };
    db.sql("CREATE TABLE keep (v TEXT); INSERT INTO keep VALUES ('still here');");
    let c = canary();
    let cs = c.display().to_string();
    let head = "DROP TABLE IF EXISTS keep;\nCREATE TABLE x (a TEXT);\n";
    let corpus = [
        format!("{head}system touch {cs}\n"),
        format!("{head}\\! touch {cs}\n"),
        format!("{head}source {cs}\n"),
        format!("{head}pager touch {cs}\n"),
        format!("{head}tee {cs}\n"),
        format!("{head}INSERT INTO x VALUES ('a') \\T {cs}\n"),
        format!("{head}SELECT 'x' INTO OUTFILE '{cs}';\n"),
        format!("{head}LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE x;\n"),
        format!("{head}DELIMITER x\n"),
        format!("{head}INSERT INTO x VALUES ('it\\'s');\nuse mysql;\n"),
    ];
    let lines = [3, 3, 3, 3, 3, 3, 3, 3, 3, 4];
    let corpus: Vec<(&str, u64)> = corpus.iter().map(String::as_str).zip(lines).collect();
    refuse_all(&db, &corpus, &c, false);
    assert_eq!(db.tables(), ["keep"]);
}

fn user_name(db: &TestDb) -> String {
    format!("ssnap_{}", &db.name[db.name.len() - 8..])
}

#[test]
fn mysql_view_defined_by_root_loads_as_the_site_user() {
    let Some(db) = TestDb::create(Engine::Mysql, "definer") else {
        return;
    };
    let user = user_name(&db);
    db.create_user(&user, "pw1");
    let url = db.url_as(&user, "pw1");
    let dump = "CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\n\
        /*!50001 CREATE ALGORITHM=UNDEFINED */\n\
        /*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n\
        /*!50001 VIEW `v` AS select `t`.`a` AS `a` from `t` */;\n\
        DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.a + 1 */;;\nDELIMITER ;\n\
        -- Dump completed\n";
    let d = Database::parse(&url).unwrap();
    let notes = load_text(&d, dump).expect("loads without SUPER");
    assert!(
        notes.notes.iter().any(|n| n.contains("root@localhost")),
        "{notes:?}"
    );
    let definer = db.sql(
        "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'v';",
    );
    assert!(definer.trim().starts_with(&format!("{user}@")), "{definer}");
    assert_eq!(db.sql("SELECT a FROM v;").trim(), "1");
    // As root (SUPER), definers are kept as they are.
    let notes = load_text(&Database::parse(&db.url()).unwrap(), dump).unwrap();
    assert!(notes.notes.is_empty(), "{notes:?}");
}

#[test]
fn mysql_preflight_names_the_missing_privilege() {
    let Some(db) = TestDb::create(Engine::Mysql, "preflight") else {
        return;
    };
    let user = user_name(&db);
    db.create_user(&user, "pw2");
    let d = Database::parse(&db.url_as(&user, "pw2")).unwrap();
    let summary = d
        .check_dump(&mut &b"CREATE TABLE t (a INT);\nCREATE VIEW w AS SELECT 1;\n"[..])
        .unwrap();
    assert!(summary.tables && summary.views);
    d.preflight(&summary).expect("all privileges");
    for host in ["localhost", "%"] {
        db.admin_sql(&format!(
            "REVOKE DROP ON {}.* FROM '{user}'@'{host}';",
            db.ident(&db.name)
        ));
    }
    match d.preflight(&summary) {
        Err(PrivilegeError::Missing { privilege, .. }) => assert_eq!(privilege, Privilege::Drop),
        other => panic!("{other:?}"),
    }
    assert_eq!(db.tables(), Vec::<String>::new(), "probe objects are gone");
    // A restore through load_checked refuses before changing anything.
    db.sql("CREATE TABLE keep (v TEXT);");
    let e = load_text(&d, "CREATE TABLE t (a INT);\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("DROP privilege"), "{e}");
    assert_eq!(db.tables(), ["keep"]);
}

#[test]
fn postgres_dump_owned_by_other_roles_loads() {
    let Some(db) = TestDb::create(Engine::Postgres, "owner") else {
        return;
    };
    let role = user_name(&db);
    db.create_user(&role, "pw3");
    let dump = "SET standard_conforming_strings = on;\n\
        SET SESSION AUTHORIZATION 'nobody_sitesnap_missing';\n\
        CREATE TABLE public.t (a integer);\n\
        ALTER TABLE public.t OWNER TO nobody_sitesnap_missing;\n\
        GRANT ALL ON TABLE public.t TO nobody_sitesnap_missing;\n\
        REVOKE ALL ON TABLE public.t FROM PUBLIC;\n\
        COPY public.t (a) FROM stdin;\n1\n\\.\n";
    let d = Database::parse(&db.url_as(&role, "pw3")).unwrap();
    let notes = load_text(&d, dump).expect("loads as the site role");
    assert!(
        notes.notes.iter().any(|n| n.contains("4 ownership")),
        "{notes:?}"
    );
    assert_eq!(db.sql("SELECT a FROM t;").trim(), "1");
    let owner = db.sql("SELECT tableowner FROM pg_tables WHERE tablename = 't';");
    assert_eq!(owner.trim(), role);
}

/// How long a [`table_lock_holder`]'s lock lasts.
#[derive(PartialEq)]
enum Lasts {
    /// Its session ends after its seconds.
    Secs,
    /// Its input stays open: the lock lasts until the holder is killed.
    UntilKilled,
}

/// A client session on `db` holding `LOCK TABLES t WRITE` (`t` made with one row), then
/// sleeping `secs` s; returned once it has had 0.8 s to take the lock.
fn table_lock_holder(db: &TestDb, secs: u32, lasts: Lasts) -> std::process::Child {
    use std::io::Write;
    db.sql("CREATE TABLE t (a INT); INSERT INTO t VALUES (1);");
    let mut holder = db.client();
    holder
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut holder = holder.spawn().unwrap();
    let mut i = holder.stdin.take().unwrap();
    i.write_all(format!("LOCK TABLES t WRITE;\nSELECT SLEEP({secs});\n").as_bytes())
        .unwrap();
    if lasts == Lasts::UntilKilled {
        std::mem::forget(i);
    }
    std::thread::sleep(std::time::Duration::from_millis(800));
    holder
}

#[test]
fn mysql_dump_behind_a_table_lock_times_out_and_leaves_nothing() {
    let Some(db) = TestDb::create(Engine::Mysql, "locked") else {
        return;
    };
    let mut holder = table_lock_holder(&db, 40, Lasts::UntilKilled);
    let w = World::new();
    db_site(&w, "locked.example", &db.url());
    let t = std::time::Instant::now();
    let r = w.run_env(
        &["snapshot", "locked.example"],
        &[("SITESNAP_DUMP_TIMEOUT", "3")],
    );
    let r = r.fails(1);
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        r.stderr.contains("did not finish within 3 s"),
        "{}",
        r.stderr
    );
    let tmp = w.repo.join("data").join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with("mysql-")),
        "{left:?}"
    );
    assert_eq!(dump_processes(&db.name), Vec::<String>::new());
    // sitesnap itself killed mid-dump: its dump tool dies with it, the option file it could
    // not remove is removed by the next dump, which says so.
    let mut snap = std::process::Command::new(env!("CARGO_BIN_EXE_sitesnap"));
    snap.env("SITESNAP_REPO", &w.repo)
        .args(["snapshot", "locked.example"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut snap = snap.spawn().unwrap();
    let seen = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !dump_processes(&db.name).is_empty()
    });
    assert!(seen, "the dump started");
    snap.kill().unwrap();
    snap.wait().unwrap();
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        dump_processes(&db.name).is_empty()
    });
    assert!(gone, "orphan dump: {:?}", dump_processes(&db.name));
    let cnfs = |tmp: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("mysql-"))
            .collect()
    };
    assert_eq!(cnfs(&tmp).len(), 1, "the killed run left its option file");
    let _ = holder.kill();
    let _ = holder.wait();
    let r = w.run(&["snapshot", "locked.example"]).ok();
    assert!(
        r.stderr.contains("removed 1 MariaDB option file"),
        "{}",
        r.stderr
    );
    assert_eq!(cnfs(&tmp), Vec::<String>::new());
}

/// The dump runs beside the files: when a file cannot be read while the dump tool waits
/// behind a table lock, the tool is killed at once, not at the end of the dump's time limit
/// nor when the lock goes. The snapshot ends while the lock is still held, with the file's
/// error, and leaves the repository as it was and no dump tool behind.
#[test]
fn a_failed_file_stops_a_dump_waiting_for_a_lock() {
    let Some(db) = TestDb::create(Engine::Mysql, "lockbeside") else {
        return;
    };
    // The holder ends (and the lock goes) 60 s after it starts: a snapshot that waited for
    // the lock would end after the holder.
    let mut holder = table_lock_holder(&db, 60, Lasts::Secs);
    let w = World::new();
    db_site(&w, "lockbeside.example", &db.url());
    let before = (w.state(), data_files(&w.repo));
    let r = w
        .run_env(
            &["snapshot", "lockbeside.example"],
            &[
                ("SITESNAP_DUMP_TIMEOUT", "600"),
                // The read fails 2 s late: the dump tool waits for the lock by then.
                ("SITESNAP_FAILPOINT", "read-file:3@late-error"),
            ],
        )
        .fails(1);
    assert_eq!(
        holder.try_wait().unwrap(),
        None,
        "the snapshot waited for the lock to go"
    );
    assert_one_line_error(
        &r,
        1,
        &["Permission denied", "platforms/lockbeside.example/"],
    );
    assert_eq!((w.state(), data_files(&w.repo)), before);
    assert_eq!(dump_processes(&db.name), Vec::<String>::new());
    let _ = holder.kill();
    let _ = holder.wait();
    w.run(&["snapshot", "lockbeside.example"]).ok();
}

/// An Aegir-style backup of `dir` (its contents packed from inside it) with `sql` as its
/// database.sql.
fn aegir_backup(w: &World, uri: &str, dir: &std::path::Path, sql: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("database.sql"), sql).unwrap();
    let out = w.path(&format!("backups/{uri}-20240131.120000.tar.gz"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_file(dir.join("database.sql")).unwrap();
    out
}

#[test]
fn postgres_restore_of_an_imported_hostile_dump_is_refused_in_one_line() {
    let Some(db) = TestDb::create(Engine::Postgres, "import") else {
        return;
    };
    db.sql("CREATE TABLE keep (v text); INSERT INTO keep VALUES ('still here');");
    let c = canary();
    let uri = "hostile.example.org";
    let w = World::new();
    let p = w.platform("platforms/drupal", 5);
    let site = make_site(w.dir.path(), uri, &p);
    w.run(&[
        "site",
        "add",
        uri,
        "--platform",
        &p.to_string_lossy(),
        "--db",
        &db.url(),
    ])
    .ok();
    let sql = format!(
        "SET standard_conforming_strings = on;\nDROP TABLE keep;\nSELECT 'x\\';\n\\! touch {}\n",
        c.display()
    );
    let backup = aegir_backup(&w, uri, &site.dir, &sql);
    let s = w
        .run(&["import", &backup.to_string_lossy(), "--json"])
        .ok()
        .json();
    let id = s["id"].as_str().unwrap().to_string();
    let r = w.run(&["restore", &id, "--yes"]).fails(1);
    assert!(r.stderr.contains("refused at line 4"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(!c.exists(), "canary appeared");
    assert_eq!(db.sql("SELECT v FROM keep;").trim(), "still here");
}

#[test]
fn postgres_dump_behind_a_table_lock_gives_up_at_the_lock_wait_timeout() {
    let Some(db) = TestDb::create(Engine::Postgres, "locked") else {
        return;
    };
    db.sql("CREATE TABLE t (a integer); INSERT INTO t VALUES (1);");
    let mut holder = db.client();
    holder
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut holder = holder.spawn().unwrap();
    let input = holder.stdin.take().unwrap();
    {
        use std::io::Write;
        let mut i = &input;
        i.write_all(b"BEGIN;\nLOCK TABLE t IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(40);\n")
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(800));
    let w = World::new();
    db_site(&w, "pglocked.example", &db.url());
    let t = std::time::Instant::now();
    let r = w
        .run_env(
            &["snapshot", "pglocked.example"],
            &[("SITESNAP_DUMP_LOCK_WAIT", "1")],
        )
        .fails(1);
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    assert!(r.stderr.contains("lock"), "{}", r.stderr);
    let _ = holder.kill();
    let _ = holder.wait();
    drop(input);
}

#[test]
fn mysql_restore_of_an_imported_hostile_dump_is_refused_in_one_line() {
    let Some(db) = TestDb::create(Engine::Mysql, "import") else {
        return;
    };
    db.sql("CREATE TABLE keep (v TEXT); INSERT INTO keep VALUES ('still here');");
    let c = canary();
    let cs = c.display().to_string();
    let uri = "hostile-my.example.org";
    let w = World::new();
    let p = w.platform("platforms/drupal", 5);
    let site = make_site(w.dir.path(), uri, &p);
    w.run(&[
        "site",
        "add",
        uri,
        "--platform",
        &p.to_string_lossy(),
        "--db",
        &db.url(),
    ])
    .ok();
    let head = "DROP TABLE IF EXISTS keep;\nCREATE TABLE x (a TEXT);\n";
    for sql in [
        format!("{head}system touch {cs}\n"),
        format!("{head}\\! touch {cs}\n"),
        format!("{head}SELECT 'x' INTO OUTFILE '{cs}';\n"),
        format!("{head}INSERT INTO x VALUES ('it\\'s');\nsource {cs}\n"),
    ] {
        let backup = aegir_backup(&w, uri, &site.dir, &sql);
        let id = w
            .run(&["import", &backup.to_string_lossy(), "--json"])
            .ok()
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let before = (crate::hardening::world_print(&w), w.snapshot_count());
        let r = w.run(&["restore", &id, "--yes"]).fails(1);
        assert!(r.stderr.contains("refused at line"), "{sql}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(!c.exists(), "canary appeared: {sql}");
        assert_eq!(db.sql("SELECT v FROM keep;").trim(), "still here", "{sql}");
        assert_eq!(db.tables(), ["keep"], "{sql}");
        crate::hardening::assert_same_world(&sql, &crate::hardening::world_print(&w), &before.0);
        assert_eq!(
            w.snapshot_count(),
            before.1,
            "no pre-restore snapshot: {sql}"
        );
    }
}

/// Processes whose command line holds `needle`.
fn procs_with(needle: &str) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                v.push(c);
            }
        }
    }
    v
}

#[test]
fn mysql_dump_timeout_flag_stops_a_dump_tool_that_never_answers() {
    let Some(db) = TestDb::create(Engine::Mysql, "hung") else {
        return;
    };
    db.sql("CREATE TABLE t (a INT); INSERT INTO t VALUES (1);");
    let w = World::new();
    db_site(&w, "hung.example", &db.url());
    let count = w.snapshot_count();
    // A dump tool that never answers, first on PATH (the real client is still found after
    // it); its unique sleep time names its process.
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    let marker = format!("999.{}", u32::from_le_bytes(b));
    let bin = w.path("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["mariadb-dump", "mysqldump"] {
        let f = bin.join(tool);
        std::fs::write(&f, format!("#!/bin/sh\nexec sleep {marker}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cases: [(&[&str], &str); 2] = [
        (&["snapshot", "hung.example", "--dump-timeout", "2"], "2 s"),
        (
            &[
                "checkpoint",
                "hung.example",
                "--label",
                "x",
                "--dump-timeout",
                "1s",
            ],
            "1 s",
        ),
    ];
    for (args, within) in cases {
        let r = w.run_env(args, &[("PATH", &path)]);
        crate::support::assert_one_line_error(&r, 1, &["did not finish within", within]);
        assert_eq!(
            procs_with(&marker),
            Vec::<String>::new(),
            "the tool is gone"
        );
        let tmp = w.repo.join("data").join("tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{args:?}: left in data/tmp: {left:?}");
        assert_eq!(w.snapshot_count(), count);
        // The lock went with the run.
        w.run(&["--lock-wait", "0", "gc"]).ok();
    }
    for bad in ["0", "-3", "soon", "1w", "inf", "99999999999h"] {
        let r = w.run(&["snapshot", "hung.example", "--dump-timeout", bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains(bad), "{}", r.stderr);
    }
    // Without the fake tool the same flag lets a normal dump through.
    w.run(&["snapshot", "hung.example", "--dump-timeout", "10m"])
        .ok();
}
