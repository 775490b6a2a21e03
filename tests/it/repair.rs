//! Repository format v2: the store is the truth. `repair catalog` rebuilds `catalog.sqlite`
//! from the store alone (and survives SIGKILL at each step); `init` refuses a folder with data;
//! `verify` and `gc` notice a catalogue out of step with the store; a v1 repository gets its
//! objects at its first write (or `upgrade`), killed in the middle and rerun.
use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// What a snapshot is, as the catalogue lists it and as its data reads back.
type Listed = BTreeMap<String, serde_json::Value>;

/// Every snapshot as `list --json` shows it, by id.
fn listed(w: &World) -> Listed {
    let r = w.run(&["list", "--json"]).ok();
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

/// Every snapshot read back through the library: trees (paths, modes, owners, times, content
/// hashes) and the dump.
fn read_all(w: &World) -> BTreeMap<String, String> {
    listed(w)
        .keys()
        .map(|id| {
            let r = restore_read(&w.repo, id);
            let v = format!(
                "{:?}|{:?}|{:?}|{:?}",
                r.platform, r.site, r.bindings, r.dump
            );
            (id.clone(), v)
        })
        .collect()
}

fn remove_catalog(repo: &Path) {
    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = fs::remove_file(repo.join(f));
    }
}

/// A world with two sites and four snapshots: a manual one pinned afterwards, a checkpoint
/// unpinned afterwards, a labelled checkpoint kept pinned, and one of a second site.
fn world_with_history() -> (World, Site) {
    let w = World::new();
    let p = w.platform("platforms/d7", 30);
    let site = w.site("example.com", &p);
    w.site("other.example", &p);
    let a = w.snapshot("example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(
        site.dir.join("files/new.txt"),
        b"changed after the first snapshot",
    )
    .unwrap();
    let b = w
        .run(&[
            "checkpoint",
            "example.com",
            "--label",
            "before 7.105",
            "--json",
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.run(&["checkpoint", "example.com", "--label", "kept"])
        .ok();
    w.snapshot("other.example");
    w.run(&["pin", &a]).ok();
    w.run(&["unpin", &b]).ok();
    w.run(&["site", "set", "other.example", "--keep-last", "3"])
        .ok();
    (w, site)
}

#[test]
fn repair_catalog_rebuilds_everything_from_the_store() {
    let (w, site) = world_with_history();
    let before = listed(&w);
    let data = read_all(&w);
    let sites = w.run(&["site", "list", "--json"]).ok().stdout;
    let other = w
        .run(&["site", "show", "other.example", "--json"])
        .ok()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&other).unwrap();
    assert!(v["policy"].is_object(), "{other}");
    let packs = pack_files(&w.repo).len();

    remove_catalog(&w.repo);
    let r = w.run(&["-v", "repair", "catalog"]).ok();
    assert!(
        r.stdout.contains("4 snapshot(s) (2 pinned)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("site set"), "{}", r.stdout);
    assert_eq!(listed(&w), before, "rows, labels and pins come back");
    assert_eq!(read_all(&w), data, "every snapshot reads back the same");
    assert_eq!(w.run(&["site", "list", "--json"]).ok().stdout, sites);
    assert_eq!(pack_files(&w.repo).len(), packs);
    w.run(&["verify", "--read-data"]).ok();
    // The retention policy came back with the site.
    assert_eq!(
        w.run(&["site", "show", "other.example", "--json"])
            .ok()
            .stdout,
        other
    );

    // A real restore from the rebuilt catalogue brings the live site back.
    let first = before
        .keys()
        .find(|id| before[*id]["kind"] == "manual" && before[*id]["site"] == "example.com")
        .unwrap();
    w.run(&["restore", first, "--yes"]).ok();
    assert!(!site.dir.join("files/new.txt").exists());
    w.run(&["gc"]).ok();
    w.run(&["verify", "--read-data"]).ok();
}

#[test]
fn init_refuses_a_folder_with_data_and_names_repair() {
    let (w, _) = world_with_history();
    let packs = pack_files(&w.repo);
    remove_catalog(&w.repo);
    let r = w.run(&["init"]);
    assert_one_line_error(&r, 1, &["repair catalog"]);
    assert!(!w.repo.join("catalog.sqlite").exists());
    assert_eq!(pack_files(&w.repo), packs);
    w.run(&["repair", "catalog"]).ok();
    w.run(&["verify"]).ok();
}

#[test]
fn repair_catalog_survives_sigkill_at_every_step() {
    let (w, _) = world_with_history();
    let before = listed(&w);
    let points = [
        "repair-pack:1",
        "repair-packs-indexed",
        "repair-sites",
        "repair-snapshot:2",
        "repair-before-rename",
        "repair-renamed",
    ];
    for keep_old in [true, false] {
        for point in points {
            if !keep_old {
                remove_catalog(&w.repo);
            }
            let (status, _, stderr) =
                w.run_status(&["repair", "catalog"], &[("SITESNAP_FAILPOINT", point)]);
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}: {stderr}");
            if keep_old || point == "repair-renamed" {
                // The old catalogue (or the complete new one) is in place and works.
                assert_eq!(listed(&w), before, "{point}");
            } else {
                assert!(!w.repo.join("catalog.sqlite").exists(), "{point}");
            }
            w.run(&["repair", "catalog"]).ok();
            assert_eq!(listed(&w), before, "{point}: rerun");
            assert!(
                !Repo_new(&w.repo).exists(),
                "{point}: leftover catalog.sqlite.new"
            );
        }
    }
    w.run(&["verify", "--read-data"]).ok();
}

#[allow(non_snake_case)]
fn Repo_new(repo: &Path) -> std::path::PathBuf {
    repo.join("catalog.sqlite.new")
}

#[test]
fn a_snapshot_whose_row_never_came_is_kept_by_gc_and_brought_back_by_repair() {
    let (w, _) = world_with_history();
    let before = listed(&w);
    let (status, _, stderr) = w.run_status(
        &["snapshot", "example.com"],
        &[("SITESNAP_FAILPOINT", "manifest-written")],
    );
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr}");
    assert_eq!(listed(&w), before, "no row yet");
    let v = w.run(&["verify"]).fails(1);
    assert!(v.stdout.contains("repair catalog"), "{}", v.stdout);
    assert!(
        v.stdout.contains("unknown to the catalogue"),
        "{}",
        v.stdout
    );
    let packs = pack_files(&w.repo);
    let g = w.run(&["gc"]);
    assert_one_line_error(&g, 1, &["disagree", "repair catalog"]);
    assert_eq!(pack_files(&w.repo), packs, "gc deleted nothing");

    w.run(&["repair", "catalog"]).ok();
    let after = listed(&w);
    assert_eq!(after.len(), before.len() + 1);
    let new = after.keys().find(|k| !before.contains_key(*k)).unwrap();
    w.run(&["gc"]).ok();
    restore_read(&w.repo, new);
    w.run(&["verify", "--read-data"]).ok();
}

#[test]
fn a_forget_killed_after_its_manifest_went_is_finished_by_repair() {
    let (w, _) = world_with_history();
    let before = listed(&w);
    let victim = before
        .iter()
        .find(|(_, s)| s["site"] == "other.example")
        .map(|(k, _)| k.clone())
        .unwrap();
    let (status, _, _) = w.run_status(
        &["forget", &victim],
        &[("SITESNAP_FAILPOINT", "manifest-removed")],
    );
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(listed(&w), before, "the row is still there");
    let v = w.run(&["verify"]).fails(1);
    assert!(v.stdout.contains("without a manifest"), "{}", v.stdout);
    assert_one_line_error(
        &w.run(&["gc"]),
        1,
        &["without a manifest", "repair catalog"],
    );
    w.run(&["repair", "catalog"]).ok();
    let after = listed(&w);
    assert!(!after.contains_key(&victim));
    assert_eq!(after.len(), before.len() - 1);
    w.run(&["gc"]).ok();
    w.run(&["verify", "--read-data"]).ok();
}

#[test]
fn gc_keeps_what_the_store_manifests_name_and_removes_store_garbage() {
    let (w, _) = world_with_history();
    let data = read_all(&w);
    // Forget the second site's snapshot: its blob lists and manifest become garbage.
    let other: Vec<String> = listed(&w)
        .into_iter()
        .filter(|(_, s)| s["site"] == "other.example")
        .map(|(k, _)| k)
        .collect();
    w.run(&["forget", &other[0]]).ok();
    let g = w.run(&["gc", "--json"]).ok().json();
    assert!(g["objects_removed"].as_u64().unwrap() >= 1, "{g}");
    let v = w.run(&["verify", "--json"]).ok().json();
    assert_eq!(v["unknown_objects"].as_array().unwrap().len(), 0, "{v}");
    remove_catalog(&w.repo);
    w.run(&["repair", "catalog"]).ok();
    let mut want = data;
    want.remove(&other[0]);
    assert_eq!(read_all(&w), want);
}

/// Turns a v2 repository into what an older sitesnap left: no store objects besides packs, a
/// schema-3 catalogue without `meta`.
fn make_v1(w: &World) {
    let repo = &w.repo;
    // Its packs as the first store format wrote them (`SSNPACK1`), indexed from their headers.
    assert!(packs_to_format_1(repo) > 0);
    remove_catalog(repo);
    w.run(&["repair", "catalog"]).ok();
    for d in ["snapshots", "blobs", "sites", "pins"] {
        let _ = fs::remove_dir_all(repo.join("data").join(d));
    }
    let c = rusqlite::Connection::open(repo.join("catalog.sqlite")).unwrap();
    // Schema 3 as it was: no `meta` (schema 4), no damage tables (5), no structure tables (6),
    // no pack formats nor places inside frames (7), no indirect chunk lists (8), no list
    // levels (9), a files-cache row per file (10).
    c.execute_batch(
        "DROP TABLE meta; DROP TABLE damaged_chunks; DROP TABLE snapshot_damage;
         ALTER TABLE sites DROP COLUMN structure_tables;
         ALTER TABLE chunks DROP COLUMN inner_offset; ALTER TABLE packs DROP COLUMN format;
         ALTER TABLE blobs DROP COLUMN count; ALTER TABLE blobs DROP COLUMN levels;
         ALTER TABLE cache_dirs DROP COLUMN files;
         CREATE TABLE files_cache (path BLOB PRIMARY KEY, dev INTEGER NOT NULL,
             ino INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
             ctime_ns INTEGER NOT NULL, chunks BLOB NOT NULL) WITHOUT ROWID;
         PRAGMA user_version = 3;",
    )
    .unwrap();
}

#[test]
fn a_v1_repository_is_upgraded_even_when_killed_in_the_middle() {
    let (w, _) = world_with_history();
    let before = listed(&w);
    let data = read_all(&w);
    make_v1(&w);
    // Reading still works on v1.
    assert_eq!(listed(&w), before);
    for point in ["upgrade-sites", "upgrade-snapshot:2"] {
        let (status, _, stderr) = w.run_status(&["upgrade"], &[("SITESNAP_FAILPOINT", point)]);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}: {stderr}");
        assert_eq!(listed(&w), before, "{point}");
    }
    let r = w.run(&["-v", "upgrade"]).ok();
    assert!(r.stdout.contains("upgraded to format 2"), "{}", r.stdout);
    assert!(w.run(&["-v", "upgrade"]).ok().stdout.contains("already"));
    w.run(&["verify", "--read-data"]).ok();
    remove_catalog(&w.repo);
    w.run(&["repair", "catalog"]).ok();
    assert_eq!(listed(&w), before);
    assert_eq!(read_all(&w), data);
}

