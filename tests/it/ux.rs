//! Operator experience: printed hints run as pasted, `list` columns and filters, one error
//! prefix, help on every option, the read-only browsing commands.

use crate::support::World;
use std::process::Command;

/// Every `sitesnap --repo ...` command printed in `text` (hints end at a backtick, the end of
/// the line or an unbalanced closing parenthesis). Templates (`<uri>`, `...`) are left out.
fn hints(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(i) = rest.find("sitesnap --repo ") {
            let tail = &rest[i..];
            let end = tail.find('`').unwrap_or(tail.len());
            let mut h = tail[..end].trim_end().to_string();
            if h.ends_with(')') && h.matches('(').count() < h.matches(')').count() {
                h.pop();
            }
            if !h.contains("...") && !h.contains('<') {
                out.push(h);
            }
            rest = &tail[end..];
        }
    }
    out
}

/// Runs a printed hint through the shell as an operator would paste it: from another folder,
/// without `$SITESNAP_REPO`, no terminal on stdin.
fn paste(hint: &str) -> (i32, String, String) {
    let bin = env!("CARGO_BIN_EXE_sitesnap");
    // -v: off a terminal the summary (with its undo hint) shows only when asked for.
    let line = hint.replacen("sitesnap", &format!("{bin} -v"), 1);
    let o = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .env_remove("SITESNAP_REPO")
        .current_dir("/")
        .output()
        .expect("run the hint");
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.code().unwrap_or(-1), s(&o.stdout), s(&o.stderr))
}

fn paste_ok(hint: &str) -> String {
    let (code, out, err) = paste(hint);
    assert_eq!(
        code, 0,
        "pasted hint failed: {hint}\nstdout: {out}\nstderr: {err}"
    );
    out
}

fn id_of(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn printed_hints_run_as_pasted() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 30);
    w.site("example.com", &p);
    let s1 = id_of(&w.snapshot("example.com"));
    // A hotfix on the shared platform: restoring s1 now needs --repair-platform.
    std::fs::write(p.join("includes/hotfix.php"), "<?php // hotfix\n").unwrap();

    // The refusal without a terminal names the whole command, flags included.
    let r = w.run(&["restore", &s1[..8], "--repair-platform"]).fails(1);
    let confirm = hints(&r.stderr);
    assert_eq!(confirm.len(), 1, "{}", r.stderr);
    assert!(
        confirm[0].ends_with("--repair-platform --yes"),
        "{}",
        confirm[0]
    );
    // The dry run names the repair.
    let r = w.run(&["restore", &s1[..8], "--dry-run"]).fails(1);
    let repair = hints(&r.stdout);
    assert_eq!(repair.len(), 1, "{}", r.stdout);
    assert!(repair[0].contains("--repair-platform"), "{}", repair[0]);
    // Checked by clap and the planner, as pasted (a dry run of the hinted command).
    paste_ok(&format!("{} --dry-run", repair[0]));

    // The hinted confirmation, pasted, restores; its undo hint restores again.
    let out = paste_ok(&confirm[0]);
    assert!(!p.join("includes/hotfix.php").exists());
    let undo = hints(&out);
    assert_eq!(undo.len(), 1, "{out}");
    assert!(
        undo[0].contains(" restore ") && undo[0].ends_with("--repair-platform --yes"),
        "{}",
        undo[0]
    );
    let out = paste_ok(&undo[0]);
    assert_eq!(
        std::fs::read_to_string(p.join("includes/hotfix.php")).unwrap(),
        "<?php // hotfix\n",
        "the undo brought the hotfix back"
    );
    // The undo of the undo, once more, from its own hint.
    let again = hints(&out);
    assert_eq!(again.len(), 1, "{out}");
    paste_ok(&again[0]);

    // forget names `gc`; pasted, gc runs on the right repository.
    let s2 = id_of(&w.snapshot("example.com"));
    let r = w.run(&["-v", "forget", &s2]).ok();
    let gc = hints(&r.stdout);
    assert_eq!(gc.len(), 1, "{}", r.stdout);
    paste_ok(&gc[0]);
}

#[test]
fn missing_repository_hint_names_it() {
    let w = World::new();
    let other = w.path("elsewhere");
    let r = w
        .run(&["--repo", &other.to_string_lossy(), "list"])
        .fails(1);
    assert!(r.stderr.starts_with("sitesnap: error: "), "{}", r.stderr);
    let h = hints(&r.stderr);
    assert_eq!(h.len(), 1, "{}", r.stderr);
    paste_ok(&h[0]);
    assert!(h[0].contains(&*other.to_string_lossy()), "{}", h[0]);
    assert!(
        other.join("catalog.sqlite").exists(),
        "init made it where the hint said"
    );
    w.run(&["--repo", &other.to_string_lossy(), "list"]).ok();
}

