//! gc: forgetting snapshots and collecting frees space; what remains still verifies and reads
//! back byte for byte; partly used packs are repacked; the files cache never hands a later
//! snapshot a chunk gc removed; a gc killed at any fail point loses nothing; leftovers of a
//! crashed snapshot are removed.
use crate::support::*;
use std::collections::BTreeMap;
use std::fs;

struct Scene {
    w: World,
    site: Site,
    platform: std::path::PathBuf,
    /// snapshot id -> expected content.
    snaps: Vec<(String, BTreeMap<String, String>)>,
}

impl Scene {
    fn new() -> Scene {
        let w = World::new();
        let platform = w.platform("platforms/drupal-7.98", 60);
        let site = w.site("example.com", &platform);
        Scene {
            w,
            site,
            platform,
            snaps: Vec::new(),
        }
    }

    fn snap(&mut self) -> String {
        let id = self.w.snapshot("example.com")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let exp = expected(
            &self.platform,
            "example.com",
            &[&self.site.vhost, &self.site.alias],
        );
        self.snaps.push((id.clone(), exp));
        id
    }

    /// Writes an incompressible file of `n` bytes into the site's files/ folder.
    fn put(&self, name: &str, seed: u64, n: usize) {
        fs::write(self.site.dir.join("files").join(name), noise(seed, n)).unwrap();
    }

    fn rm(&self, name: &str) {
        fs::remove_file(self.site.dir.join("files").join(name)).unwrap();
    }

    fn forget(&mut self, id: &str) {
        self.w.run(&["forget", id]).ok();
        self.snaps.retain(|(s, _)| s != id);
    }

    /// Restores snapshot `id` over a site that changed since, and checks the live site is
    /// byte for byte what the snapshot recorded (files, bindings, database rows). The restore's
    /// own pre-restore snapshot joins the list.
    fn restore_and_compare(&mut self, id: &str) {
        let want = self.snaps.iter().find(|s| s.0 == id).unwrap().1.clone();
        let rows = sqlite_rows(&self.site.db, "node");
        let vhost = std::fs::read(&self.site.vhost).unwrap();
        self.put("junk-after.bin", 999, 50_000);
        let c = rusqlite::Connection::open(&self.site.db).unwrap();
        c.execute("DELETE FROM node WHERE nid % 2 = 0", []).unwrap();
        drop(c);
        fs::write(&self.site.vhost, "server { root /elsewhere; }\n").unwrap();
        let changed = expected(
            &self.platform,
            "example.com",
            &[&self.site.vhost, &self.site.alias],
        );
        self.w.run(&["restore", id, "--yes"]).ok();
        let live = expected(
            &self.platform,
            "example.com",
            &[&self.site.vhost, &self.site.alias],
        );
        assert_eq!(live, want, "live site after restoring {id}");
        assert_eq!(sqlite_rows(&self.site.db, "node"), rows);
        assert_eq!(std::fs::read(&self.site.vhost).unwrap(), vhost);
        let pre = self.w.run(&["list", "--json"]).ok().json();
        let pre = pre
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "pre-restore" && !self.snaps.iter().any(|x| x.0 == s["id"]))
            .expect("a pre-restore snapshot")["id"]
            .as_str()
            .unwrap()
            .to_string();
        // The pre-restore snapshot holds the changed state (checked by check_all).
        assert!(changed.contains_key("site:files/junk-after.bin"));
        self.snaps.push((pre, changed));
    }

    /// Every remaining snapshot verifies with --read-data and reads back byte for byte.
    fn check_all(&self) {
        let r = self.w.run(&["verify", "--read-data", "--json"]).ok();
        let v = r.json();
        assert_eq!(v["ok"], true, "{}", r.stdout);
        assert_eq!(v["snapshots"].as_u64().unwrap(), self.snaps.len() as u64);
        for (id, exp) in &self.snaps {
            assert_eq!(&stored(&self.w.repo, id), exp, "content of snapshot {id}");
        }
    }

    /// Three snapshots, each with its own 1.5 MiB file; returns their ids.
    fn three_generations(&mut self) -> Vec<String> {
        let mut ids = Vec::new();
        for g in 0..3u64 {
            if g > 0 {
                self.rm(&format!("gen{}.bin", g - 1));
            }
            self.put(&format!("gen{g}.bin"), 100 + g, 1_500_000);
            ids.push(self.snap());
        }
        ids
    }
}

