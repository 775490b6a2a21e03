//! Restore returns a site to the platform it was on (issue 3): the seed's disaster end to end,
//! with the old platform kept, deleted or modified; undo; crash at every step then recover;
//! bad input and corrupt data that must leave the live site untouched.
use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const URI: &str = "shop.example.com";

/// Everything about a site's state that a restore must bring back.
#[derive(Debug, PartialEq, Eq, Clone)]
struct State {
    /// Which platforms hold sites/<uri>.
    on_a: bool,
    on_b: bool,
    site_files: Vec<String>,
    tables: Vec<String>,
    /// SHA-256 of the node table's rows.
    nodes: String,
    vhost: String,
    alias: String,
    vhost_mode: u32,
    /// Owner, group and mode of the site folder and of its SQLite file.
    dir_meta: (u32, u32, u32),
    db_meta: (u32, u32, u32),
}

fn meta(p: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

struct Scenario {
    w: World,
    a: PathBuf,
    b: PathBuf,
    site: Site,
    snap: String,
    before: State,
    platform_a: Vec<String>,
}

fn not_db(p: &Path) -> bool {
    !p.to_string_lossy().starts_with("site.sqlite")
}

fn state(sc_a: &Path, sc_b: &Path, site: &Site) -> State {
    let on_a = sc_a.join("sites").join(URI).exists();
    let on_b = sc_b.join("sites").join(URI).exists();
    let dir = if on_a {
        sc_a.join("sites").join(URI)
    } else {
        sc_b.join("sites").join(URI)
    };
    let db = dir.join("site.sqlite");
    State {
        on_a,
        on_b,
        site_files: listing_filtered(&dir, not_db),
        tables: sqlite_tables(&db),
        nodes: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(sqlite_rows(&db, "node").join("\n")))
        },
        vhost: fs::read_to_string(&site.vhost).unwrap(),
        alias: fs::read_to_string(&site.alias).unwrap(),
        vhost_mode: fs::metadata(&site.vhost).unwrap().permissions().mode() & 0o7777,
        dir_meta: meta(&dir),
        db_meta: meta(&db),
    }
}

fn platform_listing(p: &Path) -> Vec<String> {
    listing_filtered(p, |rel| {
        let mut c = rel.components();
        match (c.next(), c.next()) {
            (Some(a), Some(b)) if a.as_os_str() == "sites" => {
                let n = b.as_os_str();
                n == "all" || n == "default" || n == "sites.php"
            }
            _ => true,
        }
    })
}

/// Site on platform A, snapshot, then the failed "migration" to platform B.
fn migrated() -> Scenario {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 400);
    fs::set_permissions(&a, fs::Permissions::from_mode(0o750)).unwrap();
    let site = w.site(URI, &a);
    // The web server owns the site folder and its database.
    let st = std::process::Command::new("chown")
        .args(["-R", "33:33"])
        .arg(&site.dir)
        .status()
        .unwrap();
    assert!(st.success());
    fs::set_permissions(&site.dir, fs::Permissions::from_mode(0o2775)).unwrap();
    fs::set_permissions(&site.db, fs::Permissions::from_mode(0o664)).unwrap();
    // Make sure the snapshot's mtimes differ from what the migration writes.
    let b = w.platform("platforms/drupal-7.105", 420);
    let before = state(&a, &b, &site);
    let platform_a = platform_listing(&a);
    let snap = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    migrate(&w, &a, &b, &site);
    Scenario {
        w,
        a,
        b,
        site,
        snap,
        before,
        platform_a,
    }
}

