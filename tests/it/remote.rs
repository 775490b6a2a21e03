//! Remotes: push to a real S3 server (Garage, see `support::garage`) or a folder, lose the
//! repository and the sites, pull into a fresh folder, restore; a killed push resumes without
//! uploading anything twice; a failing remote gives one line and leaves the repository alone.
use crate::db::mariadb::MariaDb;
use crate::db::postgres::Postgres;
use crate::db::sqlite::Sqlite;
use crate::db::{Flavour, snapshot_id};
use crate::support::*;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

/// A site placed and snapshotted: what a restore must bring back.
pub(crate) struct Placed<F: Flavour> {
    pub(crate) db: F,
    pub(crate) uri: String,
    pub(crate) platform: PathBuf,
    pub(crate) listing: Vec<String>,
    pub(crate) state: F::State,
    pub(crate) id: String,
}

pub(crate) fn place<F: Flavour>(w: &World, uri: &str) -> Option<Placed<F>> {
    let db = F::create("remote")?;
    db.load_schema();
    let state = db.state();
    let platform = db_site(w, uri, &db.url());
    fs::write(
        platform.join("sites").join(uri).join("files/marker.txt"),
        uri,
    )
    .unwrap();
    let id = snapshot_id::<F>(w, uri);
    Some(Placed {
        listing: listing(&platform),
        db,
        uri: uri.to_string(),
        platform,
        state,
        id,
    })
}

impl<F: Flavour> Placed<F> {
    /// The platform (with the site folder) is gone and the database changed.
    pub(crate) fn lose(&self) {
        fs::remove_dir_all(&self.platform).unwrap();
        self.db.mess_up();
        self.db.check_messed(&self.state);
    }

    /// Restores from the repository at `repo`: everything is back byte for byte.
    pub(crate) fn check_restored(&self, w: &World, repo: &Path) {
        let repo = repo.to_string_lossy();
        w.run(&["--repo", &repo, "restore", &self.id, "--yes"]).ok();
        assert_eq!(listing(&self.platform), self.listing, "{}", self.uri);
        assert_eq!(self.db.state(), self.state, "{}", self.uri);
    }
}

