//! A `sites/` folder swapped for a symlink: refused before anything changes when it already is
//! one; when it is swapped while the restore runs (at a pause point: after the folder is held
//! and before the new site folder is written, or before the site step), nothing is written
//! through the symlink, the restore is rolled back in one line, and with the real folder put
//! back the world is exactly as before.
use super::*;
use std::fs;
use std::os::unix::fs::symlink;

const URI: &str = "swap.example.com";

/// A site, a snapshot, then a change after it; returns the snapshot id.
fn changed_site(w: &World, platform: &Path) -> (Site, String) {
    let site = w.site(URI, platform);
    let snap = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    fs::write(site.dir.join("files/after.txt"), "after the snapshot").unwrap();
    (site, snap)
}

fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_sites_folder_swapped_during_the_restore_is_not_written_through() {
    for point in ["restore-held", "restore-prepared"] {
        let w = World::new();
        let p = w.platform("platforms/d7", 30);
        let (_site, snap) = changed_site(&w, &p);
        let outside = w.path("outside");
        fs::create_dir_all(&outside).unwrap();
        let before = world_print(&w);
        let gate = w.path("gate");
        let child = spawn(
            &w.repo,
            &["restore", &snap, "--yes"],
            &[
                ("SITESNAP_PAUSE", point),
                ("SITESNAP_PAUSE_FILE", gate.to_str().unwrap()),
            ],
        );
        wait_for(&gate);
        // The swap: the real sites/ moved away, a symlink to another folder in its place.
        let sites = p.join("sites");
        let real = p.join("sites.real");
        fs::rename(&sites, &real).unwrap();
        symlink(&outside, &sites).unwrap();
        fs::remove_file(&gate).unwrap();
        let r = finish(child);
        assert_eq!(r.code, Some(1), "{point}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{point}: {}", r.stderr);
        assert!(
            r.stderr.contains("was replaced") && r.stderr.contains("rolled back"),
            "{point}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("/proc/self/fd"), "{}", r.stderr);
        assert_eq!(
            entries(&outside),
            Vec::<String>::new(),
            "{point}: written through the symlink"
        );
        fs::remove_file(&sites).unwrap();
        fs::rename(&real, &sites).unwrap();
        assert_same_world(point, &world_print(&w), &before);
        assert_eq!(journal_states(&w), ["rolled-back"], "{point}");
        // With the folder back, the same restore goes through.
        w.run(&["restore", &snap, "--yes"]).ok();
        assert!(!p.join("sites").join(URI).join("files/after.txt").exists());
    }
}

#[test]
fn a_sites_folder_that_is_a_symlink_is_refused_before_anything_changes() {
    let w = World::new();
    let p = w.platform("platforms/d7", 30);
    let (_site, snap) = changed_site(&w, &p);
    // sites/ now a symlink to the real folder moved elsewhere (the site still reachable).
    let moved = w.path("moved-sites");
    fs::rename(p.join("sites"), &moved).unwrap();
    symlink(&moved, p.join("sites")).unwrap();
    let before = (world_print(&w), w.snapshot_count());
    // The platform no longer matches the snapshot (its sites/ is a symlink now): refused as
    // drift; told to repair the platform, refused by the preflight as a symlink.
    for (extra, name) in [
        (None, "differs from snapshot"),
        (Some("--repair-platform"), "symlink"),
    ] {
        let mut args = vec!["restore", &snap, "--yes"];
        args.extend(extra);
        let r = w.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(name), "{args:?}: {}", r.stderr);
        assert_same_world("symlinked sites/", &world_print(&w), &before.0);
        assert_eq!(w.snapshot_count(), before.1, "no pre-restore snapshot");
        assert!(journal_states(&w).is_empty());
    }
}
