//! verify: a flipped bit, a truncated pack and a deleted pack are each found, and every damaged
//! snapshot and file is named; a sound repository passes.
use crate::support::*;
use std::fs;

/// Two snapshots of one site: the second adds files/new.bin. Each snapshot writes one pack.
struct Scene {
    w: World,
    first: String,
    second: String,
}

fn scene() -> Scene {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 40);
    let site = w.site("example.com", &p);
    let first = w.snapshot("example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(site.dir.join("files/new.bin"), noise(77, 50_000)).unwrap();
    let second = w.snapshot("example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(pack_files(&w.repo).len(), 2);
    Scene { w, first, second }
}

/// (pack name, offset, clen) of the first chunk of `path` in the site tree of snapshot `id`.
fn chunk_of(repo: &std::path::Path, id: &str, path: &str) -> (String, u64, u32) {
    let r = sitesnap::repo::Repo::open(repo, None).unwrap();
    let s = r.cat.resolve_snapshot(id).unwrap();
    let t = sitesnap::capture::load_tree(&r, &s.site_tree.unwrap()).unwrap();
    let e = t.entries.iter().find(|e| e.path_str() == path).unwrap();
    let loc = r.cat.chunk_location(&e.chunks[0]).unwrap().unwrap();
    (loc.pack, loc.offset, loc.clen)
}

fn pack_path(repo: &std::path::Path, name: &str) -> std::path::PathBuf {
    repo.join("data").join(&name[..2]).join(name)
}

fn damaged(v: &serde_json::Value, id: &str) -> Option<Vec<String>> {
    v["damaged_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .map(|s| {
            s["damaged"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    format!(
                        "{} {}",
                        d["part"].as_str().unwrap(),
                        d["path"].as_str().unwrap()
                    )
                })
                .collect()
        })
}

#[test]
fn sound_repository_verifies() {
    let s = scene();
    let r = s.w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(r["ok"], true);
    assert_eq!(r["snapshots"], 2);
    assert_eq!(r["packs"], 2);
    assert!(r["chunks_read"].as_u64().unwrap() > 40);
    assert!(r["referenced_chunks"].as_u64().unwrap() > 40);
    assert_eq!(r["damaged_snapshots"].as_array().unwrap().len(), 0);
    // Quiet without a terminal unless -v.
    let q = s.w.run(&["verify"]).ok();
    assert_eq!(q.stdout, "");
    let v = s.w.run(&["-v", "verify"]).ok();
    assert!(v.stdout.contains("checked 2 snapshot(s)"), "{}", v.stdout);
}

#[test]
fn a_flipped_bit_is_found_and_the_file_named() {
    let s = scene();
    let (pack, offset, clen) = chunk_of(&s.w.repo, &s.first, "files/upload5.bin");
    flip_bit(&pack_path(&s.w.repo, &pack), offset + clen as u64 / 2);

    // The structure is intact: only reading the data finds it.
    s.w.run(&["verify"]).ok();
    let r = s.w.run(&["verify", "--read-data", "--json"]).fails(1);
    let v = r.json();
    assert_eq!(v["ok"], false);
    let probs = v["pack_problems"].as_array().unwrap();
    assert_eq!(probs.len(), 1);
    assert_eq!(probs[0]["pack"], pack.as_str());
    assert_eq!(probs[0]["damaged_chunks"], 1);
    let want = vec!["site sites/example.com/files/upload5.bin".to_string()];
    assert_eq!(damaged(&v, &s.first), Some(want.clone()));
    assert_eq!(damaged(&v, &s.second), Some(want));
    assert!(r.stderr.contains("damage found"), "{}", r.stderr);
    // The human report names the snapshot and the file.
    let h = s.w.run(&["verify", "--read-data"]).fails(1);
    assert!(
        h.stdout
            .contains(&format!("DAMAGED snapshot {}", &s.first[..8])),
        "{}",
        h.stdout
    );
    assert!(
        h.stdout
            .contains("site sites/example.com/files/upload5.bin"),
        "{}",
        h.stdout
    );
}

#[test]
fn a_truncated_pack_is_found_and_its_snapshot_named() {
    let s = scene();
    // The second pack holds what the second snapshot added: new.bin and its trees.
    let (pack, _, _) = chunk_of(&s.w.repo, &s.second, "files/new.bin");
    let path = pack_path(&s.w.repo, &pack);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    for args in [
        &["verify", "--json"][..],
        &["verify", "--read-data", "--json"][..],
    ] {
        let v = s.w.run(args).fails(1).json();
        let probs = v["pack_problems"].as_array().unwrap();
        assert_eq!(probs.len(), 1, "{v}");
        assert_eq!(probs[0]["pack"], pack.as_str());
        assert!(
            probs[0]["problem"].as_str().unwrap().contains("truncated"),
            "{v}"
        );
        assert_eq!(
            damaged(&v, &s.first),
            None,
            "the first snapshot is intact: {v}"
        );
        let d = damaged(&v, &s.second).expect("second snapshot named");
        // Its trees were in that pack: they cannot be listed, and that is said.
        assert!(
            d.iter()
                .any(|x| x.starts_with("site site directory tree (unreadable")),
            "{d:?}"
        );
    }
}

