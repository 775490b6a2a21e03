//! `restore <id> --from NAME`: a snapshot comes back from a remote into a fresh repository
//! folder without a full pull; only the packs it needs are fetched, a second restore needs
//! nothing from the remote, and a changed object in the remote is refused before the site is
//! touched.
use crate::db::Flavour;
use crate::db::mariadb::MariaDb;
use crate::db::postgres::Postgres;
use crate::db::sqlite::Sqlite;
use crate::remote::{Placed, env_of, object_files, place};
use crate::support::*;
use std::fs;
use std::path::Path;

/// `(fetched, remote)` packs from the line `restore --from` prints.
fn fetched_packs(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("fetched snapshot"))
        .unwrap_or_else(|| panic!("no fetch line in: {out}"));
    let after = line
        .split(" from ")
        .nth(1)
        .unwrap()
        .split_once(": ")
        .unwrap()
        .1;
    let mut words = after.split_whitespace();
    let fetched = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("of"));
    (fetched, words.next().unwrap().parse().unwrap())
}

/// Restores `p` with `--from NAME` into the repository at `repo`: everything is back byte for
/// byte; returns the run's stdout.
fn restore_from<F: Flavour>(
    w: &World,
    repo: &Path,
    p: &Placed<F>,
    name: &str,
    env: &[(&str, &str)],
) -> String {
    let repo = repo.to_string_lossy();
    let r = w
        .run_env(
            &["--repo", &repo, "restore", &p.id, "--from", name, "--yes"],
            env,
        )
        .ok();
    assert_eq!(listing(&p.platform), p.listing, "{}", p.uri);
    assert_eq!(p.db.state(), p.state, "{}", p.uri);
    r.stdout
}

/// Three sites (SQLite, MariaDB, PostgreSQL, each on a platform of its own) pushed to the
/// remote `add` defines; then the repository and the sites are lost, and each comes back with
/// `restore --from` into a fresh folder, fetching fewer packs than the remote holds.
fn three_sites_restore_from(
    add: &[&str],
    env: &[(&str, &str)],
    count_remote_packs: &dyn Fn() -> u64,
) {
    let w = World::encrypted();
    let Some(lite) = place::<Sqlite>(&w, "lite.example") else {
        return;
    };
    let Some(maria) = place::<MariaDb>(&w, "maria.example") else {
        return;
    };
    let Some(pg) = place::<Postgres>(&w, "pg.example") else {
        return;
    };
    w.run(add).ok();
    w.run_env(&["push"], env).ok();
    let remote_packs = count_remote_packs();
    assert!(remote_packs >= 3, "{remote_packs} packs");
    fs::remove_dir_all(&w.repo).unwrap();
    lite.lose();
    maria.lose();
    pg.lose();
    let fresh = w.path("fresh");
    let f = fresh.to_string_lossy();
    let mut add_fresh = vec!["--repo", &f];
    add_fresh.extend(add.iter().copied());
    w.run(&add_fresh).ok();
    let name = add[2];
    let out = restore_from(&w, &fresh, &lite, name, env);
    let (fetched, total) = fetched_packs(&out);
    assert_eq!(total, remote_packs, "{out}");
    assert!(fetched >= 1 && fetched < total, "{out}");
    let out = restore_from(&w, &fresh, &maria, name, env);
    assert!(fetched_packs(&out).0 < total, "{out}");
    let out = restore_from(&w, &fresh, &pg, name, env);
    assert!(fetched_packs(&out).0 < total, "{out}");
    // The fresh repository holds the three snapshots and verifies clean.
    let list = w.run(&["--repo", &f, "list", "--json"]).ok().json();
    for p in [&lite.id, &maria.id, &pg.id] {
        assert!(list.to_string().contains(p.as_str()), "{list}");
    }
    w.run(&["--repo", &f, "verify"]).ok();
    // A second restore needs nothing from the remote: its endpoint or folder may be gone.
    lite.lose();
    let out = restore_from(&w, &fresh, &lite, name, &[]);
    assert!(!out.contains("fetched snapshot"), "{out}");
}

#[test]
fn three_sites_come_back_with_restore_from_a_folder() {
    let nas = tempfile::tempdir().unwrap();
    let url = format!("file://{}", nas.path().display());
    let count = || {
        object_files(nas.path())
            .iter()
            .filter(|n| n.len() == 64)
            .count() as u64
            - blob_and_site_objects(nas.path())
    };
    three_sites_restore_from(&["remote", "add", "nas", &url], &[], &count);
}

/// Objects of 64 hex digits that are not packs (blob lists and site objects).
fn blob_and_site_objects(root: &Path) -> u64 {
    ["blobs", "sites"]
        .iter()
        .map(|d| object_files(&root.join(d)).len() as u64)
        .sum()
}