/// The names of the commands listed in a help text's `Commands:` section.
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if !line.starts_with(' ') {
            inside = line == "Commands:";
            continue;
        }
        if inside {
            let name = line.split_whitespace().next().unwrap_or("");
            if !name.is_empty() && name != "help" {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Argument and option lines of a help text that have no description (`-h`: one line each).
fn undocumented(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let lines: Vec<&str> = help.lines().collect();
    let is_item = |line: &str| {
        let item = line.trim_start();
        item.starts_with('-') || item.starts_with('<') || item.starts_with('[')
    };
    let indent = |line: &str| line.len() - line.trim_start().len();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') {
            inside = line.ends_with(':') && *line != "Commands:" && *line != "Usage:";
            continue;
        }
        // An item and its help are separated by two spaces at least, or (when clap puts the
        // help on the next line) the next line is a deeper-indented description.
        let inline = line.trim_start().trim_end().contains("  ");
        let below = lines
            .get(i + 1)
            .is_some_and(|n| !n.trim().is_empty() && !is_item(n) && indent(n) > indent(line));
        if inside && is_item(line) && !inline && !below {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn every_argument_of_every_command_has_help() {
    let w = World::new();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut walked = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("-h");
        let r = w.run(&args).ok();
        walked += 1;
        let missing = undocumented(&r.stdout);
        assert!(
            missing.is_empty(),
            "sitesnap {path:?}: no help for {missing:?}"
        );
        if !path.is_empty() {
            // Global options are grouped apart from the command's own.
            let global = r.stdout.find("Global options:").expect("global heading");
            assert!(r.stdout[global..].contains("--repo <DIR>"), "{}", r.stdout);
        }
        for c in subcommands(&r.stdout) {
            let mut p = path.clone();
            p.push(c);
            todo.push(p);
        }
    }
    assert!(walked > 25, "walked {walked} help texts");
}

#[test]
fn usage_and_other_errors_share_one_prefix() {
    let w = World::new();
    let usage = w.run(&["list", "--no-such-flag"]).fails(2);
    assert!(
        usage.stderr.starts_with("sitesnap: error: "),
        "{}",
        usage.stderr
    );
    let other = w.run(&["show", "ffffffff"]).fails(1);
    assert!(
        other.stderr.starts_with("sitesnap: error: "),
        "{}",
        other.stderr
    );
    let kind = w.run(&["list", "--kind", "weekly"]).fails(2);
    assert!(
        kind.stderr.starts_with("sitesnap: error: "),
        "{}",
        kind.stderr
    );
    assert!(kind.stderr.contains("pre-restore"), "{}", kind.stderr);
}

#[test]
fn list_shows_platform_and_zone_and_filters() {
    let w = World::new();
    let p1 = w.platform("platforms/drupal-7.98", 10);
    let p2 = w.platform("platforms/drupal-10.3.1-with-a-very-long-build-name", 10);
    w.site("a.example.com", &p1);
    w.site("b.example.com", &p2);
    let a1 = id_of(&w.snapshot("a.example.com"));
    let a2 = id_of(&w.snapshot("a.example.com"));
    w.run(&["checkpoint", "a.example.com", "--label", "before 7.105"])
        .ok();
    let b1 = id_of(&w.snapshot("b.example.com"));
    let ids = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["list", "--json"];
        a.extend_from_slice(args);
        let v = w.run(&a).ok().json();
        v.as_array().unwrap().iter().map(id_of).collect()
    };
    assert_eq!(ids(&["--site", "b.example.com"]), vec![b1.clone()]);
    assert_eq!(ids(&["b.example.com"]), vec![b1.clone()]);
    let cp = ids(&["--kind", "checkpoint"]);
    assert_eq!(cp.len(), 1);
    assert!(cp[0] != a1 && cp[0] != a2 && cp[0] != b1);
    assert_eq!(ids(&["--last", "1"]), vec![cp[0].clone(), b1.clone()]);
    assert_eq!(
        ids(&["--last", "2", "--kind", "manual", "--site", "a.example.com"]),
        vec![a1.clone(), a2.clone()]
    );
    // An unknown site is an error, not an empty list.
    w.run(&["list", "--site", "nope.example.com"]).fails(1);

    let utc = w
        .run_env(&["list", "--site", "b.example.com"], &[("TZ", "UTC")])
        .ok();
    let lines: Vec<&str> = utc.stdout.lines().collect();
    assert!(lines[0].contains(" PLATFORM "), "{}", lines[0]);
    assert!(lines[1].contains("drupal-10.3.1-with-~"), "{}", lines[1]);
    assert!(lines[1].contains(" +0000 "), "{}", lines[1]);
    let a = w
        .run_env(&["list", "--site", "a.example.com"], &[("TZ", "UTC")])
        .ok();
    assert!(a.stdout.contains(" drupal-7.98 "), "{}", a.stdout);
    let ist = w
        .run_env(
            &["list", "--site", "b.example.com"],
            &[("TZ", "Asia/Kolkata")],
        )
        .ok();
    assert!(ist.stdout.contains(" +0530 "), "{}", ist.stdout);
    // The same instant: the UTC time in the JSON is the local one minus the offset.
    let json = w.run(&["show", &b1, "--json"]).ok().json();
    let t: chrono::DateTime<chrono::Utc> = json["time"].as_str().unwrap().parse().unwrap();
    let shown = (t + chrono::Duration::minutes(330))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert!(ist.stdout.contains(&shown), "{shown} in {}", ist.stdout);
}

/// The live state of a world's site: platform (with the site folder and its SQLite file) and
/// binding files, every byte, mode and time.
fn live(
    p: &std::path::Path,
    site: &crate::support::Site,
) -> (Vec<crate::support::Rec>, Vec<crate::support::Rec>) {
    (
        crate::support::live_records(p, |_, _| true),
        crate::support::live_bindings(&[&site.vhost, &site.alias]),
    )
}

#[test]
fn stats_ls_and_dump_over_a_sqlite_site() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 30);
    let site = w.site("example.com", &p);
    let s1 = id_of(&w.snapshot("example.com"));
    w.snapshot("example.com");

    let st = w.run(&["stats", "--json"]).ok().json();
    assert_eq!(st["snapshots"], 2);
    assert!(st["packs"].as_u64().unwrap() >= 1);
    assert!(st["chunks"].as_u64().unwrap() > 10);
    let logical = st["logical_bytes"].as_u64().unwrap();
    let unique = st["unique_bytes"].as_u64().unwrap();
    // Two identical snapshots: everything stored once.
    assert!(logical >= 2 * unique - unique / 10, "{st}");
    assert!(st["dedup_ratio"].as_f64().unwrap() > 1.8, "{st}");
    assert!(st["size_on_disk"].as_u64().unwrap() >= st["pack_bytes"].as_u64().unwrap());
    assert_eq!(st["sites"][0]["site"], "example.com");
    assert_eq!(st["sites"][0]["snapshots"], 2);
    assert_eq!(st["platforms"][0]["path"], p.to_string_lossy().as_ref());
    assert_eq!(st["platforms"][0]["versions"], 1);
    let text = w.run(&["stats"]).ok();
    assert!(text.stdout.contains("dedup:"), "{}", text.stdout);

    // ls: the parts, then a folder, then a binding file by its absolute path.
    let parts = w.run(&["ls", &s1]).ok();
    for part in ["platform/", "site/", "bindings/", "database"] {
        assert!(parts.stdout.contains(part), "{part}: {}", parts.stdout);
    }
    let files = w.run(&["ls", &s1, "site/files", "--json"]).ok().json();
    let names: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"site/files/upload3.bin"), "{names:?}");
    assert!(names.contains(&"site/files/styles"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("site/files/styles/")),
        "direct entries only"
    );
    let link = files
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "site/files/latest.bin")
        .unwrap();
    assert_eq!(link["target"], "files/upload1.bin");
    let vhost = site.vhost.to_string_lossy().into_owned();
    let b = w.run(&["ls", &s1, "bindings"]).ok();
    assert!(
        b.stdout.contains(&format!(" {vhost}\n")),
        "leading slash kept: {}",
        b.stdout
    );
    let r = w.run(&["ls", &s1, "site/no-such-thing"]).fails(1);
    assert!(r.stderr.contains("site/no-such-thing"), "{}", r.stderr);

    // dump: a file byte for byte, a binding file, the database.
    let want = std::fs::read(site.dir.join("files/upload3.bin")).unwrap();
    let raw = w
        .cmd()
        .args(["dump", &s1, "site/files/upload3.bin"])
        .output()
        .unwrap();
    assert_eq!(raw.stdout, want);
    let v = w.cmd().args(["dump", &s1, &vhost]).output().unwrap();
    assert_eq!(v.stdout, std::fs::read(&site.vhost).unwrap());
    let db = w.cmd().args(["dump", &s1, "--database"]).output().unwrap();
    assert!(db.status.success());
    let copy = w.path("copy.sqlite");
    std::fs::write(&copy, &db.stdout).unwrap();
    assert_eq!(
        crate::support::sqlite_rows(&copy, "node"),
        crate::support::sqlite_rows(&site.db, "node")
    );
    // A folder, a symlink, a missing path and no path at all are one-line errors.
    crate::support::assert_one_line_error(
        &w.run(&["dump", &s1, "site/files"]),
        1,
        &["site/files", "folder"],
    );
    crate::support::assert_one_line_error(
        &w.run(&["dump", &s1, "site/files/latest.bin"]),
        1,
        &["symlink"],
    );
    crate::support::assert_one_line_error(&w.run(&["dump", &s1, "site/nope"]), 1, &["site/nope"]);
    w.run(&["dump", &s1]).fails(2);
}