#[test]
fn gc_after_forget_frees_space_and_the_rest_reads_back_byte_for_byte() {
    let mut s = Scene::new();
    let ids = s.three_generations();
    let before = data_size(&s.w.repo);
    // Nothing is garbage yet: gc frees nothing and changes nothing.
    let r = s.w.run(&["gc", "--json"]).ok().json();
    assert_eq!(r["bytes_freed"], 0, "{r}");
    assert_eq!(data_size(&s.w.repo), before);

    s.forget(&ids[0]);
    s.forget(&ids[1]);
    // Forgetting removes the snapshots' manifests from the store (that is the forget).
    let before = data_size(&s.w.repo);
    let dry = s.w.run(&["gc", "--dry-run", "--json"]).ok().json();
    assert_eq!(data_size(&s.w.repo), before, "a dry run changes nothing");
    let r = s.w.run(&["gc", "--json"]).ok().json();
    let after = data_size(&s.w.repo);
    assert!(
        after + 3_000_000 <= before,
        "two 1.5 MB generations should be gone: {before} -> {after}"
    );
    assert_eq!(r["bytes_freed"].as_u64().unwrap(), before - after);
    assert_eq!(r["bytes_after"].as_u64().unwrap(), after);
    assert!(r["chunks_removed"].as_u64().unwrap() >= 2);
    assert!(r["blobs_removed"].as_u64().unwrap() >= 2);
    assert_eq!(dry["chunks_removed"], r["chunks_removed"]);
    s.check_all();
    // A second gc has nothing left to do.
    let again = s.w.run(&["gc", "--json"]).ok().json();
    assert_eq!(again["bytes_freed"], 0);
    assert_eq!(again["chunks_removed"], 0);
    // The snapshot that is left restores byte for byte.
    s.restore_and_compare(&ids[2]);
    s.check_all();
}

#[test]
fn gc_repacks_a_mostly_unused_pack() {
    let mut s = Scene::new();
    // One pack holding a small file that stays and a big one that goes.
    s.put("big.bin", 7, 2_000_000);
    let first = s.snap();
    s.rm("big.bin");
    s.snap();
    s.forget(&first);
    let packs_before = pack_files(&s.w.repo);
    let before = data_size(&s.w.repo);
    let r = s.w.run(&["gc", "--json"]).ok().json();
    assert_eq!(r["packs_repacked"], 1, "{r}");
    assert_eq!(r["packs_written"], 1, "{r}");
    let after = data_size(&s.w.repo);
    assert!(after + 1_900_000 <= before, "{before} -> {after}");
    let packs_after = pack_files(&s.w.repo);
    assert_eq!(packs_after.len(), packs_before.len());
    assert!(
        packs_before.iter().any(|p| !packs_after.contains(p)),
        "the old pack is gone"
    );
    s.check_all();
    // Its data now comes from the new pack: restore it byte for byte.
    let id = s.snaps[0].0.clone();
    s.restore_and_compare(&id);
    s.check_all();
}

#[test]
fn files_cache_never_offers_a_chunk_gc_removed() {
    let mut s = Scene::new();
    s.put("stays.bin", 9, 700_000);
    let only = s.snap();
    // Forget the only snapshot: everything is garbage, but the files are unchanged on disk
    // and the files cache still vouches for them.
    s.forget(&only);
    let r = s.w.run(&["gc", "--json"]).ok().json();
    assert!(r["cache_rows_invalidated"].as_u64().unwrap() > 20, "{r}");
    assert_eq!(pack_files(&s.w.repo).len(), 0);
    // The next snapshot must store the content again, not point at vanished chunks.
    let again = s.snap();
    let rec = s.w.run(&["show", &again, "--json"]).ok().json();
    assert!(rec["bytes_added"].as_u64().unwrap() > 700_000, "{rec}");
    s.check_all();
}

