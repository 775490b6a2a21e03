//! Encryption at rest (`init --encrypt`): nothing readable of a site (file content, database
//! rows, binding files, database passwords) is left anywhere under the repository folder;
//! snapshot, restore, verify, gc, export and `repair catalog` work on an encrypted repository;
//! a wrong or missing passphrase is one line and changes nothing; `key add|list|remove`.
use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// An encrypted repository in a temporary world, and the file holding its passphrase.
struct Enc {
    w: World,
    pw: PathBuf,
}

impl Enc {
    fn new() -> Enc {
        let dir = tempfile::tempdir().unwrap();
        let w = World {
            repo: dir.path().join("repo"),
            dir,
            pass: None,
        };
        let pw = w.path("passphrase");
        fs::write(&pw, "correct horse battery staple\n").unwrap();
        let e = Enc { w, pw };
        let r = e.run(&["-v", "init", "--encrypt"]).ok();
        assert!(r.stdout.contains("encrypted"), "{}", r.stdout);
        e
    }

    /// Runs with the passphrase given through `$SITESNAP_PASSWORD_FILE`.
    fn run(&self, args: &[&str]) -> Run {
        let pw = self.pw.to_string_lossy().into_owned();
        self.w.run_env(args, &[("SITESNAP_PASSWORD_FILE", &pw)])
    }

    /// A site (as `World::site` makes one) registered in the encrypted repository.
    fn site(&self, uri: &str, platform: &Path) -> Site {
        let s = make_site(self.w.dir.path(), uri, platform);
        let db = format!("sqlite://{}", s.db.display());
        let (v, a) = (s.vhost.to_string_lossy(), s.alias.to_string_lossy());
        let p = platform.to_string_lossy();
        self.run(&[
            "site",
            "add",
            uri,
            "--platform",
            &p,
            "--db",
            &db,
            "--bind",
            &v,
            "--bind",
            &a,
        ])
        .ok();
        s
    }

    fn snapshot(&self, uri: &str) -> String {
        let r = self.run(&["snapshot", uri, "--json"]).ok();
        r.json()[0]["id"].as_str().unwrap().to_string()
    }
}

/// Every file under `root` with the SHA-256 of its bytes.
fn hash_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().to_path_buf(),
                sha_hex(&fs::read(e.path()).unwrap()),
            )
        })
        .collect()
}

/// The files under `root` whose bytes contain `needle`.
fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let b = fs::read(e.path()).unwrap();
            b.windows(needle.len()).any(|w| w == needle)
        })
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// Puts `marker` into a site file, a database row and the vhost of `s`.
fn plant_markers(s: &Site, marker: &str) {
    fs::write(
        s.dir.join("files/marker.txt"),
        format!("uploaded file with {marker} inside\n"),
    )
    .unwrap();
    let c = rusqlite::Connection::open(&s.db).unwrap();
    c.execute(
        "INSERT INTO variable VALUES ('secret_row', ?1)",
        [format!("row {marker}")],
    )
    .unwrap();
    drop(c);
    let mut v = fs::read_to_string(&s.vhost).unwrap();
    v.push_str(&format!("# fastcgi_param db_passwd {marker};\n"));
    fs::write(&s.vhost, v).unwrap();
}

/// The live state a restore must bring back: the site folder (every entry: content, mode,
/// owner, mtime, link target), the bindings, the database rows, and the platform's files
/// (folders left out: restoring the site folder inside `sites/` changes their mtimes).
fn live_state(p: &Path, s: &Site) -> String {
    let rows: Vec<Vec<String>> = sqlite_tables(&s.db)
        .iter()
        .map(|t| sqlite_rows(&s.db, t))
        .collect();
    let platform: Vec<Rec> = live_records(p, platform_keep)
        .into_iter()
        .filter(|r| r.kind != "dir")
        .collect();
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        platform,
        live_records(&s.dir, site_keep("site.sqlite")),
        live_bindings(&[&s.vhost, &s.alias]),
        rows
    )
}

/// Changes the live site in every part a snapshot holds.
/// (The platform is shared and left alone by restore; drift is another test's business.)
fn damage_live(s: &Site, n: u32) {
    fs::write(s.dir.join("files/upload3.bin"), format!("overwritten {n}")).unwrap();
    fs::remove_file(s.dir.join("files/marker.txt")).unwrap();
    fs::write(&s.vhost, "server { root /elsewhere; }\n").unwrap();
    let c = rusqlite::Connection::open(&s.db).unwrap();
    c.execute("DELETE FROM node WHERE nid % 3 = 0", []).unwrap();
}

