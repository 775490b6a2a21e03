//! Unit tests of the dump checker.
use super::*;

fn run(flavor: Flavor, text: &str) -> Result<DumpSummary, u64> {
    check(flavor, &mut text.as_bytes()).map_err(|e| e.expect("no io error").line)
}

#[test]
fn psql_meta_commands_are_refused_outside_literals_only() {
    let pg = |t| run(Flavor::Postgres, t);
    assert_eq!(pg("SELECT 1;\n\\! id > /tmp/x\n"), Err(2));
    assert_eq!(pg("SELECT 1;\n  \\o |id\n"), Err(2));
    assert_eq!(pg("SELECT 1 \\g |id\n"), Err(1));
    assert_eq!(pg("\\set x `id`\n"), Err(1));
    assert_eq!(pg("\\connect other\n"), Err(1));
    assert_eq!(pg("\\copy t from program 'id'\n"), Err(1));
    // Inside literals, comments and COPY data a backslash is data.
    let ok = "\\restrict abc123\nSET standard_conforming_strings = on;\n\
              SELECT 'a\\' , E'it\\'s \\! no', $$ \\! x $$, $f$ \\! $f$; -- \\! c\n\
              /* \\! /* nested \\! */ still */ SELECT 1;\n\
              COPY public.t (a, b, c, d, e, f, g, h, i) FROM stdin;\n\\! data\n'\n\\.\n\
              SELECT 2;\n\\unrestrict abc123\n";
    assert!(pg(ok).is_ok(), "{:?}", pg(ok));
    // A string that psql thinks closed must not hide a command.
    assert_eq!(pg("SELECT 'a\\';\n\\! id\n"), Err(2));
    // COPY data ends only at `\.`, and only a COPY psql really starts opens it.
    assert_eq!(pg("SELECT (\nCOPY t FROM stdin;\n\\! id\n"), Err(3));
    assert_eq!(pg("COPY t FROM stdin; \\! id\n"), Err(1));
}

#[test]
fn server_side_programs_are_refused() {
    let pg = |t| run(Flavor::Postgres, t);
    assert_eq!(pg("COPY t TO PROGRAM 'id';\n"), Err(1));
    assert_eq!(pg("COPY t FROM\n  PROGRAM 'id';\n"), Err(2));
    assert_eq!(pg("COPY t FROM '/etc/passwd';\n"), Err(1));
    assert_eq!(
        pg("DO $$BEGIN EXECUTE 'COPY t TO PROGRAM ''id'''; END$$;\n"),
        Err(1)
    );
    assert_eq!(pg("ALTER SYSTEM SET archive_command = 'id';\n"), Err(1));
    assert_eq!(
        pg("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ 1 $$;\n"),
        Err(1)
    );
    let atomic = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;\nEND;\n\
                  COPY t FROM stdin;\n\\! data\n\\.\n";
    assert!(pg(atomic).is_ok(), "{:?}", pg(atomic));
}

#[test]
fn mariadb_client_commands_are_refused() {
    let my = |t| run(Flavor::Mysql, t);
    for bad in [
        "system id > /tmp/x\n",
        "\\! id\n",
        "SELECT 1;\nsource /etc/x.sql\n",
        "pager id\n",
        "tee /tmp/x\n",
        "INSERT INTO t VALUES (1) \\T /tmp/x\n",
        "use mysql;\n",
        "connect other\n",
        "DELIMITER x\n",
        "SELECT 1 INTO OUTFILE '/tmp/x';\n",
        "LOAD DATA LOCAL INFILE '/etc/shadow' INTO TABLE t;\n",
        "CREATE FUNCTION sys_exec RETURNS int SONAME 'lib.so';\n",
        "/*!40101 SELECT 1 */ \\! id\n",
    ] {
        assert!(my(bad).is_err(), "{bad}");
    }
    let ok = "/*M!999999\\- enable the sandbox mode */ \n-- comment \\! x\n# another \\!\n/* \\! */\n\
              INSERT INTO `t` VALUES ('it\\'s \\! system',\"x\\\"y\",'system');\n\
              DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER x BEFORE INSERT ON t FOR EACH ROW SET @a = 1; */;;\n\
              DELIMITER ;\nINSERT INTO t VALUES ('multi\nsystem line');\n";
    let s = my(ok).unwrap();
    assert!(s.tables && s.triggers);
}

#[test]
fn definers_and_owners_are_rewritten() {
    let mut s = Scanner::new(
        Flavor::Mysql,
        Rewrite {
            definers_allowed: Some(vec!["site@%".into()]),
            strip_owners: false,
        },
    );
    let l = b"/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n";
    let out = s.line(l).unwrap().unwrap();
    assert_eq!(
        out,
        b"/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */\n".to_vec()
    );
    let l = b"/*!50017 DEFINER=`site`@`%`*/ x\n";
    assert_eq!(s.line(l).unwrap().unwrap(), l.to_vec());
    assert_eq!(s.rewritten, vec!["root@localhost".to_string()]);

    let l = b"DELIMITER ;;\n";
    assert_eq!(s.line(l).unwrap().unwrap(), l.to_vec());
    let mut p = Scanner::new(
        Flavor::Postgres,
        Rewrite {
            definers_allowed: None,
            strip_owners: true,
        },
    );
    assert_eq!(p.line(b"ALTER TABLE public.t OWNER TO bob;\n"), Ok(None));
    assert_eq!(p.line(b"GRANT ALL ON TABLE public.t TO bob;\n"), Ok(None));
    assert!(p.line(b"CREATE TABLE t (a int);\n").unwrap().is_some());
    assert_eq!(p.dropped, 2);
}