/// A scene with dead packs and a partly used pack, with the first two snapshots forgotten.
fn garbage_scene() -> Scene {
    let mut s = Scene::new();
    s.put("keep.bin", 1, 300_000);
    s.put("drop.bin", 2, 1_500_000);
    let a = s.snap();
    s.rm("drop.bin");
    s.put("gen1.bin", 3, 1_000_000);
    let b = s.snap();
    s.rm("gen1.bin");
    s.put("gen2.bin", 4, 400_000);
    s.snap();
    s.forget(&a);
    s.forget(&b);
    s
}

#[test]
fn gc_killed_at_each_fail_point_loses_nothing() {
    for point in [
        "gc-marked",
        "gc-repacked",
        "gc-indexed",
        "gc-rows-deleted",
        "gc-pack-deleted",
        "gc-pack-deleted:2",
    ] {
        let mut s = garbage_scene();
        let before = data_size(&s.w.repo);
        let r = s.w.run_env(&["gc"], &[("SITESNAP_FAILPOINT", point)]);
        assert_eq!(
            r.code, -1,
            "{point}: gc should have been killed: {}",
            r.stderr
        );
        let name = point.split(':').next().unwrap();
        assert!(
            r.stderr.contains(&format!("fail point {name} reached")),
            "{point}: {}",
            r.stderr
        );
        // The next writer breaks the dead gc's lock; nothing a snapshot needs is lost.
        let v = s.w.run(&["verify", "--read-data", "--json"]).ok();
        assert!(
            v.stderr.contains("broke a stale lock"),
            "{point}: {}",
            v.stderr
        );
        assert_eq!(v.json()["ok"], true, "{point}: {}", v.stdout);
        s.check_all();
        // A full gc completes the job.
        s.w.run(&["gc", "--json"]).ok();
        assert!(
            data_size(&s.w.repo) + 2_000_000 <= before,
            "{point}: garbage left"
        );
        s.check_all();
        // Life goes on: another snapshot and gc.
        s.put("later.bin", 5, 200_000);
        s.snap();
        s.w.run(&["gc"]).ok();
        s.check_all();
        if point == "gc-indexed" {
            // Killed with the index pointing at the repacked copies: they restore.
            let id = s.snaps[0].0.clone();
            s.restore_and_compare(&id);
            s.check_all();
        }
    }
}

#[test]
fn gc_removes_what_a_crashed_snapshot_left_behind() {
    let mut s = Scene::new();
    s.snap();
    let packs = pack_files(&s.w.repo).len();
    // Killed after its pack is durable but before it is indexed: an orphan pack file.
    s.put("new.bin", 11, 500_000);
    let r = s.w.run_env(
        &["snapshot", "example.com"],
        &[("SITESNAP_FAILPOINT", "pack-written")],
    );
    assert_eq!(r.code, -1, "{}", r.stderr);
    assert_eq!(pack_files(&s.w.repo).len(), packs + 1);
    fs::write(s.w.repo.join("data/tmp/pack-leftover"), b"half a pack").unwrap();
    let r = s.w.run(&["gc", "--json"]).ok().json();
    assert_eq!(r["orphan_packs_removed"], 1, "{r}");
    assert_eq!(r["tmp_files_removed"], 1, "{r}");
    assert_eq!(pack_files(&s.w.repo).len(), packs);
    assert!(!s.w.repo.join("data/tmp/pack-leftover").exists());
    s.check_all();
    // The file is stored again by the next snapshot.
    s.snap();
    s.check_all();
}

#[test]
fn gc_refuses_to_delete_when_a_tree_is_unreadable() {
    let mut s = garbage_scene();
    // Remove the index rows of one live tree's chunks: the referenced set cannot be known.
    let c = s.w.catalog();
    let tree: Vec<u8> = c
        .query_row(
            "SELECT site_tree FROM snapshots ORDER BY time DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let chunks: Vec<u8> = c
        .query_row("SELECT chunks FROM blobs WHERE id = ?1", [&tree], |r| {
            r.get(0)
        })
        .unwrap();
    c.execute("DELETE FROM chunks WHERE hash = ?1", [&chunks[..32]])
        .unwrap();
    drop(c);
    let before = data_size(&s.w.repo);
    let r = s.w.run(&["gc"]).fails(1);
    assert!(r.stderr.contains("gc deleted nothing"), "{}", r.stderr);
    assert_eq!(data_size(&s.w.repo), before);
    s.snaps.clear();
}