#[test]
fn a_v1_repository_gets_its_objects_at_the_first_write() {
    let (w, _) = world_with_history();
    let before = listed(&w);
    make_v1(&w);
    // gc on its own (a dry run does not write) says what to run; a writing command upgrades.
    assert_one_line_error(&w.run(&["gc", "--dry-run"]), 1, &[" upgrade`"]);
    w.run(&["gc"]).ok();
    w.run(&["verify"]).ok();
    w.snapshot("example.com");
    remove_catalog(&w.repo);
    w.run(&["repair", "catalog"]).ok();
    assert_eq!(listed(&w).len(), before.len() + 1);
}

#[test]
fn repair_names_the_sites_whose_password_is_not_in_the_store() {
    let w = World::new();
    let p = w.platform("platforms/d7", 5);
    fs::create_dir_all(p.join("sites/pw.example")).unwrap();
    let url = "mysql://drupal:s3cret%21@127.0.0.1:3306/pw_example";
    w.run(&[
        "site",
        "add",
        "pw.example",
        "--platform",
        &p.to_string_lossy(),
        "--db",
        url,
    ])
    .ok();
    // Nothing under the repository's data holds the password.
    for f in walkdir::WalkDir::new(w.repo.join("data")) {
        let f = f.unwrap();
        if f.file_type().is_file() {
            let b = fs::read(f.path()).unwrap();
            assert!(
                !b.windows(6).any(|x| x == b"s3cret"),
                "{}",
                f.path().display()
            );
        }
    }
    // With the old catalogue readable, the password is kept.
    let r = w.run(&["repair", "catalog"]).ok();
    assert!(!r.stdout.contains("site set"), "{}", r.stdout);
    let c = w.catalog();
    let kept: String = c
        .query_row("SELECT db_url FROM sites", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, url);
    drop(c);
    // Without it, repair says which site needs `site set --db`, one line each.
    remove_catalog(&w.repo);
    let r = w.run(&["repair", "catalog"]).ok();
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("site set"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    assert!(
        lines[0].contains("pw.example") && lines[0].contains("--db"),
        "{}",
        r.stdout
    );
    let c = w.catalog();
    let got: String = c
        .query_row("SELECT db_url FROM sites", [], |r| r.get(0))
        .unwrap();
    assert_eq!(got, "mysql://drupal@127.0.0.1:3306/pw_example");
}

/// The repository's files but the writer lock and the catalogue (compared through `list`),
/// each with its size, bytes' hash and mode; not its mtime (an object put back is written
/// anew, with the same bytes).
fn repo_files(w: &World) -> Vec<String> {
    let l = listing_filtered(&w.repo, |p| {
        p != Path::new("lock") && !p.to_string_lossy().starts_with("catalog.sqlite")
    });
    (l.into_iter())
        .filter(|e| !e.contains(" dir "))
        .map(|e| e.split(" mtime=").next().unwrap_or_default().to_string())
        .collect()
}

/// A forget whose rows' transaction FAILS puts back the manifests and pins it removed, byte
/// for byte: no row is left without its manifest, `verify` and `gc` find nothing out of step,
/// and the same forget then goes through. A forget of several snapshots, one of them pinned
/// (`--force`), whose first removal already happened.
#[test]
fn a_forget_that_fails_puts_back_what_it_removed() {
    let (w, _) = world_with_history();
    let before = listed(&w);
    let files = repo_files(&w);
    let data = read_all(&w);
    let ids: Vec<String> = before.keys().take(3).cloned().collect();
    assert!(
        ids.iter().any(|i| before[i]["pinned"] == true),
        "{before:?}"
    );
    let mut args = vec!["forget", "--force"];
    args.extend(ids.iter().map(String::as_str));
    let r = w.run_env(&args, &[("SITESNAP_FAILPOINT", "forget-rows@error")]);
    assert_one_line_error(&r, 1, &["forget-rows"]);
    assert_eq!(listed(&w), before, "the catalogue changed");
    assert_eq!(repo_files(&w), files, "the store changed");
    w.run(&["verify"]).ok();
    w.run(&["gc"]).ok();
    assert_eq!(read_all(&w), data);

    w.run(&args).ok();
    assert_eq!(listed(&w).len(), before.len() - 3);
    w.run(&["verify"]).ok();
}

/// A site removal (with its snapshots) whose rows' transaction FAILS puts back every
/// manifest, pin and site object it removed; when putting back fails too, the one line says
/// both and names `repair catalog`, which then brings the catalogue in step with the store.
#[test]
fn a_site_removal_that_fails_puts_back_what_it_removed() {
    let (w, _) = world_with_history();
    let before = listed(&w);
    let files = repo_files(&w);
    let remove = ["site", "remove", "example.com", "--forget-snapshots"];
    let r = w.run_env(&remove, &[("SITESNAP_FAILPOINT", "site-rows@error")]);
    assert_one_line_error(&r, 1, &["site-rows"]);
    assert_eq!(listed(&w), before, "the catalogue changed");
    assert_eq!(repo_files(&w), files, "the store changed");
    w.run(&["verify"]).ok();
    w.run(&["site", "show", "example.com"]).ok();

    let r = w.run_env(
        &remove,
        &[("SITESNAP_FAILPOINT", "site-rows@error,store-undo@error")],
    );
    assert_one_line_error(&r, 1, &["site-rows", "store-undo", "repair catalog"]);
    w.run(&["verify"]).fails(1);
    w.run(&["repair", "catalog"]).ok();
    w.run(&["verify"]).ok();
}

/// A pin or an unpin whose row update FAILS puts the pin object back as it was (removes the
/// new one, writes the removed one again): `list` and the store as before, `verify` clean;
/// the same pin or unpin then goes through.
#[test]
fn a_pin_or_unpin_that_fails_leaves_the_pin_object_as_it_was() {
    let (w, _) = world_with_history();
    let before = listed(&w);
    let pinned = before
        .iter()
        .find(|(_, s)| s["pinned"] == true)
        .unwrap()
        .0
        .clone();
    let unpinned = before
        .iter()
        .find(|(_, s)| s["pinned"] == false)
        .unwrap()
        .0
        .clone();
    let files = repo_files(&w);
    for (cmd, id) in [("pin", &unpinned), ("unpin", &pinned)] {
        let r = w.run_env(&[cmd, id], &[("SITESNAP_FAILPOINT", "pin-row@error")]);
        assert_one_line_error(&r, 1, &["pin-row"]);
        assert_eq!(listed(&w), before, "{cmd}: the catalogue changed");
        assert_eq!(repo_files(&w), files, "{cmd}: the store changed");
        w.run(&["verify"]).ok();
    }
    for (cmd, id) in [("pin", &unpinned), ("unpin", &pinned)] {
        w.run(&[cmd, id]).ok();
    }
    let after = listed(&w);
    assert_eq!(after[&unpinned]["pinned"], true);
    assert_eq!(after[&pinned]["pinned"], false);
    w.run(&["verify"]).ok();
}

/// A site registration, a change of a site and a retention policy whose row change FAILS put
/// the site objects back as they were (the new version removed, the old one written again):
/// the site as `site show` gives it and the store as before, `verify` clean; the same
/// commands then go through.
#[test]
fn a_site_change_that_fails_leaves_the_site_objects_as_they_were() {
    let (w, site) = world_with_history();
    let show = |w: &World| {
        w.run(&["site", "show", "example.com", "--json"])
            .ok()
            .json()
    };
    let shown = show(&w);
    let files = repo_files(&w);
    let platform = site.dir.parent().unwrap().parent().unwrap().to_path_buf();
    let p = platform.to_str().unwrap();
    let changes: [&[&str]; 3] = [
        &["site", "set", "example.com", "--keep-last", "9"],
        &["site", "set", "example.com", "--extra-path", "private"],
        &["site", "add", "third.example", "--platform", p],
    ];
    for args in changes {
        let r = w.run_env(args, &[("SITESNAP_FAILPOINT", "site-row@error")]);
        assert_one_line_error(&r, 1, &["site-row"]);
        assert_eq!(show(&w), shown, "{args:?}: the site changed");
        assert_eq!(repo_files(&w), files, "{args:?}: the store changed");
        w.run(&["verify"]).ok();
    }
    w.run(&["site", "show", "third.example"]).fails(1);
    for args in changes {
        w.run(args).ok();
    }
    assert_ne!(show(&w), shown);
    w.run(&["verify"]).ok();
}