pub(crate) fn env_of<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Every object file of a store folder (a repository's `data/` or a folder remote), key files
/// and locks (which only a remote holds as objects) left out.
pub(crate) fn object_files(data: &Path) -> Vec<String> {
    walkdir::WalkDir::new(data)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.path().starts_with(data.join("keys")))
        .filter(|e| !e.path().starts_with(data.join("locks")))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| (n.len() == 64 || n.len() == 16) && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

fn push_json(w: &World, env: &[(&str, &str)]) -> serde_json::Value {
    w.run_env(&["push", "--json"], env).ok().json()
}

#[test]
fn three_sites_come_back_from_garage_into_a_fresh_folder() {
    let Some(s3) = garage() else { return };
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
    let url = s3.url("three");
    let creds = s3.env();
    let env = env_of(&creds);
    let add = s3.add_args("offsite", &url);
    w.run(&add).ok();
    let first = w.run_env(&["push", "--json"], &env).ok();
    let r = first.json();
    let total = object_files(&w.repo.join("data")).len() as u64;
    assert_eq!(r["uploaded"], total, "{r}");
    assert_eq!(r["skipped"], 0, "{r}");
    let again = push_json(&w, &env);
    assert_eq!(again["uploaded"], 0, "{again}");
    assert_eq!(again["skipped"], total, "{again}");
    // The secret is nowhere: not in output, the remotes file or the catalogue.
    for text in [
        first.stdout.into_bytes(),
        first.stderr.into_bytes(),
        fs::read(w.repo.join("remotes.json")).unwrap(),
        fs::read(w.repo.join("catalog.sqlite")).unwrap(),
    ] {
        assert!(!String::from_utf8_lossy(&text).contains(&s3.secret));
    }

    fs::remove_dir_all(&w.repo).unwrap();
    lite.lose();
    maria.lose();
    pg.lose();
    let fresh = w.path("rebuilt");
    let f = fresh.to_string_lossy();
    let mut add_fresh = vec!["--repo", &f];
    add_fresh.extend(add.iter().copied());
    w.run(&add_fresh).ok();
    let pulled = w
        .run_env(&["--repo", &f, "pull", "offsite", "--json"], &env)
        .ok();
    let p = pulled.json();
    assert_eq!(p["downloaded"], total, "{p}");
    assert_eq!(p["repair"]["snapshots"], 3, "{p}");
    lite.check_restored(&w, &fresh);
    maria.check_restored(&w, &fresh);
    pg.check_restored(&w, &fresh);
}

/// A world with one SQLite site and three snapshots (a dozen objects or more).
fn world_with_objects() -> World {
    let w = World::encrypted();
    let p = w.platform("platforms/d7", 40);
    let site = w.site("kill.example", &p);
    for i in 0..3 {
        fs::write(site.dir.join(format!("files/f{i}.txt")), noise(i, 300_000)).unwrap();
        w.snapshot("kill.example");
    }
    w
}

/// Kills pushes at several points, then checks that the resumed push sends exactly what the
/// remote lacks (`remote_count` reads the remote's object count from the server itself).
fn kill_then_resume(w: &World, env: &[(&str, &str)], remote_count: &dyn Fn() -> u64) {
    let total = object_files(&w.repo.join("data")).len() as u64;
    assert!(total >= 12, "{total} objects");
    let mut on_remote = 0;
    // A push killed after its n-th object has at most n + 3 (the other uploads in flight) up.
    for n in [1, 2] {
        let fp = format!("push-object:{n}");
        let mut e = env.to_vec();
        e.push(("SITESNAP_FAILPOINT", &fp));
        let (st, _, err) = w.run_status(&["push"], &e);
        assert_eq!(st.signal(), Some(9), "push was killed at {fp}: {err}");
        let now = remote_count();
        assert!(now >= on_remote + n, "{now} objects after a kill at {fp}");
        on_remote = now;
    }
    assert!(on_remote < total);
    let r = push_json(w, env);
    assert_eq!(r["skipped"], on_remote, "{r}");
    assert_eq!(
        r["uploaded"],
        total - on_remote,
        "nothing uploaded twice: {r}"
    );
    assert_eq!(remote_count(), total);
    let r = push_json(w, env);
    assert_eq!(
        (r["uploaded"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(total))
    );
}

#[test]
#[cfg(feature = "s3")]
fn a_killed_push_to_garage_resumes_without_uploading_twice() {
    let Some(s3) = garage() else { return };
    let w = world_with_objects();
    let url = s3.url("kill");
    w.run(&s3.add_args("k", &url)).ok();
    let server = s3.server(&url);
    let count = || {
        use sitesnap::store::{Backend, ObjectKind};
        ObjectKind::ALL
            .iter()
            .map(|k| server.list(*k).unwrap().len() as u64)
            .sum()
    };
    let creds = s3.env();
    kill_then_resume(&w, &env_of(&creds), &count);
}

#[test]
fn a_killed_push_to_a_folder_resumes_without_uploading_twice() {
    let w = world_with_objects();
    let nas = w.path("nas");
    fs::create_dir(&nas).unwrap();
    let url = format!("file://{}", nas.display());
    w.run(&["remote", "add", "nas", &url]).ok();
    kill_then_resume(&w, &[], &|| object_files(&nas).len() as u64);
}

/// A failing remote: name, URL, endpoint, environment, what the error line says.
type Case<'a> = (&'a str, String, &'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn a_failing_remote_is_one_line_and_changes_nothing() {
    let Some(s3) = garage() else { return };
    let w = World::encrypted();
    let p = w.platform("platforms/d7", 10);
    w.site("fail.example", &p);
    w.snapshot("fail.example");
    let creds = s3.env();
    let good = env_of(&creds);
    let wrong: Vec<(&str, &str)> = vec![
        ("AWS_ACCESS_KEY_ID", &s3.key_id),
        (
            "AWS_SECRET_ACCESS_KEY",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ];
    let missing = "s3://no-such-bucket-sitesnap/x".to_string();
    let cases: [Case; 3] = [
        (
            "badkey",
            s3.url("f"),
            s3.endpoint.as_str(),
            &wrong,
            "access denied",
        ),
        (
            "down",
            s3.url("f"),
            "http://127.0.0.1:9",
            &good,
            "127.0.0.1:9",
        ),
        (
            "nobucket",
            missing,
            s3.endpoint.as_str(),
            &good,
            "no-such-bucket",
        ),
    ];
    for (name, url, endpoint, env, says) in cases {
        let region = s3.region.as_str();
        w.run(&[
            "remote",
            "add",
            name,
            &url,
            "--endpoint",
            endpoint,
            "--region",
            region,
        ])
        .ok();
        let before = w.state();
        let files = object_files(&w.repo.join("data"));
        let r = w.run_env(&["push", name], env);
        assert_one_line_error(&r, 1, &[&format!("push to remote '{name}'"), says]);
        assert!(!r.stderr.contains(&s3.secret));
        assert_eq!(w.state(), before, "{name}");
        assert_eq!(object_files(&w.repo.join("data")), files, "{name}");
        // The commands that read or change a remote fail the same way.
        let others: [(&[&str], &str); 4] = [
            (&["list", "--remote", name], "list remote"),
            (&["gc", "--remote", name], "gc on remote"),
            (
                &["prune", "--remote", name, "--keep-last", "1"],
                "prune on remote",
            ),
            (
                &["restore", "0123456789abcdef", "--from", name, "--yes"],
                "restore from remote",
            ),
        ];
        for (args, what) in others {
            let r = w.run_env(args, env);
            assert_one_line_error(&r, 1, &[&format!("{what} '{name}'"), says]);
            assert!(!r.stderr.contains(&s3.secret));
            assert_eq!(w.state(), before, "{name}: {args:?}");
            assert_eq!(
                object_files(&w.repo.join("data")),
                files,
                "{name}: {args:?}"
            );
        }
        // A pull from it into a fresh folder fails the same way and writes no data.
        let fresh = w.path(&format!("fresh-{name}"));
        let f = fresh.to_string_lossy();
        w.run(&[
            "--repo",
            &f,
            "remote",
            "add",
            name,
            &url,
            "--endpoint",
            endpoint,
            "--region",
            region,
        ])
        .ok();
        let r = w.run_env(&["--repo", &f, "pull", name], env);
        assert_one_line_error(&r, 1, &[&format!("pull from remote '{name}'"), says]);
        assert!(!fresh.join("data").exists() && !fresh.join("catalog.sqlite").exists());
    }
}

#[test]
fn a_folder_remote_round_trips_a_lost_site() {
    let w = World::encrypted();
    let Some(lite) = place::<Sqlite>(&w, "nas.example") else {
        return;
    };
    let nas = w.path("nas");
    fs::create_dir(&nas).unwrap();
    let url = format!("file://{}", nas.display());
    w.run(&["remote", "add", "nas", &url]).ok();
    let listed = w.run(&["remote", "list"]).ok();
    assert!(listed.stdout.contains(&url), "{}", listed.stdout);
    let r = push_json(&w, &[]);
    assert_eq!(r["uploaded"], object_files(&nas).len() as u64, "{r}");
    fs::remove_dir_all(&w.repo).unwrap();
    lite.lose();
    let fresh = w.path("again");
    let f = fresh.to_string_lossy();
    w.run(&["--repo", &f, "remote", "add", "nas", &url]).ok();
    // Pulling into a folder that already holds a repository is refused.
    w.run(&["--repo", &f, "pull", "nas"]).ok();
    let r = w.run(&["--repo", &f, "pull", "nas"]);
    assert_one_line_error(&r, 1, &["already holds a repository"]);
    lite.check_restored(&w, &fresh);
    w.run(&["--repo", &f, "remote", "remove", "nas"]).ok();
    assert!(
        !w.run(&["--repo", &f, "remote", "list"])
            .ok()
            .stdout
            .contains("nas")
    );
}

#[test]
fn remote_add_checks_everything_before_writing() {
    let w = World::encrypted();
    let creds = w.path("creds");
    fs::write(
        &creds,
        "aws_access_key_id = GKx\naws_secret_access_key = topsecret\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o644)).unwrap();
    let c = creds.to_string_lossy();
    let e = "http://127.0.0.1:3900";
    let bad: [&[&str]; 5] = [
        &[
            "remote",
            "add",
            "r",
            "s3://bucket",
            "--endpoint",
            e,
            "--credentials-file",
            &c,
        ],
        &["remote", "add", "r", "s3://B", "--endpoint", e],
        &["remote", "add", "r", "file://relative/path"],
        &["remote", "add", "bad name", "s3://bucket"],
        &["remote", "add", "r", "s3://bucket", "--endpoint", "ftp://x"],
    ];
    for args in bad {
        let r = w.run(args);
        assert_one_line_error(&r, 1, &[]);
        assert!(!r.stderr.contains("topsecret"));
        assert!(!w.repo.join("remotes.json").exists(), "{args:?}");
    }
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o600)).unwrap();
    w.run(&[
        "remote",
        "add",
        "r",
        "s3://bucket",
        "--endpoint",
        e,
        "--credentials-file",
        &c,
    ])
    .ok();
    let md = fs::metadata(w.repo.join("remotes.json")).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(w.repo.join("remotes.json")).unwrap();
    assert!(
        !text.contains("topsecret") && !text.contains("GKx"),
        "{text}"
    );
    let r = w.run(&["remote", "add", "r", "file:///tmp"]);
    assert_one_line_error(&r, 1, &["already exists"]);
}

#[test]
fn snapshot_all_push_sends_the_new_snapshots_and_reports_a_failed_push() {
    let w = World::encrypted();
    let p = w.platform("platforms/d7", 10);
    w.site("cron.example", &p);
    let nas = w.path("nas");
    fs::create_dir(&nas).unwrap();
    w.run(&["remote", "add", "nas", &format!("file://{}", nas.display())])
        .ok();
    w.run(&["snapshot", "--all", "--kind", "scheduled", "--push", "nas"])
        .ok();
    assert_eq!(w.snapshot_count(), 1);
    assert_eq!(object_files(&nas), object_files(&w.repo.join("data")));
    // The share is gone: the snapshot is still taken, the push fails in one line, exit 1.
    fs::remove_dir_all(&nas).unwrap();
    let r = w.run(&["snapshot", "--all", "--push", "nas"]);
    assert_one_line_error(&r, 1, &["push to remote 'nas'", "is the share mounted"]);
    assert_eq!(w.snapshot_count(), 2);
    assert!(!nas.exists(), "an unmounted share is not created");
    // An unknown remote is refused before anything is captured.
    let r = w.run(&["snapshot", "--all", "--push", "nowhere"]);
    assert_one_line_error(&r, 1, &["nowhere"]);
    assert_eq!(w.snapshot_count(), 2);
}

/// Nothing readable leaves the machine: a plain repository may not push at all, and from an
/// encrypted one a marker put in a site file, a database row and a vhost is in no object of
/// the remote (the key files go too, so a fresh machine can open what it pulls).
#[test]
fn nothing_readable_leaves_the_machine() {
    let plain = World::new();
    let p = plain.platform("platforms/d7", 5);
    plain.site("plain.example", &p);
    plain.snapshot("plain.example");
    let nas = plain.path("nas");
    fs::create_dir(&nas).unwrap();
    let url = format!("file://{}", nas.display());
    plain.run(&["remote", "add", "nas", &url]).ok();
    let r = plain.run(&["push", "nas"]);
    assert_one_line_error(&r, 1, &["not encrypted", "init --encrypt"]);
    assert!(object_files(&nas).is_empty(), "{:?}", object_files(&nas));

    let w = World::encrypted();
    let p = w.platform("platforms/d7", 5);
    let site = w.site("m.example", &p);
    let marker = "MARKER-7f3c9a1e-not-in-the-bucket";
    fs::write(site.dir.join("files/secret.txt"), marker).unwrap();
    let c = rusqlite::Connection::open(&site.db).unwrap();
    c.execute_batch(&format!(
        "CREATE TABLE m (x); INSERT INTO m VALUES ('{marker}');"
    ))
    .unwrap();
    drop(c);
    let mut vhost = fs::read_to_string(&site.vhost).unwrap();
    vhost.push_str(&format!("# {marker}\n"));
    fs::write(&site.vhost, vhost).unwrap();
    w.snapshot("m.example");
    let nas = w.path("nas");
    fs::create_dir(&nas).unwrap();
    let url = format!("file://{}", nas.display());
    w.run(&["remote", "add", "nas", &url]).ok();
    let r = push_json(&w, &[]);
    assert!(r["uploaded"].as_u64().unwrap() > 3, "{r}");
    let mut files = 0;
    for e in walkdir::WalkDir::new(&nas) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            files += 1;
            let bytes = fs::read(e.path()).unwrap();
            assert!(
                !bytes.windows(marker.len()).any(|x| x == marker.as_bytes()),
                "{} holds the marker",
                e.path().display()
            );
        }
    }
    assert!(files > 3);
    assert!(nas.join("keys").is_dir(), "the key files are pushed");
}

