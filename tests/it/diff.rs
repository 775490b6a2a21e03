//! `diff`: `--content` (unified diffs of changed text files, secrets masked, binary and large
//! files named), refusal across sites unless `--force`, and why the database was not compared.

use crate::support::fixtures::noise;
use crate::support::world::{World, assert_one_line_error};
use std::fs;

fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn content_shows_text_changes_with_secrets_masked() {
    let w = World::new();
    let p = w.platform("plat", 20);
    let s = w.site("a.test", &p);
    let s1 = id(&w.snapshot("a.test"));
    fs::write(
        s.dir.join("settings.php"),
        "<?php\n$base_url = 'https://a.test';\n$databases['default']['default'] = array('password' => 'topsecret1', 'username' => 'dbuser');\n",
    )
    .unwrap();
    let vhost = fs::read_to_string(&s.vhost).unwrap();
    let vhost2 = vhost.replace("db_passwd s3cret", "db_passwd newpass2") + "# tuned\n";
    fs::write(&s.vhost, vhost2).unwrap();
    let mut bin = noise(7, 4000);
    bin[10] = 0;
    fs::write(s.dir.join("files/new.bin"), &bin).unwrap();
    let big = "line of text\n".repeat(30_000);
    fs::write(s.dir.join("files/big.txt"), big).unwrap();
    let s2 = id(&w.snapshot("a.test"));

    let out = w.run(&["diff", &s1, &s2, "--content"]).ok().stdout;
    assert!(out.contains("-$base_url = 'http://a.test';"), "{out}");
    assert!(out.contains("+$base_url = 'https://a.test';"), "{out}");
    assert!(out.contains("'password' => '***'"), "{out}");
    assert!(out.contains("'username' => 'dbuser'"), "{out}");
    assert!(out.contains("+# tuned"), "{out}");
    assert!(out.contains("fastcgi_param db_passwd ***;"), "{out}");
    for secret in ["topsecret1", "s3cret", "newpass2"] {
        assert!(!out.contains(secret), "{secret} shown:\n{out}");
    }
    assert!(
        out.contains("site files/new.bin: binary, not shown"),
        "{out}"
    );
    assert!(
        out.contains("site files/big.txt: 390000 bytes, over the"),
        "{out}"
    );
    assert!(!out.contains("line of text"), "{out}");

    let j = w
        .run(&["diff", &s1, &s2, "--content", "--json"])
        .ok()
        .json();
    let files = j["content"].as_array().unwrap();
    let kind = |path: &str| {
        files
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path}: {j}"))["content"]["kind"]
            .clone()
    };
    assert_eq!(kind("settings.php"), "text");
    assert_eq!(kind("files/new.bin"), "binary");
    assert_eq!(kind("files/big.txt"), "too-large");
    assert!(!j.to_string().contains("topsecret1"));
    // Without --content, no content is computed or shown.
    let plain = w.run(&["diff", &s1, &s2, "--json"]).ok().json();
    assert!(plain.get("content").is_none(), "{plain}");

    // Against the live site: the live file is read.
    fs::write(
        s.dir.join("settings.php"),
        "<?php\n$base_url = 'https://live.a.test';\n",
    )
    .unwrap();
    let live = w.run(&["diff", &s2, "--content"]).ok().stdout;
    assert!(
        live.contains("+$base_url = 'https://live.a.test';"),
        "{live}"
    );
    assert!(live.contains("-$base_url = 'https://a.test';"), "{live}");
    assert!(!live.contains("topsecret1"), "{live}");
}

#[test]
fn only_a_changed_secret_is_said_so_without_showing_it() {
    let w = World::new();
    let p = w.platform("plat", 10);
    let s = w.site("a.test", &p);
    let s1 = id(&w.snapshot("a.test"));
    let vhost = fs::read_to_string(&s.vhost).unwrap();
    fs::write(&s.vhost, vhost.replace("s3cret", "other9")).unwrap();
    let out = w.run(&["diff", &s1, "--content"]).ok().stdout;
    assert!(out.contains(": only masked secrets differ"), "{out}");
    assert!(!out.contains("s3cret") && !out.contains("other9"), "{out}");
}

#[test]
fn different_sites_are_refused_unless_forced() {
    let w = World::new();
    let p = w.platform("plat", 10);
    w.site("a.test", &p);
    w.site("b.test", &p);
    let a = id(&w.snapshot("a.test"));
    let b = id(&w.snapshot("b.test"));
    let r = w.run(&["diff", &a, &b]);
    assert_one_line_error(&r, 1, &["different sites", "a.test", "b.test", "--force"]);
    let d = w.run(&["diff", &a, &b, "--force", "--json"]).ok().json();
    assert_eq!(d["to"], b.as_str());
    assert!(!d["site"]["changed"].as_array().unwrap().is_empty(), "{d}");
}