/// What Aegir's migrate does, and what a failed update leaves behind.
fn migrate(_w: &World, a: &Path, b: &Path, site: &Site) {
    let from = a.join("sites").join(URI);
    let to = b.join("sites").join(URI);
    if fs::rename(&from, &to).is_err() {
        // Another filesystem: copy like Aegir's deploy does, then remove the old folder.
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(&from)
            .arg(&to)
            .status()
            .unwrap();
        assert!(st.success());
        fs::remove_dir_all(&from).unwrap();
    }
    let a_s = a.display().to_string();
    let b_s = b.display().to_string();
    for f in [&site.vhost, &site.alias] {
        let t = fs::read_to_string(f).unwrap().replace(&a_s, &b_s);
        fs::write(f, t).unwrap();
    }
    fs::set_permissions(&site.vhost, fs::Permissions::from_mode(0o640)).unwrap();
    let db = to.join("site.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE cache_update (cid TEXT, data BLOB);
         INSERT INTO cache_update VALUES ('x', 'y');
         UPDATE node SET title = 'updated ' || nid WHERE nid % 3 = 0;
         DELETE FROM node WHERE nid > 190;",
    )
    .unwrap();
    drop(c);
    fs::write(to.join("files/new-after-migrate.txt"), "new").unwrap();
    // The new platform's tooling reset the folder's mode.
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(to.join("settings.php"), "<?php // rewritten by update\n").unwrap();
}

fn restore(w: &World, id: &str, extra: &[&str]) -> Run {
    // -v: the plan and the summary (with its undo hint) off a terminal.
    let mut args = vec!["-v", "restore", id, "--yes"];
    args.extend_from_slice(extra);
    w.run(&args)
}