/// A marker placed in a site file, a database row and the vhost appears in no file under the
/// repository folder (packs, objects, key files, catalogue and its log), after snapshots, gc
/// and a `repair catalog`; the same steps on an unencrypted repository do leave it readable
/// (so the search would have found it). A database password is sealed in the catalogue.
#[test]
fn markers_appear_nowhere_under_an_encrypted_repository() {
    let marker = "ZQX-MARKER-7f3a9c1e-not-in-any-store";
    let e = Enc::new();
    let p = e.w.platform("platforms/d7", 30);
    let s = e.site("example.com", &p);
    plant_markers(&s, marker);
    e.snapshot("example.com");
    fs::write(s.dir.join("files/more.txt"), format!("second {marker}")).unwrap();
    e.snapshot("example.com");
    e.run(&["gc"]).ok();
    assert_eq!(
        files_containing(&e.w.repo, marker.as_bytes()),
        Vec::<PathBuf>::new()
    );
    // The sites' database URL is sealed: a password in it is not in the catalogue in clear.
    let dbdir = e.w.path("dbpw");
    fs::create_dir_all(&dbdir).unwrap();
    let c = e.w.repo.join("catalog.sqlite");
    let conn = rusqlite::Connection::open(&c).unwrap();
    let url: String = conn
        .query_row(
            "SELECT db_url FROM sites WHERE uri = 'example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(url.starts_with("sealed:"), "{url}");
    drop(conn);
    fs::remove_file(&c).unwrap();
    e.run(&["repair", "catalog"]).ok();
    assert_eq!(
        files_containing(&e.w.repo, marker.as_bytes()),
        Vec::<PathBuf>::new()
    );
    let site_path = s.db.to_string_lossy().into_owned();
    assert!(
        files_containing(&e.w.repo.join("data"), site_path.as_bytes()).is_empty(),
        "the store names no path in clear"
    );

    let plain = World::new();
    let p2 = plain.platform("platforms/d7", 30);
    let s2 = plain.site("example.com", &p2);
    plant_markers(&s2, marker);
    plain.snapshot("example.com");
    assert!(!files_containing(&plain.repo, marker.as_bytes()).is_empty());
}

/// Snapshot then restore gives back every part byte for byte (files, modes, bindings,
/// database rows) on an encrypted repository, with `verify --read-data` and `export` working;
/// and again after the catalogue was deleted and rebuilt by `repair catalog`.
#[test]
fn restore_is_exact_on_an_encrypted_repository_also_after_repair() {
    let e = Enc::new();
    let p = e.w.platform("platforms/d7", 40);
    let s = e.site("example.com", &p);
    plant_markers(&s, "restore-me");
    let before = live_state(&p, &s);
    let id = e.snapshot("example.com");
    e.run(&["verify", "--read-data"]).ok();
    let out = e.w.path("export.tar.gz");
    e.run(&["export", &id, "-o", &out.to_string_lossy()]).ok();
    assert!(fs::metadata(&out).unwrap().len() > 0);

    damage_live(&s, 1);
    assert_ne!(live_state(&p, &s), before);
    e.run(&["restore", &id, "--yes"]).ok();
    assert!(
        live_state(&p, &s) == before,
        "restore did not give back the snapshot"
    );

    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = fs::remove_file(e.w.repo.join(f));
    }
    let r = e.run(&["-v", "repair", "catalog"]).ok();
    assert!(r.stdout.contains("site(s)"), "{}", r.stdout);
    e.run(&["verify", "--read-data"]).ok();
    damage_live(&s, 2);
    e.run(&["restore", &id, "--yes"]).ok();
    assert!(live_state(&p, &s) == before, "restore after repair differs");
    e.run(&["gc"]).ok();
    e.run(&["verify", "--read-data"]).ok();
}

/// A wrong passphrase, an unreadable password file and no passphrase at all (no terminal)
/// are each one error line, exit 1, and leave every file of the repository as it was.
#[test]
fn wrong_or_missing_passphrase_changes_nothing() {
    let e = Enc::new();
    let p = e.w.platform("platforms/d7", 20);
    e.site("example.com", &p);
    e.snapshot("example.com");
    let before = hash_tree(&e.w.repo);
    let wrong = e.w.path("wrong");
    fs::write(&wrong, "not the passphrase\n").unwrap();
    let wrong_s = wrong.to_string_lossy().into_owned();
    for args in [
        vec!["snapshot", "example.com"],
        vec!["list"],
        vec!["gc"],
        vec!["key", "add", "--new-password-file", &wrong_s],
        vec!["repair", "catalog"],
    ] {
        let mut a = vec!["--password-file", wrong_s.as_str()];
        a.extend(args.iter().copied());
        let r = e.w.run(&a);
        assert_one_line_error(&r, 1, &["wrong passphrase", "repo"]);
        let r = e.w.run(&args);
        assert_one_line_error(&r, 1, &["encrypted", "--password-file"]);
    }
    let missing = e.w.path("no-such-file").to_string_lossy().into_owned();
    let r = e.w.run(&["--password-file", &missing, "list"]);
    assert_one_line_error(&r, 1, &["no-such-file"]);
    assert_eq!(hash_tree(&e.w.repo), before);
    // Removing the key files does not make it readable as an unencrypted repository.
    fs::rename(e.w.repo.join("keys"), e.w.path("keys-aside")).unwrap();
    let r = e.w.run(&["list"]);
    assert_one_line_error(&r, 1, &["encrypted"]);
}