#[test]
fn says_why_the_database_was_not_compared() {
    let w = World::new();
    let p = w.platform("plat", 10);
    w.site("a.test", &p);
    let s1 = id(&w.snapshot("a.test"));
    let live = w.run(&["diff", &s1]).ok().stdout;
    assert!(
        live.contains("database: not compared: diff does not dump the live database"),
        "{live}"
    );
    let j = w.run(&["diff", &s1, "--json"]).ok().json();
    assert_eq!(j["database_not_compared"]["kind"], "live");
    let s2 = id(&w.snapshot("a.test"));
    let both = w.run(&["diff", &s1, &s2, "--json"]).ok().json();
    assert_eq!(both["database_changed"], false);
    assert!(both["database_not_compared"].is_null(), "{both}");

    // A site without a database: its snapshots hold no dump.
    let q = w.platform("plain", 5);
    fs::create_dir_all(q.join("sites/n.test")).unwrap();
    fs::write(q.join("sites/n.test/settings.php"), "<?php\n").unwrap();
    let qs = q.to_string_lossy();
    w.run(&["site", "add", "n.test", "--platform", &qs]).ok();
    let n1 = id(&w.snapshot("n.test"));
    let n2 = id(&w.snapshot("n.test"));
    let out = w.run(&["diff", &n1, &n2]).ok().stdout;
    let want = format!(
        "database: not compared: snapshot {} holds no database dump (the site had no database then)",
        &n1[..8]
    );
    assert!(out.contains(&want), "{out}");
}

/// The restore leftovers (`.<name>.sitesnap-<tag>-<journal>`) next to `dir`'s entries.
fn leftovers_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".sitesnap-"))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn gc_removes_restore_leftovers_but_not_while_a_restore_is_open_nor_kept_ones() {
    let w = World::new();
    let p = w.platform("plat", 10);
    w.site("a.test", &p);
    let s1 = id(&w.snapshot("a.test"));
    fs::write(p.join("includes/file0.php"), "<?php // hotfix\n").unwrap();
    fs::write(p.join("includes/added.php"), "<?php // added\n").unwrap();
    w.run(&["restore", &s1, "--yes", "--repair-platform"]).ok();
    let parent = p.parent().unwrap();
    // The restore removed the platform files it replaced (its pre-restore snapshot holds
    // them); a leftover as an older sitesnap, or a repair of another platform, leaves one:
    assert!(
        leftovers_in(parent).is_empty(),
        "{:?}",
        leftovers_in(parent)
    );
    let journal: String = w
        .catalog()
        .query_row("SELECT id FROM journals", [], |r| r.get(0))
        .unwrap();
    let fake = parent.join(format!(".plat.sitesnap-replaced-{journal}"));
    fs::create_dir_all(fake.join("includes")).unwrap();
    fs::write(fake.join("includes/file0.php"), "<?php // hotfix\n").unwrap();
    fs::write(fake.join("includes/added.php"), "<?php // added\n").unwrap();
    let aside = leftovers_in(parent);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        aside[0]
            .to_string_lossy()
            .contains(".plat.sitesnap-replaced-")
    );
    let want_bytes = ("<?php // hotfix\n".len() + "<?php // added\n".len()) as u64;

    let dry = w.run(&["gc", "--dry-run", "--json"]).ok().json();
    assert_eq!(dry["leftovers_removed"], 1, "{dry}");
    assert_eq!(dry["leftover_bytes"], want_bytes, "{dry}");
    assert!(aside[0].exists(), "a dry run removes nothing");

    // An open restore journal: gc removes no leftover.
    w.catalog()
        .execute(
            "INSERT INTO journals (id, site, snapshot, pre_restore, plan, step, state, started)
             VALUES ('abcdef123456', 'a.test', ?1, NULL, '{}', 0, 'open', '2026-01-01T00:00:00Z')",
            [&s1],
        )
        .unwrap();
    let held = w.run(&["gc", "--json"]).ok().json();
    assert_eq!(held["leftovers_held"], true, "{held}");
    assert_eq!(held["leftovers_removed"], 0, "{held}");
    assert!(aside[0].exists());
    w.catalog()
        .execute("DELETE FROM journals WHERE id = 'abcdef123456'", [])
        .unwrap();

    let done = w.run(&["-v", "gc"]).ok().stdout;
    assert!(done.contains("removed 1 restore leftover(s)"), "{done}");
    assert!(
        leftovers_in(parent).is_empty(),
        "{:?}",
        leftovers_in(parent)
    );
    assert!(
        !fs::read_to_string(p.join("includes/file0.php"))
            .unwrap()
            .contains("hotfix")
    );

    // With --keep-old, the old site folder stays, gc or not.
    w.run(&["restore", &s1, "--yes", "--keep-old"]).ok();
    let kept = leftovers_in(&p.join("sites"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    let again = w.run(&["gc", "--json"]).ok().json();
    assert_eq!(again["leftovers_removed"], 0, "{again}");
    assert!(kept[0].exists());
}
