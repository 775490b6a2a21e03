//! Indirect chunk lists (issue 14): a dump of more chunks than a blob lists directly keeps its
//! ids in list chunks. The direct limit is lowered through `SITESNAP_TEST_LIST_DIRECT_MAX`
//! (debug builds only) so a few-megabyte MariaDB dump is stored that way. Its snapshot
//! restores byte-identical, an unchanged stretch of the list is shared with the next snapshot,
//! gc keeps the list chunks, verify and gc stop at a damaged one, and push + `restore --from`
//! brings it back. With `SITESNAP_TEST_LIST_UPPER_MAX` lowered too, the list chunks are cut
//! again one level up (as for a dump of 2 GB and more): the same holds for every level.
use crate::support::*;
use std::collections::HashSet;
use std::fs;

const URI: &str = "lists.example";
const ENV: &[(&str, &str)] = &[("SITESNAP_TEST_LIST_DIRECT_MAX", "64")];
/// Limits that make a few-MB dump's list two levels deep (its some 570 list chunks are more
/// than 150; the some 80 above them are not).
const ENV2: &[(&str, &str)] = &[
    ("SITESNAP_TEST_LIST_DIRECT_MAX", "64"),
    ("SITESNAP_TEST_LIST_UPPER_MAX", "150"),
];

/// A table of `rows` rows of about 200 bytes (a dump of a few MB: hundreds of chunks).
fn fill(db: &TestDb, rows: u64) {
    db.sql(&format!(
        "CREATE TABLE big (id INT PRIMARY KEY, title VARCHAR(255) NOT NULL, body TEXT NOT NULL);
         CREATE TABLE k (n INT PRIMARY KEY);
         INSERT INTO k WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 999) SELECT n FROM s;
         INSERT INTO big
           SELECT x.n, CONCAT('Article ', x.n, ' ', SUBSTR(MD5(x.n), 1, 6)),
                  CONCAT('Lorem ipsum ', MD5(x.n * 7), ' dolor ', SHA1(x.n), ' sit amet ', SHA1(x.n * 3))
           FROM (SELECT a.n * 1000 + b.n AS n FROM k a, k b WHERE a.n * 1000 + b.n < {rows}) x;
         DROP TABLE k;"
    ));
}

/// A MariaDB site with a filled table in a fresh world (an encrypted repository: pushes
/// need one).
fn scene(tag: &str, encrypted: bool) -> Option<(World, TestDb)> {
    let db = TestDb::create(Engine::Mysql, tag)?;
    fill(&db, 20_000);
    let w = if encrypted {
        World::encrypted()
    } else {
        World::new()
    };
    db_site(&w, URI, &db.url());
    Some((w, db))
}

/// A snapshot with the lowered direct limit; its id.
fn snap(w: &World) -> String {
    snap_with(w, ENV)
}

/// A snapshot with the limits of `env`; its id.
fn snap_with(w: &World, env: &[(&str, &str)]) -> String {
    let r = w.run_env(&["snapshot", URI, "--json"], env).ok();
    r.json()[0]["id"].as_str().unwrap().to_string()
}

/// The list chunks of snapshot `id`'s dump, level by level from the top (read through the
/// chunk reader, not through the list walk under test), and the catalogue's `levels`.
fn list_levels(w: &World, id: &str) -> (Option<i64>, Vec<Vec<[u8; 32]>>) {
    let (count, top) = dump_list(w, id);
    assert!(count.is_some(), "a direct list");
    let levels: Option<i64> = w
        .catalog()
        .query_row(
            "SELECT b.levels FROM snapshots s JOIN blobs b ON b.id = s.db_dump WHERE s.id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    let r = sitesnap::repo::Repo::open(&w.repo, None).unwrap();
    let mut reader = r.chunk_reader();
    let mut out = vec![top];
    for _ in 1..levels.unwrap_or(1) {
        let below = out
            .last()
            .unwrap()
            .iter()
            .flat_map(|h| reader.read(&sitesnap::hash::Hash(*h)).unwrap())
            .collect::<Vec<u8>>()
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap())
            .collect();
        out.push(below);
    }
    (levels, out)
}

/// The dump's catalogue row: (chunk count if indirect, the ids the row stores).
fn dump_list(w: &World, id: &str) -> (Option<i64>, Vec<[u8; 32]>) {
    let (count, ids): (Option<i64>, Vec<u8>) = w
        .catalog()
        .query_row(
            "SELECT b.count, b.chunks FROM snapshots s JOIN blobs b ON b.id = s.db_dump \
             WHERE s.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let ids = ids
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap())
        .collect();
    (count, ids)
}

