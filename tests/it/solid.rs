//! Format-2 packs: small chunks share zstd frames (so a code tree stores smaller than its files
//! compressed one by one), old format-1 packs stay readable next to new ones, `repair catalog`
//! indexes both, and a damaged shared frame is named chunk by chunk and healed.
use crate::support::*;
use sitesnap::store::{PackEntry, PackFormat, PackHeader};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

fn remove_catalog(repo: &Path) {
    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = fs::remove_file(repo.join(f));
    }
}

/// Entries per frame (pack file, frame offset) over every pack.
fn frames(headers: &[PackHeader]) -> Vec<Vec<PackEntry>> {
    let mut by: BTreeMap<(usize, u64), Vec<PackEntry>> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        for e in &h.entries {
            by.entry((i, e.offset)).or_default().push(*e);
        }
    }
    by.into_values().collect()
}

/// Snapshot id from a snapshot's JSON record.
fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// The pack formats the catalogue records, with their counts.
fn indexed_formats(w: &World) -> BTreeMap<i64, i64> {
    let c = w.catalog();
    let mut st = c
        .prepare("SELECT format, count(*) FROM packs GROUP BY format")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn small_files_share_frames_and_restore_byte_exact() {
    let w = World::new();
    let p = w.platform("platforms/d7", 300);
    for i in 0..10 {
        // The same small file ten times: stored once, although its first copy is still in an
        // open section when the next one comes.
        fs::write(
            p.join(format!("includes/same{i}.inc")),
            "<?php // same\n".repeat(30),
        )
        .unwrap();
    }
    let site = w.site("example.com", &p);
    let snap = id(&w.snapshot("example.com"));
    let headers = pack_headers(&w.repo);
    assert!(headers.iter().all(|h| h.format == PackFormat::V2));
    let mut seen = std::collections::HashSet::new();
    for e in headers.iter().flat_map(|h| &h.entries) {
        assert!(seen.insert(e.hash), "chunk {} stored twice", e.hash.short());
    }
    let frames = frames(&headers);
    let grouped = frames.iter().filter(|f| f.len() > 1).count();
    assert!(grouped > 0, "no frame holds more than one chunk");
    for f in &frames {
        // Chunks of one frame lie back to back in its plain bytes and share its length.
        let mut at = 0u32;
        for e in f {
            assert_eq!((e.inner, e.clen), (at, f[0].clen));
            at += e.ulen;
        }
    }
    // The shared frames are much smaller than their chunks compressed one by one (what
    // format 1 stored).
    let (mut shared, mut one_by_one) = (0u64, 0u64);
    let codec = sitesnap::store::ChunkCodec::plain();
    for path in pack_files(&w.repo) {
        let bytes = fs::read(&path).unwrap();
        let h = sitesnap::store::pack::read_header_with("t", bytes.len() as u64, &codec, |o, l| {
            Ok(bytes[o as usize..o as usize + l].to_vec())
        })
        .unwrap();
        let mut counted = std::collections::HashSet::new();
        for e in &h.entries {
            let stored = &bytes[e.offset as usize..(e.offset + e.clen as u64) as usize];
            if stored.len() as u64 == 0
                || h.entries.iter().filter(|x| x.offset == e.offset).count() < 2
            {
                continue;
            }
            if counted.insert(e.offset) {
                shared += e.clen as u64;
            }
            let data = codec.decode_entry(h.format, e, stored).unwrap();
            one_by_one += sitesnap::store::compress_chunk(&data, 4).unwrap().len() as u64;
        }
    }
    assert!(
        shared * 4 < one_by_one * 3,
        "shared frames {shared}, one by one {one_by_one}"
    );
    assert_snapshot_matches_live(&w, &snap, &p, &site);
    w.run(&["verify", "--read-data"]).ok();
    // A restore writes back byte for byte what the snapshot holds.
    let want = stored(&w.repo, &snap);
    for i in 0..5 {
        fs::write(p.join(format!("includes/file{}.php", i * 8)), b"changed").unwrap();
    }
    w.run(&["restore", &snap, "--repair-platform", "--yes"])
        .ok();
    assert_eq!(expected(&p, "example.com", &[&site.vhost, &site.alias]), {
        let mut m = want.clone();
        m.retain(|k, _| !k.starts_with("extra:"));
        m
    });
}

#[test]
fn format_1_packs_read_verify_and_mix_with_new_ones() {
    let w = World::new();
    let p = w.platform("platforms/d7", 60);
    let site = w.site("example.com", &p);
    // Most of the first snapshot's bytes: gone by the second, so gc must repack its pack.
    fs::write(site.dir.join("files/big.bin"), noise(9, 600_000)).unwrap();
    let first = id(&w.snapshot("example.com"));
    let first_content = stored(&w.repo, &first);
    assert!(packs_to_format_1(&w.repo) > 0);
    assert!(
        pack_headers(&w.repo)
            .iter()
            .all(|h| h.format == PackFormat::V1)
    );
    remove_catalog(&w.repo);
    w.run(&["repair", "catalog"]).ok();
    assert_eq!(
        indexed_formats(&w).keys().copied().collect::<Vec<_>>(),
        vec![1]
    );
    w.run(&["verify", "--read-data"]).ok();
    assert_eq!(stored(&w.repo, &first), first_content);
    // New snapshots into it write format-2 packs; both kinds read, verify and restore.
    fs::remove_file(site.dir.join("files/big.bin")).unwrap();
    for i in 0..20 {
        fs::write(
            site.dir.join(format!("files/page{i}.html")),
            format!("<html><body>page {i} of the new content</body></html>\n").repeat(20),
        )
        .unwrap();
    }
    let second = id(&w.snapshot("example.com"));
    let second_content = stored(&w.repo, &second);
    let formats = indexed_formats(&w);
    assert!(
        formats.contains_key(&1) && formats.contains_key(&2),
        "{formats:?}"
    );
    w.run(&["verify", "--read-data"]).ok();
    assert_snapshot_matches_live(&w, &second, &p, &site);
    // The catalogue rebuilt from both kinds of pack headers restores byte for byte.
    remove_catalog(&w.repo);
    w.run(&["repair", "catalog"]).ok();
    assert_eq!(indexed_formats(&w), formats);
    assert_eq!(stored(&w.repo, &first), first_content);
    assert_eq!(stored(&w.repo, &second), second_content);
    w.run(&["restore", &first, "--yes"]).ok();
    let live = expected(&p, "example.com", &[&site.vhost, &site.alias]);
    let mut want = first_content.clone();
    want.retain(|k, _| !k.starts_with("extra:"));
    assert_eq!(live, want);
    // gc rewrites the format-1 pack it repacks as format 2, and everything stays sound.
    // (A restore may have kept the site as it was in a snapshot of its own: forget that too.)
    let listed = w.run(&["list", "--json"]).ok().json();
    for s in listed.as_array().unwrap() {
        let other = s["id"].as_str().unwrap();
        if other != second {
            w.run(&["forget", "--force", other]).ok();
        }
    }
    w.run(&["gc"]).ok();
    assert_eq!(
        indexed_formats(&w).keys().copied().collect::<Vec<_>>(),
        vec![2]
    );
    w.run(&["verify", "--read-data"]).ok();
    assert_eq!(stored(&w.repo, &second), second_content);
}

/// Flips one byte in the middle of a frame holding several chunks of platform files.
fn damage_grouped_frame(w: &World) -> (String, Vec<PackEntry>) {
    let r = sitesnap::repo::Repo::open(&w.repo, None).unwrap();
    let mut best: Option<(String, Vec<PackEntry>)> = None;
    for (pid, name, _) in r.cat.packs().unwrap() {
        let mut by: HashMap<u64, Vec<PackEntry>> = HashMap::new();
        for e in r.cat.chunks_in_pack(pid).unwrap() {
            by.entry(e.offset).or_default().push(e);
        }
        for f in by.into_values() {
            if f.len() > best.as_ref().map_or(1, |b| b.1.len()) {
                best = Some((name.clone(), f));
            }
        }
    }
    let (pack, frame) = best.expect("a frame of several chunks");
    let path = sitesnap::store::pack_path(&r.data_dir(), &pack);
    let mut bytes = fs::read(&path).unwrap();
    bytes[(frame[0].offset + frame[0].clen as u64 / 2) as usize] ^= 0x40;
    fs::write(&path, bytes).unwrap();
    (pack, frame)
}

#[test]
fn a_damaged_shared_frame_names_its_chunks_and_is_healed() {
    let w = World::new();
    let p = w.platform("platforms/d7", 80);
    let site = w.site("example.com", &p);
    let first = id(&w.snapshot("example.com"));
    let (pack, frame) = damage_grouped_frame(&w);
    let v = w.run(&["verify", "--read-data", "--json"]).fails(1).json();
    let probs = v["pack_problems"].as_array().unwrap();
    assert_eq!(probs.len(), 1, "{v}");
    assert_eq!(probs[0]["pack"], pack.as_str());
    // Every chunk whose bytes the damage changed (all of them when the frame no longer
    // decompresses) is named, and only chunks of that frame.
    let n = probs[0]["damaged_chunks"].as_u64().unwrap();
    assert!(n >= 1 && n <= frame.len() as u64, "{v}");
    let snaps = v["damaged_snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{v}");
    assert!(!snaps[0]["damaged"].as_array().unwrap().is_empty(), "{v}");
    // The next snapshot of the unchanged site stores every chunk of the frame anew.
    let healed = w.snapshot("example.com");
    assert!(healed["bytes_added"].as_u64().unwrap() > 0, "{healed}");
    let v = w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert_snapshot_matches_live(&w, &first, &p, &site);
    w.run(&["gc"]).ok();
    w.run(&["verify", "--read-data"]).ok();
    assert_snapshot_matches_live(&w, &first, &p, &site);
}