fn site_platform(w: &World) -> String {
    w.run(&["site", "show", URI, "--json"]).ok().json()["platform"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn restore_puts_the_site_back_on_its_old_platform() {
    let sc = migrated();
    let migrated_state = state(&sc.a, &sc.b, &sc.site);
    assert!(migrated_state.on_b && !migrated_state.on_a);

    // The plan is printed first, and a dry run changes nothing.
    let dry = sc.w.run(&["restore", &sc.snap, "--dry-run"]).ok();
    assert!(dry.stdout.contains("back to:"), "{}", dry.stdout);
    assert!(dry.stdout.contains(&sc.a.display().to_string()));
    assert!(dry.stdout.contains("used as it is"), "{}", dry.stdout);
    assert_eq!(state(&sc.a, &sc.b, &sc.site), migrated_state);

    // Without a terminal and without --yes it refuses.
    let r = sc.w.run(&["restore", &sc.snap]).fails(1);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(state(&sc.a, &sc.b, &sc.site), migrated_state);

    let r = restore(&sc.w, &sc.snap, &[]).ok();
    assert!(
        r.stdout.contains(&format!(
            "undo with: sitesnap --repo {} restore",
            sc.w.repo.display()
        )),
        "{}",
        r.stdout
    );
    let now = state(&sc.a, &sc.b, &sc.site);
    assert_eq!(now, sc.before);
    assert!(!sc.b.join("sites").join(URI).exists());
    assert!(
        !sc.a
            .join("sites")
            .join(URI)
            .join("files/new-after-migrate.txt")
            .exists()
    );
    assert!(!now.tables.contains(&"cache_update".to_string()));
    assert!(now.vhost.contains(&sc.a.display().to_string()));
    assert_eq!(site_platform(&sc.w), sc.a.display().to_string());
    // No temporary or aside folders are left in either platform.
    for p in [&sc.a, &sc.b] {
        let leftovers: Vec<_> = fs::read_dir(p.join("sites"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("sitesnap"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    // The platform itself was not touched.
    assert_eq!(platform_listing(&sc.a), sc.platform_a);

    // A pre-restore snapshot was taken, and restoring it undoes the restore exactly.
    let list = sc.w.run(&["list", URI, "--json"]).ok().json();
    let pre: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "pre-restore")
        .collect();
    assert_eq!(pre.len(), 1);
    let pre_id = pre[0]["id"].as_str().unwrap().to_string();
    assert_eq!(pre[0]["platform_path"], sc.b.display().to_string());
    restore(&sc.w, &pre_id, &[]).ok();
    assert_eq!(state(&sc.a, &sc.b, &sc.site), migrated_state);
    assert_eq!(site_platform(&sc.w), sc.b.display().to_string());

    // And back again: the next snapshot of the restored site reads almost nothing (the files
    // cache was refreshed after the restore).
    restore(&sc.w, &sc.snap, &[]).ok();
    assert_eq!(state(&sc.a, &sc.b, &sc.site), sc.before);
    let again = sc.w.snapshot(URI);
    assert_eq!(again["bytes_read"], 0, "{again}");
}

#[test]
fn deleted_platform_is_recreated_exactly() {
    let sc = migrated();
    let root_meta = meta(&sc.a);
    fs::remove_dir_all(&sc.a).unwrap();
    let r = restore(&sc.w, &sc.snap, &[]).ok();
    assert!(r.stdout.contains("recreated"), "{}", r.stdout);
    assert_eq!(platform_listing(&sc.a), sc.platform_a);
    assert_eq!(meta(&sc.a), root_meta);
    assert_eq!(state(&sc.a, &sc.b, &sc.site), sc.before);
    assert!(!sc.b.join("sites").join(URI).exists());
    // The recreated platform has no stray temporary folders beside it.
    let parent = sc.a.parent().unwrap();
    let stray: Vec<_> = fs::read_dir(parent)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("sitesnap"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    // The files cache holds every written file under its place after the rename (keyed by
    // the stat the restore read from each file it wrote): the next snapshot reads nothing.
    let again = sc.w.snapshot(URI);
    assert_eq!(again["bytes_read"], 0, "{again}");
    assert_eq!(again["bytes_added"], 0, "{again}");
}

/// A recreated platform has every file's owner, mode and time back exactly, whatever owner and
/// mode new files are given where it is written: its parent folder passes a group on (set-gid,
/// as root), and the restore runs under umask 027 once and 000 once (files created with their
/// recorded mode and owner skip `fchown`/`fchmod`; every other one must still get both).
#[test]
fn a_recreated_platform_has_every_owner_mode_and_time_back() {
    use std::os::unix::process::CommandExt;
    let root = unsafe { libc::geteuid() } == 0;
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    decorate_platform(&p);
    let modes = [
        0o644, 0o664, 0o666, 0o600, 0o640, 0o755, 0o777, 0o4755, 0o2644,
    ];
    for m in modes {
        let f = p.join(format!("includes/mode-{m:o}.txt"));
        fs::write(&f, format!("mode {m:o}\n")).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(m)).unwrap();
    }
    if root {
        // One file already has the group new files will get; the rest must be given theirs.
        let f = p.join("includes/group-5678.txt");
        fs::write(&f, "group 5678\n").unwrap();
        std::os::unix::fs::chown(&f, Some(0), Some(5678)).unwrap();
        let parent = p.parent().unwrap();
        std::os::unix::fs::chown(parent, Some(0), Some(5678)).unwrap();
        fs::set_permissions(parent, fs::Permissions::from_mode(0o2775)).unwrap();
    }
    nanosecond_mtimes(&p, 1_600_000_000);
    let _site = w.site(URI, &p);
    let want = live_records(&p, platform_keep);
    let snap = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    for umask in [0o027, 0o000] {
        let aside = w.path(&format!("aside-{umask:o}"));
        fs::rename(&p, &aside).unwrap();
        let mut c = w.cmd();
        c.args(["restore", &snap, "--yes"]);
        // SAFETY: umask is async-signal-safe and touches no memory.
        unsafe {
            c.pre_exec(move || {
                libc::umask(umask);
                Ok(())
            })
        };
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = live_records(&p, platform_keep);
        assert_same_records(&format!("platform under umask {umask:o}"), &got, &want);
        fs::remove_dir_all(&p).unwrap();
        fs::rename(&aside, &p).unwrap();
    }
}

#[test]
fn modified_platform_is_refused_then_repaired() {
    let sc = migrated();
    // Another site lives on platform A too.
    make_site(sc.w.dir.path(), "other.example.org", &sc.a);
    let other_before = listing(&sc.a.join("sites/other.example.org"));
    fs::write(
        sc.a.join("includes/file0.php"),
        "<?php // hacked in place\n",
    )
    .unwrap();
    fs::write(sc.a.join("modules/node/added.php"), "<?php\n").unwrap();
    fs::remove_file(sc.a.join("themes/bartik/file6.php")).unwrap();
    // An Aegir site alias link in sites/ belongs to a site, not to the platform's code.
    std::os::unix::fs::symlink(
        "other.example.org",
        sc.a.join("sites/www.other.example.org"),
    )
    .unwrap();
    let migrated_state = state(&sc.a, &sc.b, &sc.site);

    let r = restore(&sc.w, &sc.snap, &[]).fails(1);
    assert!(r.stdout.contains("~ includes/file0.php"), "{}", r.stdout);
    assert!(
        r.stdout.contains("+ modules/node/added.php"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("- themes/bartik/file6.php"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("--repair-platform"), "{}", r.stderr);
    assert!(!r.stdout.contains("www.other.example.org"), "{}", r.stdout);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(state(&sc.a, &sc.b, &sc.site), migrated_state);
    assert_eq!(
        sc.w.snapshot_count(),
        1,
        "a refused restore takes no snapshot"
    );

    let r = restore(&sc.w, &sc.snap, &["--repair-platform"]).ok();
    assert!(r.stdout.contains("other.example.org"), "{}", r.stdout);
    assert_eq!(platform_listing(&sc.a), sc.platform_a);
    assert_eq!(state(&sc.a, &sc.b, &sc.site), sc.before);
    // The other site's folder is untouched; the replaced platform files are kept aside.
    assert_eq!(listing(&sc.a.join("sites/other.example.org")), other_before);
    let aside: Vec<_> = fs::read_dir(sc.a.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("sitesnap-replaced")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    let kept = aside[0].path();
    assert_eq!(
        fs::read_to_string(kept.join("includes/file0.php")).unwrap(),
        "<?php // hacked in place\n"
    );
    assert!(kept.join("modules/node/added.php").exists());
}

/// The failure points of a restore, in order.
const POINTS: &[&str] = &[
    "restore-pre-snapshot",
    "restore-prepare-done",
    "restore-prepared",
    "restore-platform",
    "restore-site",
    "restore-db",
    "restore-bindings",
];

#[test]
fn a_killed_restore_is_recovered_whole() {
    for (i, point) in POINTS.iter().enumerate() {
        let sc = migrated();
        if i % 2 == 1 {
            // Half of the runs also recreate a deleted platform.
            fs::remove_dir_all(&sc.a).unwrap();
        }
        let migrated_state = state(&sc.a, &sc.b, &sc.site);
        let r = sc.w.run_env(
            &["restore", &sc.snap, "--yes"],
            &[("SITESNAP_FAILPOINT", point)],
        );
        assert_ne!(r.code, 0, "{point}: the restore should have been killed");
        if *point != "restore-pre-snapshot" {
            // While the journal is open, the site refuses snapshots and restores.
            let s = sc.w.run(&["snapshot", URI]).fails(1);
            assert!(
                s.stderr
                    .contains(&format!("sitesnap --repo {} recover", sc.w.repo.display())),
                "{point}: {}",
                s.stderr
            );
            let s = restore(&sc.w, &sc.snap, &[]).fails(1);
            assert!(s.stderr.contains(" recover"), "{point}: {}", s.stderr);
        }
        sc.w.run(&["recover"]).ok();
        let now = state(&sc.a, &sc.b, &sc.site);
        assert!(
            now == sc.before || now == migrated_state,
            "{point}: site is neither restored nor as before:\n{now:#?}"
        );
        if i >= 2 {
            assert_eq!(now, sc.before, "{point}: a prepared restore is finished");
            assert_eq!(platform_listing(&sc.a), sc.platform_a, "{point}");
        }
        // Nothing temporary is left anywhere, and the site works normally again.
        for dir in [sc.a.parent().unwrap().to_path_buf(), sc.b.join("sites")] {
            let stray: Vec<_> = fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".sitesnap-"))
                .collect();
            assert!(stray.is_empty(), "{point}: {stray:?}");
        }
        if sc.a.exists() {
            let stray: Vec<_> = fs::read_dir(sc.a.join("sites"))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".sitesnap-"))
                .collect();
            assert!(stray.is_empty(), "{point}: {stray:?}");
        }
        let again = sc.w.snapshot(URI);
        if i >= 2 {
            // `recover` looked every restored file up for the files cache.
            assert_eq!(again["bytes_read"], 0, "{point}: {again}");
        }
        sc.w.run(&["recover"]).ok();
    }
}

#[test]
fn unknown_and_ambiguous_ids_are_clear_errors() {
    let w = World::new();
    let p = w.platform("platforms/p", 30);
    w.site(URI, &p);
    let r = w.run(&["restore", "abcdef12", "--yes"]).fails(1);
    assert_eq!(
        r.stderr.trim(),
        "sitesnap: error: no snapshot matches id 'abcdef12'"
    );
    let r = w.run(&["restore", "../x", "--yes"]).fails(1);
    assert!(r.stderr.contains("no snapshot matches"), "{}", r.stderr);
    // 17 snapshots: two share a first hex digit.
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..17 {
        ids.push(w.snapshot(URI)["id"].as_str().unwrap().to_string());
    }
    let digit = ids
        .iter()
        .map(|i| &i[..1])
        .find(|d| ids.iter().filter(|i| i.starts_with(*d)).count() > 1)
        .unwrap()
        .to_string();
    let before = w.snapshot_count();
    let r = w.run(&["restore", &digit, "--yes"]).fails(1);
    assert!(r.stderr.contains("ambiguous"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert_eq!(w.snapshot_count(), before);
}

/// Flips one byte inside the stored chunk of a site file.
fn corrupt_chunk_of(w: &World, snap: &str, rel: &str) {
    let repo = sitesnap::repo::Repo::open(&w.repo, None).unwrap();
    let s = repo.cat.resolve_snapshot(snap).unwrap();
    let tree = sitesnap::capture::load_tree(&repo, &s.site_tree.unwrap()).unwrap();
    let e = tree
        .entries
        .iter()
        .find(|e| e.path_str() == rel)
        .expect("file in tree");
    let loc = repo.cat.chunk_location(&e.chunks[0]).unwrap().unwrap();
    let pack = sitesnap::store::pack_path(&repo.data_dir(), &loc.pack);
    let mut bytes = fs::read(&pack).unwrap();
    bytes[loc.offset as usize + loc.clen as usize / 2] ^= 0x40;
    fs::write(&pack, bytes).unwrap();
}

#[test]
fn corrupt_data_is_refused_before_the_site_is_touched() {
    let sc = migrated();
    let migrated_state = state(&sc.a, &sc.b, &sc.site);
    corrupt_chunk_of(&sc.w, &sc.snap, "files/upload7.bin");
    let r = restore(&sc.w, &sc.snap, &[]).fails(1);
    assert!(r.stderr.contains("files/upload7.bin"), "{}", r.stderr);
    assert!(r.stderr.contains(&sc.snap), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(state(&sc.a, &sc.b, &sc.site), migrated_state);
    // No journal stays open and nothing temporary is left.
    sc.w.run(&["snapshot", URI]).ok();
    let stray: Vec<_> = fs::read_dir(sc.a.join("sites"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".sitesnap-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn unwritable_target_leaves_the_live_site_untouched() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root for chattr +i; skipped");
        return;
    }
    let sc = migrated();
    let migrated_state = state(&sc.a, &sc.b, &sc.site);
    let sites = sc.a.join("sites");
    let st = std::process::Command::new("chattr")
        .arg("+i")
        .arg(&sites)
        .status()
        .unwrap();
    assert!(st.success());
    let r = restore(&sc.w, &sc.snap, &[]);
    std::process::Command::new("chattr")
        .arg("-i")
        .arg(&sites)
        .status()
        .unwrap();
    let r = r.fails(1);
    assert!(
        r.stderr.contains(&sites.display().to_string()),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(state(&sc.a, &sc.b, &sc.site), migrated_state);
}

#[test]
fn full_disk_leaves_the_live_site_untouched() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root to mount a small tmpfs; skipped");
        return;
    }
    let w = World::new();
    let small = w.path("small");
    fs::create_dir_all(&small).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(small.clone());
    let a = small.join("drupal-7.98");
    make_platform(&a, 50, "a");
    let site = w.site(URI, &a);
    let b = w.platform("platforms/drupal-7.105", 60);
    let snap = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    migrate(&w, &a, &b, &site);
    // Fill the small disk.
    let mut i = 0;
    while fs::write(small.join(format!("fill{i}")), vec![7u8; 256 << 10]).is_ok() {
        i += 1;
    }
    let _ = fs::write(small.join("fill-last"), vec![7u8; 4096]);
    let migrated_state = state(&a, &b, &site);
    let r = w.run(&["restore", &snap, "--yes"]).fails(1);
    assert!(r.stderr.contains("No space left"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(state(&a, &b, &site), migrated_state);
    // With room again, the same restore succeeds.
    for j in 0..=i {
        let _ = fs::remove_file(small.join(format!("fill{j}")));
    }
    let _ = fs::remove_file(small.join("fill-last"));
    w.run(&["restore", &snap, "--yes"]).ok();
    assert!(a.join("sites").join(URI).join("settings.php").exists());
}

/// A folder open that fails on its own while the snapshot's files are written (fail point
/// `restore-folder`: the third file's folder cannot be opened, `EACCES`, as for a folder the
/// restore may not enter): the restore fails with one line naming that folder and the cause,
/// both platforms (site folders, databases and any temporary folder included) and the binding
/// files are exactly as before, and the same restore then succeeds.
#[test]
fn a_folder_open_failing_mid_restore_leaves_the_live_site_untouched() {
    let sc = migrated();
    let live = || {
        (
            state(&sc.a, &sc.b, &sc.site),
            listing(&sc.a),
            listing(&sc.b),
        )
    };
    let before = live();
    let r = sc.w.run_env(
        &["restore", &sc.snap, "--yes"],
        &[("SITESNAP_FAILPOINT", "restore-folder:3@error")],
    );
    eprint!(
        "restore with a folder that cannot be opened -> {}: {}",
        r.code, r.stderr
    );
    assert_one_line_error(
        &r,
        1,
        &[
            "restore of site 'shop.example.com' to snapshot ",
            "Permission denied",
        ],
    );
    let named = r.stderr.split(": ").any(|part| {
        let dir = Path::new(part);
        dir.is_absolute() && (dir.starts_with(&sc.a) || dir.starts_with(&sc.b))
    });
    assert!(named, "the error names the folder: {}", r.stderr);
    assert_eq!(live(), before, "a failed restore changed the live site");
    restore(&sc.w, &sc.snap, &[]).ok();
    assert_eq!(state(&sc.a, &sc.b, &sc.site), sc.before);
    assert_eq!(platform_listing(&sc.a), sc.platform_a);
}

#[test]
fn database_only_and_files_only_restores() {
    let sc = migrated();
    let migrated_state = state(&sc.a, &sc.b, &sc.site);
    // --no-files: only the database goes back, in place on the current platform.
    restore(&sc.w, &sc.snap, &["--no-files"]).ok();
    let now = state(&sc.a, &sc.b, &sc.site);
    assert!(now.on_b && !now.on_a);
    assert_eq!(now.site_files, migrated_state.site_files);
    assert_eq!(now.vhost, migrated_state.vhost);
    assert_eq!(now.tables, sc.before.tables);
    assert_eq!(now.nodes, sc.before.nodes);

    // --no-db from the migrated state: files, platform and bindings go back, the database
    // that is live now comes along unchanged.
    let sc = migrated();
    let migrated_state = state(&sc.a, &sc.b, &sc.site);
    restore(&sc.w, &sc.snap, &["--no-db"]).ok();
    let now = state(&sc.a, &sc.b, &sc.site);
    assert!(now.on_a && !now.on_b);
    assert_eq!(now.site_files, sc.before.site_files);
    assert_eq!(now.vhost, sc.before.vhost);
    assert_eq!(now.tables, migrated_state.tables);
    assert_eq!(now.nodes, migrated_state.nodes);

    // Both flags together leave nothing to do: a usage error.
    let r =
        sc.w.run(&["restore", &sc.snap, "--yes", "--no-db", "--no-files"])
            .fails(2);
    assert_eq!(r.stderr.lines().count(), 1);
}

#[test]
fn diff_shows_what_a_migration_changed() {
    let sc = migrated();
    let d = sc.w.run(&["diff", &sc.snap, "--json"]).ok().json();
    assert_eq!(d["to"], "live");
    assert_eq!(d["platform_to"], sc.b.display().to_string());
    assert!(
        d["site"]["added"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "files/new-after-migrate.txt")
    );
    assert!(
        d["site"]["changed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "settings.php")
    );
    assert_eq!(d["bindings"]["changed"].as_array().unwrap().len(), 2);
    // Platform B has its own code: the platform differs too.
    assert!(!d["platform"]["changed"].as_array().unwrap().is_empty());
    // Against the pre-restore snapshot the database differs as well.
    restore(&sc.w, &sc.snap, &[]).ok();
    let list = sc.w.run(&["list", URI, "--json"]).ok().json();
    let pre = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "pre-restore")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = sc.w.run(&["diff", &sc.snap, &pre, "--json"]).ok().json();
    assert_eq!(d["database_changed"], true);
    let text = sc.w.run(&["diff", &sc.snap, &pre]).ok().stdout;
    assert!(text.contains("platform moved"), "{text}");
    // A snapshot against the restored live site: nothing differs.
    let d = sc.w.run(&["diff", &sc.snap, "--json"]).ok().json();
    for part in ["platform", "site", "bindings"] {
        for k in ["added", "removed", "changed"] {
            assert!(d[part][k].as_array().unwrap().is_empty(), "{part} {k}: {d}");
        }
    }
}

/// Recording the restored files in the files cache is only a shortcut: when it FAILS (fail
/// point `cache-refresh`), the restore still succeeds, with one warning saying the next
/// snapshot reads the files again, which it does; nothing is left open.
#[test]
fn a_files_cache_refresh_that_fails_only_warns() {
    let sc = migrated();
    let r = sc.w.run_env(
        &["restore", &sc.snap, "--yes"],
        &[("SITESNAP_FAILPOINT", "cache-refresh@error")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(warnings[0].contains("files cache"), "{}", r.stderr);
    assert_eq!(state(&sc.a, &sc.b, &sc.site), sc.before);
    assert_eq!(site_platform(&sc.w), sc.a.display().to_string());
    let again = sc.w.snapshot(URI);
    assert!(again["bytes_read"].as_u64().unwrap() > 0, "{again}");
    sc.w.run(&["verify"]).ok();
}

/// When every step of a restore is done but recording where the site is now FAILS (the site
/// row's change, fail point `site-row`), the one line says the steps are done and to run
/// `recover`; the journal stays open, so the site refuses other work until `recover` records
/// it; then the site is on the snapshot's platform in the catalogue too, and `verify` passes.
#[test]
fn a_restore_whose_record_fails_is_finished_by_recover() {
    let sc = migrated();
    let r = sc.w.run_env(
        &["restore", &sc.snap, "--yes"],
        &[("SITESNAP_FAILPOINT", "site-row@error")],
    );
    assert_one_line_error(
        &r,
        1,
        &["every step is done", "site-row", " recover` to finish"],
    );
    assert_eq!(
        state(&sc.a, &sc.b, &sc.site),
        sc.before,
        "the steps are done"
    );
    sc.w.run(&["verify"]).ok();
    let s = sc.w.run(&["snapshot", URI]).fails(1);
    assert!(s.stderr.contains(" recover"), "{}", s.stderr);
    sc.w.run(&["recover"]).ok();
    assert_eq!(site_platform(&sc.w), sc.a.display().to_string());
    assert_eq!(state(&sc.a, &sc.b, &sc.site), sc.before);
    sc.w.snapshot(URI);
    sc.w.run(&["verify"]).ok();
}

/// A file nobody may remove (`chattr +i`) in the live copy of a migrated site (on b): the
/// restore moves that copy aside and cannot remove it at the end.
fn stick_a_file_in_the_live_copy(sc: &Scenario) {
    let stuck = sc.b.join("sites").join(URI).join("stuck.txt");
    fs::write(&stuck, "cannot be removed\n").unwrap();
    crate::hardening::chattr(&stuck, "+i");
}

/// The replaced copies left beside the site folder on b, each one's stuck file made
/// removable again (so the test's folder can be deleted).
fn unstick_replaced_copies(sc: &Scenario) -> Vec<PathBuf> {
    let copies: Vec<PathBuf> = fs::read_dir(sc.b.join("sites"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".sitesnap-"))
        .collect();
    for c in copies.iter().map(|c| c.join("stuck.txt")) {
        if c.exists() {
            crate::hardening::chattr(&c, "-i");
        }
    }
    copies
}

/// A replaced copy of the site folder that cannot be removed at the end (a file in it made
/// immutable) no longer fails a restore that is done: the copy is kept and said in one
/// warning, the journal is closed (the site takes snapshots again), and the site is the
/// snapshot's. Before, the restore failed with its journal open, and every later snapshot of
/// the site was refused until someone removed the copy.
#[test]
fn a_replaced_copy_that_cannot_be_removed_is_kept_and_the_restore_finishes() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root for chattr +i; skipped");
        return;
    }
    let sc = migrated();
    stick_a_file_in_the_live_copy(&sc);
    let r = restore(&sc.w, &sc.snap, &[]);
    let copies = unstick_replaced_copies(&sc);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(
        warnings[0].contains("kept the replaced copy"),
        "{}",
        r.stderr
    );
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(copies[0].join("stuck.txt").exists());
    assert_eq!(state(&sc.a, &sc.b, &sc.site), sc.before);
    sc.w.run(&["snapshot", URI]).ok();
    sc.w.run(&["verify"]).ok();
}

/// The same when `recover` finishes a killed restore: its line says the restore finished and
/// names the replaced copy it kept, and the journal is closed.
#[test]
fn recover_keeps_a_replaced_copy_that_cannot_be_removed_and_says_so() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root for chattr +i; skipped");
        return;
    }
    let sc = migrated();
    stick_a_file_in_the_live_copy(&sc);
    let r = sc.w.run_env(
        &["restore", &sc.snap, "--yes"],
        &[("SITESNAP_FAILPOINT", "restore-bindings")],
    );
    assert_ne!(r.code, 0, "the restore should have been killed");
    let rec = sc.w.run(&["-v", "recover"]);
    let copies = unstick_replaced_copies(&sc);
    let rec = rec.ok();
    assert!(
        rec.stdout.contains("finished") && rec.stdout.contains("kept the replaced copy"),
        "{}",
        rec.stdout
    );
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(state(&sc.a, &sc.b, &sc.site), sc.before);
    sc.w.run(&["snapshot", URI]).ok();
}