/// How many of `ids` the chunk index holds.
fn indexed(w: &World, ids: &[[u8; 32]]) -> usize {
    let cat = w.catalog();
    ids.iter()
        .filter(|h| {
            cat.query_row(
                "SELECT count(*) FROM chunks WHERE hash = ?1",
                [&h[..]],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                == 1
        })
        .count()
}

#[test]
fn a_long_dump_list_is_shared_kept_by_gc_and_restored() {
    let Some((w, db)) = scene("lists", false) else {
        return;
    };
    let first = snap(&w);
    let (count, lists) = dump_list(&w, &first);
    let count = count.expect("an indirect list");
    assert!(count > 64, "{count} chunks");
    assert!(
        lists.len() >= 3,
        "{} list chunks for {count} chunks",
        lists.len()
    );
    assert_eq!(indexed(&w, &lists), lists.len());
    // One row changed: the list chunks around it are new, the others shared.
    db.sql("UPDATE big SET title = 'changed' WHERE id = 10000;");
    let second = snap(&w);
    let (_, lists2) = dump_list(&w, &second);
    let old: HashSet<_> = lists.iter().collect();
    let new = lists2.iter().filter(|l| !old.contains(l)).count();
    assert!(
        (1..=3).contains(&new),
        "{new} of {} list chunks new",
        lists2.len()
    );
    // The last 40% of the rows changed: their list chunks are new, the others shared.
    db.sql("UPDATE big SET title = CONCAT(title, ' (edited)') WHERE id >= 12000;");
    let third = snap(&w);
    let (_, lists3) = dump_list(&w, &third);
    let shared = lists3.iter().filter(|l| old.contains(l)).count();
    assert!(
        shared >= 1 && shared < lists3.len(),
        "{shared} of {} shared",
        lists3.len()
    );
    // Unchanged: the same list, nothing added.
    let fourth = snap(&w);
    assert_eq!(dump_list(&w, &fourth), dump_list(&w, &third));
    // gc after forgetting the first two: the first's pack is mostly garbage and repacked; the
    // list chunks the third shares with it are kept, and the third restores.
    gc_keeps_and_restores(&w, &db, [&first, &second], &third, &lists3);
}

/// Forgets `forget`, runs gc (which must repack a pack), then checks that every list chunk of
/// `lists` is still indexed, that verify passes, and that `keep` restores the table as it is
/// now after the table was changed.
fn gc_keeps_and_restores(
    w: &World,
    db: &TestDb,
    forget: [&str; 2],
    keep: &str,
    lists: &[[u8; 32]],
) {
    let want = db.table_digest("big", "id");
    for id in forget {
        w.run(&["forget", id]).ok();
    }
    let gc = w.run(&["gc", "--json"]).ok().json();
    assert!(gc["packs_repacked"].as_u64().unwrap() >= 1, "{gc}");
    assert_eq!(indexed(w, lists), lists.len());
    w.run(&["verify"]).ok();
    db.sql("UPDATE big SET title = 'later' WHERE id < 500; DELETE FROM big WHERE id > 19000;");
    w.run(&["restore", keep, "--yes"]).ok();
    assert_eq!(db.table_digest("big", "id"), want);
}

/// Flips one bit in the middle of the stored bytes of chunk `h`.
fn damage_chunk(w: &World, h: &[u8; 32]) {
    let r = sitesnap::repo::Repo::open(&w.repo, None).unwrap();
    let loc = r
        .cat
        .chunk_location(&sitesnap::hash::Hash(*h))
        .unwrap()
        .unwrap();
    let p = w.repo.join("data").join(&loc.pack[..2]).join(&loc.pack);
    flip_bit(&p, loc.offset + u64::from(loc.clen) / 2);
}

#[test]
fn verify_and_gc_stop_at_a_damaged_list_chunk() {
    let Some((w, _db)) = scene("listdmg", false) else {
        return;
    };
    let id = snap(&w);
    let (_, lists) = dump_list(&w, &id);
    damaged_list_stops_verify_and_gc(&w, &id, &lists[lists.len() / 2]);
}

/// Damages list chunk `h` of snapshot `id`'s dump; verify then fails naming the snapshot, and
/// gc fails having deleted nothing.
fn damaged_list_stops_verify_and_gc(w: &World, id: &str, h: &[u8; 32]) {
    damage_chunk(w, h);
    let before = data_size(&w.repo);
    let v = w.run(&["verify", "--json"]);
    assert_ne!(v.code, 0, "{}", v.stdout);
    assert!(v.stdout.contains(id), "{}", v.stdout);
    let g = w.run(&["gc"]);
    assert_ne!(g.code, 0, "{}", g.stdout);
    assert!(g.stderr.contains("deleted nothing"), "{}", g.stderr);
    assert_eq!(data_size(&w.repo), before);
}

/// Pushes a snapshot whose dump has an indirect list to the remote `add` defines, loses the
/// repository and the database's rows, and brings it back with `restore --from` into a fresh
/// repository; the remote verifies and a remote gc keeps what it needs.
fn push_and_restore_from(w: &World, db: &TestDb, add: &[&str], env: &[(&str, &str)]) {
    push_and_restore_with(w, db, add, env, ENV)
}

/// [`push_and_restore_from`] with the snapshot's list limits `limits`.
fn push_and_restore_with(
    w: &World,
    db: &TestDb,
    add: &[&str],
    env: &[(&str, &str)],
    limits: &[(&str, &str)],
) {
    let id = snap_with(w, limits);
    assert!(dump_list(w, &id).0.is_some());
    let want = db.table_digest("big", "id");
    w.run(add).ok();
    let name = add[2];
    w.run_env(&["push"], env).ok();
    w.run_env(&["verify", "--remote", name], env).ok();
    w.run_env(&["gc", "--remote", name], env).ok();
    fs::remove_dir_all(&w.repo).unwrap();
    db.sql("DELETE FROM big WHERE id % 3 = 0;");
    let fresh = w.path("fresh");
    let f = fresh.to_string_lossy();
    let mut add_fresh = vec!["--repo", &f];
    add_fresh.extend(add.iter().copied());
    w.run(&add_fresh).ok();
    w.run_env(
        &["--repo", &f, "restore", &id, "--from", name, "--yes"],
        env,
    )
    .ok();
    assert_eq!(db.table_digest("big", "id"), want);
    w.run(&["--repo", &f, "verify"]).ok();
}

#[test]
fn a_long_dump_list_comes_back_with_restore_from_a_folder() {
    let Some((w, db)) = scene("listnas", true) else {
        return;
    };
    let nas = tempfile::tempdir().unwrap();
    let url = format!("file://{}", nas.path().display());
    push_and_restore_from(&w, &db, &["remote", "add", "nas", &url], &[]);
}

#[test]
#[cfg(feature = "s3")]
fn a_long_dump_list_comes_back_with_restore_from_garage() {
    let Some(s3) = garage() else { return };
    let Some((w, db)) = scene("listgarage", true) else {
        return;
    };
    let url = s3.url("lists");
    let creds = s3.env();
    let add = s3.add_args("offsite", &url);
    push_and_restore_from(&w, &db, &add, &crate::remote::env_of(&creds));
}

#[test]
fn a_two_level_dump_list_is_shared_kept_by_gc_and_restored() {
    let Some((w, db)) = scene("lists2", false) else {
        return;
    };
    let first = snap_with(&w, ENV2);
    let (levels, by_level) = list_levels(&w, &first);
    assert_eq!(levels, Some(2), "{} top ids", by_level[0].len());
    assert!(by_level[0].len() <= 150 && by_level[1].len() > 150);
    let all: Vec<[u8; 32]> = by_level.concat();
    assert_eq!(indexed(&w, &all), all.len());
    // One row changed: a few list chunks a level are new, the others shared.
    db.sql("UPDATE big SET title = 'changed' WHERE id = 10000;");
    let second = snap_with(&w, ENV2);
    let (_, by_level2) = list_levels(&w, &second);
    let old: HashSet<_> = all.iter().collect();
    let new1 = by_level2[1].iter().filter(|l| !old.contains(l)).count();
    assert!((1..=3).contains(&new1), "{new1} new level-1 list chunks");
    // The last 40% of the rows changed, then the first two forgotten: the first's pack is
    // mostly garbage and repacked; the list chunks of both levels the third shares with it
    // are kept, and the third restores.
    db.sql("UPDATE big SET title = CONCAT(title, ' (edited)') WHERE id >= 12000;");
    let third = snap_with(&w, ENV2);
    let (_, by_level3) = list_levels(&w, &third);
    let all3 = by_level3.concat();
    let shared = all3.iter().filter(|l| old.contains(l)).count();
    assert!(shared >= 8 && shared < all3.len(), "{shared} shared");
    gc_keeps_and_restores(&w, &db, [&first, &second], &third, &all3);
}

#[test]
fn verify_and_gc_stop_at_a_damaged_second_level_list_chunk() {
    let Some((w, _db)) = scene("listdmg2", false) else {
        return;
    };
    let id = snap_with(&w, ENV2);
    let (levels, by_level) = list_levels(&w, &id);
    assert_eq!(levels, Some(2));
    // A list chunk of the second level (the top: it names level-1 list chunks).
    damaged_list_stops_verify_and_gc(&w, &id, &by_level[0][by_level[0].len() / 2]);
    let r = w.run(&["restore", &id, "--yes"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
}

#[test]
fn a_two_level_dump_list_comes_back_with_restore_from_a_folder() {
    let Some((w, db)) = scene("lists2nas", true) else {
        return;
    };
    let nas = tempfile::tempdir().unwrap();
    let url = format!("file://{}", nas.path().display());
    push_and_restore_with(&w, &db, &["remote", "add", "nas", &url], &[], ENV2);
}