/// `world_with_objects` pushed to a fresh folder remote `nas`: the world, the folder and the
/// snapshot ids, oldest first.
fn pushed_to_folder() -> (World, PathBuf, Vec<String>) {
    let w = world_with_objects();
    let nas = w.path("nas");
    fs::create_dir(&nas).unwrap();
    let url = format!("file://{}", nas.display());
    w.run(&["remote", "add", "nas", &url]).ok();
    push_json(&w, &[]);
    let list = w.run(&["list", "kill.example", "--json"]).ok().json();
    let mut snaps: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["time"].to_string(), s["id"].as_str().unwrap().to_string()))
        .collect();
    snaps.sort();
    let ids = snaps.into_iter().map(|s| s.1).collect();
    (w, nas, ids)
}

/// The pack the newest snapshot wrote (the last pack the local catalogue indexed: file times
/// can tie within the clock's tick), as the folder remote holds it.
fn newest_pack(w: &World, nas: &Path) -> PathBuf {
    let name: String = w
        .catalog()
        .query_row("SELECT name FROM packs ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    walkdir::WalkDir::new(nas)
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_type().is_file() && e.file_name().to_string_lossy() == name)
        .unwrap()
        .into_path()
}

/// What must not change: the local catalogue's bytes and the remote folder's files.
fn untouched(w: &World, nas: &Path) -> (Vec<u8>, Vec<String>) {
    let mut remote = object_files(nas);
    remote.sort();
    (fs::read(w.repo.join("catalog.sqlite")).unwrap(), remote)
}