/// `key add` writes a second key file; the new passphrase opens the repository; removing the
/// old key with it works, after which the old passphrase is refused. The key in use and the
/// last key cannot be removed. An unencrypted repository has no keys.
#[test]
fn key_add_list_remove_round_trip() {
    let e = Enc::new();
    let p = e.w.platform("platforms/d7", 10);
    e.site("example.com", &p);
    let id = e.snapshot("example.com");
    let old_id = e.run(&["key", "list", "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let new_pw = e.w.path("new-passphrase");
    fs::write(&new_pw, "a brand new passphrase\n").unwrap();
    let new_s = new_pw.to_string_lossy().into_owned();
    let r = e
        .run(&["-v", "key", "add", "--new-password-file", &new_s])
        .ok();
    assert!(r.stdout.starts_with("added key "), "{}", r.stdout);
    let keys = e.run(&["key", "list", "--json"]).ok().json();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let current: Vec<&str> = keys
        .iter()
        .filter(|k| k["current"] == true)
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(current, vec![old_id.as_str()]);
    let new_id = keys
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .find(|k| *k != old_id)
        .unwrap()
        .to_string();
    // The key that opened the repository cannot be removed.
    let r = e.run(&["key", "remove", &old_id]);
    assert_one_line_error(&r, 1, &[&old_id, "opened the repository"]);
    // With the new passphrase: the snapshot is there, and the old key goes.
    let with_new = |args: &[&str]| {
        let mut a = vec!["--password-file", new_s.as_str()];
        a.extend_from_slice(args);
        e.w.run(&a)
    };
    let list = with_new(&["list", "--json"]).ok().json();
    assert_eq!(list[0]["id"].as_str().unwrap(), id);
    with_new(&["key", "remove", &old_id]).ok();
    assert!(!e.w.repo.join("keys").join(&old_id).exists());
    let r = e.run(&["list"]);
    assert_one_line_error(&r, 1, &["wrong passphrase"]);
    let r = with_new(&["key", "remove", &new_id]);
    assert_one_line_error(&r, 1, &[&new_id, "only key"]);
    let r = with_new(&["key", "remove", "0123456789abcdef"]);
    assert_one_line_error(&r, 1, &["0123456789abcdef"]);
    with_new(&["restore", &id, "--yes"]).ok();

    let plain = World::new();
    let r = plain.run(&["key", "list"]);
    assert_one_line_error(&r, 1, &["not encrypted"]);
}

/// A flipped byte inside a sealed chunk is found by `verify --read-data` (exit 1); packs of an
/// encrypted repository cannot be read as plain packs (their header is sealed).
#[test]
fn verify_finds_a_flipped_byte_in_a_sealed_chunk() {
    let e = Enc::new();
    let p = e.w.platform("platforms/d7", 20);
    e.site("example.com", &p);
    e.snapshot("example.com");
    e.run(&["verify", "--read-data"]).ok();
    let packs: Vec<PathBuf> = walkdir::WalkDir::new(e.w.repo.join("data"))
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_type().is_file() && e.path().parent().unwrap().file_name().unwrap().len() == 2
        })
        .map(|e| e.into_path())
        .collect();
    assert!(!packs.is_empty());
    for pk in &packs {
        assert_eq!(&fs::read(pk).unwrap()[..8], b"SSNPACS2");
        assert!(sitesnap::store::read_pack_header(pk).is_err());
    }
    let mut b = fs::read(&packs[0]).unwrap();
    b[8 + 30] ^= 0x01; // inside the first chunk's ciphertext (after its 24-byte nonce)
    fs::write(&packs[0], b).unwrap();
    let r = e.run(&["verify", "--read-data"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("damaged") || r.stdout.contains("chunk"),
        "{}",
        r.stdout
    );
}

/// The associated data binds each sealed object to its kind and name: a manifest copied over
/// another snapshot's manifest, or into the blob lists, does not open, while the original
/// still does.
#[test]
fn a_sealed_object_moved_to_another_name_does_not_open() {
    let e = Enc::new();
    let p = e.w.platform("platforms/d7", 10);
    e.site("example.com", &p);
    let a = e.snapshot("example.com");
    let b = e.snapshot("example.com");
    let manifest = |id: &str| e.w.repo.join("data/snapshots").join(&id[..2]).join(id);
    fs::copy(manifest(&a), manifest(&b)).unwrap();
    let pass = sitesnap::crypto::Passphrase::new("correct horse battery staple".into());
    let repo = sitesnap::repo::Repo::open(&e.w.repo, Some(&pass)).unwrap();
    assert_eq!(sitesnap::objects::read_manifest(&repo, &a).unwrap().id, a);
    let err = sitesnap::objects::read_manifest(&repo, &b)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not decrypt"), "{err}");
    let stored = fs::read(manifest(&a)).unwrap();
    let name = "00".repeat(32);
    let as_blob = e.w.repo.join("data/blobs/00").join(&name);
    fs::create_dir_all(as_blob.parent().unwrap()).unwrap();
    fs::write(&as_blob, stored).unwrap();
    let id = sitesnap::hash::Hash([0; 32]);
    let err = sitesnap::objects::read_blob_list(&repo, &id)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not decrypt"), "{err}");
    assert!(sitesnap::repo::Repo::open(&e.w.repo, None).is_err());
}