#[test]
#[cfg(feature = "s3")]
fn three_sites_come_back_with_restore_from_garage() {
    let Some(s3) = garage() else { return };
    let url = s3.url("from");
    let server = s3.server(&url);
    let count = || {
        use sitesnap::store::{Backend, ObjectKind};
        server.list(ObjectKind::Pack).unwrap().len() as u64
    };
    let creds = s3.env();
    let add = s3.add_args("offsite", &url);
    three_sites_restore_from(&add, &env_of(&creds), &count);
}

/// A site with two snapshots whose newest pack differs, pushed to a folder remote; the
/// repository is then lost and a fresh folder set up with the remote.
fn pushed_and_lost() -> (World, tempfile::TempDir, String, Site) {
    let w = World::encrypted();
    let p = w.platform("platforms/d7", 20);
    let site = w.site("from.example", &p);
    fs::write(site.dir.join("files/big.bin"), noise(7, 400_000)).unwrap();
    let id = w.snapshot("from.example")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let nas = tempfile::tempdir().unwrap();
    let url = format!("file://{}", nas.path().display());
    w.run(&["remote", "add", "nas", &url]).ok();
    w.run(&["push"]).ok();
    fs::remove_dir_all(&w.repo).unwrap();
    let fresh = w.path("fresh");
    let f = fresh.to_string_lossy();
    w.run(&["--repo", &f, "remote", "add", "nas", &url]).ok();
    (w, nas, id, site)
}

/// Every file under `root` with its bytes (what must not change).
fn tree_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_changed_pack_in_the_remote_is_refused_before_the_site_is_touched() {
    let (w, nas, id, site) = pushed_and_lost();
    fs::write(site.dir.join("files/new.txt"), "changed since").unwrap();
    let before_site = tree_bytes(&site.dir);
    // Flip one byte in the middle of the biggest pack.
    let mut packs: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(nas.path())
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file() && e.file_name().len() == 64)
        .collect();
    packs.sort_by_key(|e| e.metadata().unwrap().len());
    let big = packs.last().unwrap().path().to_path_buf();
    let mut bytes = fs::read(&big).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::write(&big, &bytes).unwrap();
    let fresh = w.path("fresh");
    let f = fresh.to_string_lossy();
    // The first run makes the folder a repository under the remote's key, then refuses.
    let r = w.run(&["--repo", &f, "restore", &id, "--from", "nas", "--yes"]);
    assert_one_line_error(&r, 1, &["restore from remote 'nas'", "hash to its name"]);
    assert_eq!(tree_bytes(&site.dir), before_site, "the site is untouched");
    let repo_before = tree_bytes(&fresh.join("data"));
    let cat_before = fs::read(fresh.join("catalog.sqlite")).unwrap();
    let r = w.run(&["--repo", &f, "restore", &id, "--from", "nas", "--yes"]);
    assert_one_line_error(&r, 1, &["restore from remote 'nas'", "hash to its name"]);
    assert_eq!(tree_bytes(&site.dir), before_site, "the site is untouched");
    assert_eq!(
        tree_bytes(&fresh.join("data")),
        repo_before,
        "no object kept"
    );
    assert_eq!(fs::read(fresh.join("catalog.sqlite")).unwrap(), cat_before);
    assert!(w.run(&["--repo", &f, "list", "--json"]).ok().json() == serde_json::json!([]));
}

#[test]
fn restore_from_refuses_a_wrong_passphrase_and_an_unknown_snapshot() {
    let (w, _nas, id, _site) = pushed_and_lost();
    let fresh = w.path("fresh");
    let f = fresh.to_string_lossy();
    let wrong = w.path("wrong-pass");
    fs::write(&wrong, "not the passphrase\n").unwrap();
    let r = w.run_env(
        &["--repo", &f, "restore", &id, "--from", "nas", "--yes"],
        &[("SITESNAP_PASSWORD_FILE", &wrong.to_string_lossy())],
    );
    assert_one_line_error(&r, 1, &["restore from remote 'nas'"]);
    let left: Vec<String> = fs::read_dir(&fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec!["remotes.json".to_string()],
        "the folder is as it was"
    );
    let r = w.run(&[
        "--repo",
        &f,
        "restore",
        "0123456789abcdef",
        "--from",
        "nas",
        "--yes",
    ]);
    assert_one_line_error(&r, 1, &["holds no snapshot 0123456789abcdef"]);
    // A wrong remote name is one line too, and the right one then works.
    let r = w.run(&["--repo", &f, "restore", &id, "--from", "nope", "--yes"]);
    assert_one_line_error(&r, 1, &["nope"]);
    w.run(&["--repo", &f, "restore", &id, "--from", "nas", "--yes"])
        .ok();
}