#[test]
fn dump_database_of_a_mariadb_site_is_its_sql() {
    use crate::support::{Engine, TestDb, db_site};
    let Some(db) = TestDb::create(Engine::Mysql, "uxdump") else {
        return;
    };
    db.sql("CREATE TABLE node (nid INT PRIMARY KEY, title VARCHAR(64)); INSERT INTO node VALUES (1, 'first node'), (2, 'second node');");
    let w = World::new();
    db_site(&w, "db.example", &db.url());
    let id = id_of(&w.snapshot("db.example"));
    let out = w.cmd().args(["dump", &id, "--database"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = String::from_utf8_lossy(&out.stdout);
    assert!(sql.contains("CREATE TABLE `node`"), "{sql}");
    assert!(sql.contains("'second node'"), "{sql}");
    let st = w.run(&["stats", "--json"]).ok().json();
    assert!(st["logical_bytes"].as_u64().unwrap() >= out.stdout.len() as u64);
    db.drop_database();
}

#[test]
fn restore_to_target_never_touches_the_live_site() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 30);
    let site = w.site("example.com", &p);
    let s1 = id_of(&w.snapshot("example.com"));
    // The live site moves on after the snapshot.
    std::fs::write(site.dir.join("files/upload3.bin"), b"changed since").unwrap();
    let before = live(&p, &site);
    let snaps = w.snapshot_count();

    let t = w.path("restored");
    let r = w
        .run(&["-v", "restore", &s1, "--target", &t.to_string_lossy()])
        .ok();
    assert!(r.stdout.contains("wrote"), "{}", r.stdout);
    assert_eq!(live(&p, &site), before, "the live site is byte-identical");
    assert_eq!(w.snapshot_count(), snaps, "no pre-restore snapshot");
    let got = std::fs::read(t.join("site/files/upload3.bin")).unwrap();
    assert_ne!(got, b"changed since", "the snapshot's version");
    assert_eq!(
        crate::support::live_records(&t.join("site"), |rel, _| rel
            != std::path::Path::new("site.sqlite"))
        .len(),
        crate::support::live_records(&site.dir, |rel, _| rel
            != std::path::Path::new("site.sqlite"))
        .len()
    );
    let rel = site.vhost.strip_prefix("/").unwrap();
    assert_eq!(
        std::fs::read(t.join("bindings").join(rel)).unwrap(),
        std::fs::read(&site.vhost).unwrap()
    );
    assert!(t.join("database.sqlite").exists());
    assert!(t.join("platform/includes").is_dir());

    // --include: one subtree and one file pattern, nothing else.
    let t2 = w.path("some");
    w.run(&[
        "restore",
        &s1,
        "--target",
        &t2.to_string_lossy(),
        "--include",
        "site/files/upload1*",
        "--include",
        "platform/includes",
    ])
    .ok();
    let got = crate::support::listing(&t2);
    let has = |prefix: &str| got.iter().any(|x| x.starts_with(prefix));
    assert!(
        has("site/files/upload1.bin ") && has("site/files/upload12.bin "),
        "{got:?}"
    );
    assert!(
        !has("site/files/upload3.bin ") && !has("bindings") && !has("database"),
        "{got:?}"
    );
    assert!(
        got.iter().any(|x| x.starts_with("platform/includes/")),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|x| x.starts_with("platform/modules")),
        "{got:?}"
    );
    assert_eq!(live(&p, &site), before);

    // Refusals change nothing: inside the live platform, a folder that is not empty, a
    // pattern that matches nothing.
    let inside = p.join("restored-here");
    crate::support::assert_one_line_error(
        &w.run(&["restore", &s1, "--target", &inside.to_string_lossy()]),
        1,
        &["platform"],
    );
    assert!(!inside.exists());
    crate::support::assert_one_line_error(
        &w.run(&["restore", &s1, "--target", &t.to_string_lossy()]),
        1,
        &["not empty"],
    );
    let t3 = w.path("nothing");
    crate::support::assert_one_line_error(
        &w.run(&[
            "restore",
            &s1,
            "--target",
            &t3.to_string_lossy(),
            "--include",
            "site/nope/*",
        ]),
        1,
        &["matches nothing"],
    );
    assert!(!t3.exists());
    assert_eq!(live(&p, &site), before);
    // --include needs --target; --target refuses flags of an in-place restore.
    w.run(&["restore", &s1, "--include", "site/*"]).fails(2);
    w.run(&["restore", &s1, "--target", "/tmp/x", "--repair-platform"])
        .fails(2);
}