#[test]
fn a_deleted_pack_is_found_and_every_damaged_file_named() {
    let s = scene();
    // The first pack holds almost everything; the second snapshot's trees are in the second.
    let (pack, _, _) = chunk_of(&s.w.repo, &s.first, "files/upload5.bin");
    fs::remove_file(pack_path(&s.w.repo, &pack)).unwrap();
    let v = s.w.run(&["verify", "--json"]).fails(1).json();
    let probs = v["pack_problems"].as_array().unwrap();
    assert_eq!(probs.len(), 1);
    assert_eq!(probs[0]["pack"], pack.as_str());
    assert_eq!(probs[0]["problem"], "the pack file is missing");
    let first = damaged(&v, &s.first).expect("first snapshot named");
    assert!(
        first.iter().any(|x| x.contains("tree (unreadable")),
        "{first:?}"
    );
    let second = damaged(&v, &s.second).expect("second snapshot named");
    for want in [
        "site sites/example.com/files/upload5.bin",
        "site sites/example.com/settings.php",
        "database database dump",
        // The platform and bindings did not change: their trees are the first snapshot's.
        "platform platform tree (unreadable: none of its files can be listed)",
        "binding bindings tree (unreadable: none of its files can be listed)",
    ] {
        assert!(
            second.iter().any(|x| x == want),
            "{want} missing from {second:?}"
        );
    }
    // new.bin lives in the second pack: it is not named; every other site file is.
    assert!(!second.iter().any(|x| x.contains("new.bin")), "{second:?}");
    assert_eq!(second.iter().filter(|x| x.starts_with("site ")).count(), 21);
    let h = s.w.run(&["verify"]).fails(1);
    assert!(
        h.stdout
            .contains(&format!("DAMAGED pack {pack}: the pack file is missing")),
        "{}",
        h.stdout
    );
    assert!(h.stdout.contains("\n  database dump\n"), "{}", h.stdout);
}

/// The scene with one bit flipped in the first chunk of files/upload5.bin (stored once, in the
/// first pack, shared by both snapshots); returns the damaged pack's path.
fn damaged_scene() -> (Scene, std::path::PathBuf) {
    let s = scene();
    let (pack, offset, clen) = chunk_of(&s.w.repo, &s.first, "files/upload5.bin");
    let path = pack_path(&s.w.repo, &pack);
    flip_bit(&path, offset + clen as u64 / 2);
    s.w.run(&["verify", "--read-data"]).fails(1);
    (s, path)
}

#[test]
fn a_damaged_chunk_is_healed_by_the_next_snapshot_of_the_unchanged_site() {
    let (s, damaged_pack) = damaged_scene();
    let file =
        s.w.dir
            .path()
            .join("platforms/drupal-7.98/sites/example.com/files/upload5.bin");
    let content = fs::read(&file).unwrap();
    let d = s.w.run(&["doctor"]).fails(1);
    assert!(
        d.stdout.contains("1 damaged chunk(s) found by verify"),
        "{}",
        d.stdout
    );
    // The live file still has the content: the next snapshot stores the chunk anew (the files
    // cache does not vouch for a file whose chunk is damaged).
    let third = s.w.snapshot("example.com");
    assert!(third["bytes_added"].as_u64().unwrap() > 0, "{third}");
    let v = s.w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert!(!s.w.run(&["doctor"]).stdout.contains("damaged chunk"));
    // Every old snapshot shares the healed chunk and restores it.
    for id in [&s.first, &s.second] {
        fs::write(&file, b"overwritten").unwrap();
        s.w.run(&["restore", id, "--yes"]).ok();
        assert_eq!(fs::read(&file).unwrap(), content, "{id}");
    }
    // gc rewrites the pack that still holds the damaged bytes; all stays sound.
    assert!(damaged_pack.exists());
    s.w.run(&["gc"]).ok();
    assert!(!damaged_pack.exists(), "the damaged pack is rewritten");
    let v = s.w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["unknown_objects"].as_array().unwrap().len(), 0, "{v}");
}

#[test]
fn a_chunk_whose_live_file_changed_is_named_lost_and_its_restore_refused() {
    let (s, damaged_pack) = damaged_scene();
    let site =
        s.w.dir
            .path()
            .join("platforms/drupal-7.98/sites/example.com");
    fs::write(site.join("files/upload5.bin"), noise(5, 9_000)).unwrap();
    let third = s.w.snapshot("example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.w.run(&["verify", "--read-data"]).fails(1);
    let r = s.w.run(&["repair", "snapshots", "--json"]).fails(1).json();
    let named: Vec<&str> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(named.len(), 2, "{r}");
    assert!(
        named.contains(&s.first.as_str()) && named.contains(&s.second.as_str()),
        "{r}"
    );
    for x in r.as_array().unwrap() {
        assert_eq!(
            x["damaged"][0]["path"], "sites/example.com/files/upload5.bin",
            "{r}"
        );
    }
    let h = s.w.run(&["repair", "snapshots"]).fails(1);
    assert!(
        h.stdout
            .contains("site sites/example.com/files/upload5.bin"),
        "{}",
        h.stdout
    );
    assert!(
        s.w.run(&["doctor"])
            .stdout
            .contains("2 snapshot(s) have lost data")
    );
    // Restoring the lost file is refused before anything changes; the database alone is fine.
    let before = live_records(&site, |_, _| true);
    let r = s.w.run(&["restore", &s.first, "--yes"]);
    assert_one_line_error(&r, 1, &["lost data", "files/upload5.bin", &s.first[..8]]);
    assert_eq!(live_records(&site, |_, _| true), before);
    s.w.run(&["restore", &s.first, "--no-files", "--yes"]).ok();
    s.w.run(&["restore", &third, "--yes"]).ok();
    // gc leaves the pack it cannot copy as it is, and works.
    s.w.run(&["gc"]).ok();
    assert!(damaged_pack.exists());
}