fn damaged_ids(r: &serde_json::Value) -> Vec<String> {
    r["damaged_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn verify_remote_names_the_snapshot_of_a_pack_deleted_from_a_folder() {
    let (w, nas, ids) = pushed_to_folder();
    assert_eq!(ids.len(), 3);
    for extra in [None, Some("--read-data")] {
        let mut args = vec!["verify", "--remote", "nas", "--json"];
        args.extend(extra);
        let r = w.run(&args).ok().json();
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["snapshots"], 3, "{r}");
        assert!(r["referenced_chunks"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(
            r["bytes_read"].as_u64().unwrap() > 0,
            extra.is_some(),
            "{r}"
        );
    }
    let text = w.run(&["verify", "--remote", "nas"]).ok();
    assert!(
        text.stdout.is_empty() || text.stdout.lines().count() == 1,
        "{}",
        text.stdout
    );

    let pack = newest_pack(&w, &nas);
    fs::remove_file(&pack).unwrap();
    let before = untouched(&w, &nas);
    let r = w
        .run(&["verify", "--remote", "nas", "--json"])
        .fails(1)
        .json();
    assert!(r["missing_chunks"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(damaged_ids(&r), vec![ids[2].clone()], "{r}");
    assert_eq!(r["damaged_snapshots"][0]["site"], "kill.example", "{r}");
    let t = w.run(&["verify", "--remote", "nas"]).fails(1);
    assert!(t.stdout.contains("DAMAGED snapshot"), "{}", t.stdout);
    assert!(t.stdout.contains("kill.example"), "{}", t.stdout);
    assert_eq!(t.stderr.lines().count(), 1, "{}", t.stderr);
    assert!(
        t.stderr.contains("damage found on remote 'nas'"),
        "{}",
        t.stderr
    );
    assert_eq!(untouched(&w, &nas), before);
    // The local repository is sound and was not touched.
    w.run(&["verify"]).ok();
}

#[test]
fn a_byte_flipped_in_a_remote_pack_is_found_by_read_data_only() {
    let (w, nas, ids) = pushed_to_folder();
    let pack = newest_pack(&w, &nas);
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[20] ^= 0x55;
    let mut perm = fs::metadata(&pack).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    fs::set_permissions(&pack, perm).unwrap();
    fs::write(&pack, &bytes).unwrap();
    let before = untouched(&w, &nas);
    let quick = w.run(&["verify", "--remote", "nas", "--json"]).ok().json();
    assert_eq!(quick["ok"], true, "{quick}");
    let r = w
        .run(&["verify", "--remote", "nas", "--read-data", "--json"])
        .fails(1)
        .json();
    assert_eq!(r["pack_problems"][0]["pack"], name, "{r}");
    assert_eq!(damaged_ids(&r), vec![ids[2].clone()], "{r}");
    let items = r["damaged_snapshots"][0]["damaged"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|d| d["path"].as_str().unwrap().ends_with("files/f2.txt")),
        "{r}"
    );
    assert_eq!(untouched(&w, &nas), before);
}

#[test]
fn a_sound_garage_remote_verifies() {
    let Some(s3) = garage() else { return };
    let w = world_with_objects();
    let url = s3.url("verify");
    let creds = s3.env();
    let env = env_of(&creds);
    w.run(&s3.add_args("offsite", &url)).ok();
    w.run_env(&["push", "--json"], &env).ok();
    for extra in [None, Some("--read-data")] {
        let mut args = vec!["verify", "--remote", "offsite", "--json"];
        args.extend(extra);
        let r = w.run_env(&args, &env).ok().json();
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["snapshots"], 3, "{r}");
        assert!(r["packs"].as_u64().unwrap() >= 1, "{r}");
        assert_eq!(
            r["bytes_read"].as_u64().unwrap() > 0,
            extra.is_some(),
            "{r}"
        );
    }
}

#[test]
fn verify_remote_names_a_missing_blob_list_and_refuses_an_unknown_remote() {
    let (w, nas, _) = pushed_to_folder();
    let r = w.run(&["verify", "--remote", "nope"]);
    assert_one_line_error(&r, r.code, &["nope"]);
    assert_ne!(r.code, 0);
    let list = walkdir::WalkDir::new(nas.join("blobs"))
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_type().is_file())
        .unwrap();
    fs::remove_file(list.path()).unwrap();
    let r = w
        .run(&["verify", "--remote", "nas", "--json"])
        .fails(1)
        .json();
    let name = list.file_name().to_string_lossy().into_owned();
    assert_eq!(r["bad_blob_lists"][0]["name"], name, "{r}");
    assert_eq!(r["bad_blob_lists"][0]["problem"], "missing", "{r}");
    assert!(!damaged_ids(&r).is_empty(), "{r}");
}