#[test]
fn completions_and_man_pages_generate() {
    let w = World::new();
    for shell in ["bash", "zsh", "fish"] {
        let r = w.run(&["completions", shell]).ok();
        assert!(r.stdout.contains("restore"), "{shell}: {}", r.stdout);
        assert!(
            r.stdout.contains("repair-platform"),
            "{shell}: {}",
            r.stdout
        );
    }
    w.run(&["completions", "tcsh"]).fails(2);
    let m = w.run(&["man"]).ok();
    assert!(
        m.stdout.starts_with(".ie") || m.stdout.contains(".TH sitesnap"),
        "{}",
        &m.stdout[..200.min(m.stdout.len())]
    );
    let dir = w.path("man1");
    w.run(&["man", "--dir", &dir.to_string_lossy()]).ok();
    assert!(dir.join("sitesnap.1").exists());
    let restore = std::fs::read_to_string(dir.join("sitesnap-restore.1")).unwrap();
    assert!(restore.contains("repair\\-platform"), "{restore}");
}

/// Runs sitesnap under a pseudo-terminal (`script`), returning everything the terminal got.
fn on_a_terminal(w: &World, args: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_sitesnap");
    let o = Command::new("script")
        .args(["-qec", &format!("{bin} {args}"), "/dev/null"])
        .env("SITESNAP_REPO", &w.repo)
        .env("TERM", "xterm")
        .output()
        .expect("script (util-linux)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn progress_shows_on_a_terminal_only() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    w.site("example.com", &p);
    let tty = on_a_terminal(&w, "snapshot example.com");
    assert!(tty.contains("example.com"), "{tty}");
    assert!(
        tty.contains("eta") && tty.contains('%'),
        "a bar with total and estimate: {tty}"
    );
    // Off a terminal: nothing at all on success.
    let r = w.run(&["snapshot", "example.com"]).ok();
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // -q silences the bar and the report on a terminal too.
    let quiet = on_a_terminal(&w, "-q snapshot example.com");
    assert!(
        !quiet.contains("eta") && !quiet.contains("example.com"),
        "{quiet}"
    );
}

/// `site add` and `site set --db` register the site but warn about what would make its next
/// snapshot fail: a missing site folder, a database that cannot be read (password hidden).
#[test]
fn site_add_and_set_warn_about_a_missing_folder_and_an_unreachable_database() {
    let w = World::new();
    let p = w.platform("platforms/d7", 3);
    let ps = p.to_string_lossy().into_owned();
    let url = "mysql://nobody:s3cretpw@127.0.0.1:3306/sitesnap_no_such_db";
    let r = w
        .run(&[
            "site",
            "add",
            "late.example",
            "--platform",
            &ps,
            "--db",
            url,
        ])
        .ok();
    assert!(
        r.stderr.contains("sites/late.example does not exist"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("late.example: database mysql://nobody:***@"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("s3cretpw"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
    std::fs::create_dir_all(p.join("sites/late.example")).unwrap();
    let db = p.join("sites/late.example/site.sqlite");
    let lite = format!("sqlite://{}", db.display());
    let r = w.run(&["site", "set", "late.example", "--db", &lite]).ok();
    assert!(
        r.stderr.contains("database file does not exist"),
        "{}",
        r.stderr
    );
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let r = w.run(&["site", "set", "late.example", "--db", &lite]).ok();
    assert_eq!(r.stderr, "", "a ready site: no warning");
    // -q silences the warnings.
    let r = w
        .run(&["-q", "site", "add", "x.example", "--platform", &ps])
        .ok();
    assert_eq!(r.stderr, "");
}
