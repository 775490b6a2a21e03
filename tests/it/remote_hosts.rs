//! Several servers, one bucket: each snapshot records its host (`$SITESNAP_HOST` plays two
//! servers on one machine); a second server joins with `init --from` and shares the key, so a
//! platform both run is stored once; `list --remote` shows this host's snapshots unless told
//! otherwise; another server's snapshot comes back only with `--host`. Remote prune and gc take
//! the remote's exclusive lock (a push holds a shared one), keep every host's data, and leave a
//! remote that verifies clean and restores on both servers.
use crate::remote::object_files;
use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};

const WEB1: [(&str, &str); 1] = [("SITESNAP_HOST", "web1")];
const WEB2: [(&str, &str); 1] = [("SITESNAP_HOST", "web2")];

/// A server: a world whose every run says it is `host`.
struct Server {
    w: World,
    env: [(&'static str, &'static str); 1],
}

impl Server {
    fn run(&self, args: &[&str]) -> Run {
        self.w.run_env(args, &self.env)
    }

    fn snapshot(&self, uri: &str) -> String {
        let r = self.run(&["snapshot", uri, "--json"]).ok();
        r.json()[0]["id"].as_str().unwrap().to_string()
    }

    /// Runs in the background, paused once it holds the remote's lock; returns the child and
    /// the gate file to remove to let it go on.
    fn paused(&self, args: &[&str], tag: &str) -> (std::process::Child, PathBuf) {
        let gate = self.w.path(&format!("gate-{tag}"));
        let pass = self.w.pass.as_ref().unwrap().to_string_lossy().into_owned();
        let child = spawn(
            &self.w.repo,
            args,
            &[
                self.env[0],
                ("SITESNAP_PASSWORD_FILE", &pass),
                ("SITESNAP_PAUSE", "remote-locked"),
                ("SITESNAP_PAUSE_FILE", gate.to_str().unwrap()),
            ],
        );
        wait_for(&gate);
        (child, gate)
    }
}

/// A platform of 60 code files plus 1 MB of incompressible data, the same on every server.
fn shared_platform(w: &World) -> PathBuf {
    let p = w.platform("platforms/d7", 60);
    fs::write(p.join("includes/vendor.bin"), noise(4242, 1_000_000)).unwrap();
    p
}

/// Bytes of the packs in a folder remote.
fn pack_bytes(nas: &Path) -> u64 {
    walkdir::WalkDir::new(nas)
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file() && e.file_name().len() == 64)
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// A platform's listing without the sites' SQLite files (a restore loads the dump into a new
/// file: same rows, other bytes).
fn files(root: &Path) -> Vec<String> {
    listing_filtered(root, |rel| !rel.ends_with("site.sqlite"))
}

fn tree_size(root: &Path) -> u64 {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// web1 with site `one.example` snapshotted and pushed to folder remote `nas`; web2 joined to
/// the same remote (`init --from`) with site `two.example` on the same platform, snapshotted
/// and pushed. Returns both servers, the remote folder, the platform size and the snapshot ids.
fn two_servers() -> (Server, Server, tempfile::TempDir, u64, String, String) {
    let nas = tempfile::tempdir().unwrap();
    let url = format!("file://{}", nas.path().display());
    let a = Server {
        w: World::encrypted(),
        env: WEB1,
    };
    let pa = shared_platform(&a.w);
    a.w.site("one.example", &pa);
    let one = a.snapshot("one.example");
    a.run(&["remote", "add", "nas", &url]).ok();
    a.run(&["push"]).ok();
    let before = pack_bytes(nas.path());

    let b = Server {
        w: World::encrypted(),
        env: WEB2,
    };
    fs::remove_dir_all(&b.w.repo).unwrap();
    b.run(&["remote", "add", "nas", &url]).ok();
    b.run(&["init", "--from", "nas"]).ok();
    let pb = shared_platform(&b.w);
    b.w.site("two.example", &pb);
    let two = b.snapshot("two.example");
    b.run(&["push"]).ok();
    let platform = tree_size(&pa) - tree_size(&pa.join("sites/one.example"));
    let grew = pack_bytes(nas.path()) - before;
    assert!(
        grew < platform / 2,
        "the second server's push added {grew} bytes for a platform of {platform}"
    );
    (a, b, nas, platform, one, two)
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_servers_share_a_platform_in_one_bucket_and_list_by_host() {
    let (a, b, _nas, _platform, one, two) = two_servers();
    // This host's snapshots by default; --host and --all-hosts widen.
    let mine = a.run(&["list", "--remote", "nas", "--json"]).ok().json();
    assert_eq!(ids(&mine), vec![one.clone()]);
    assert_eq!(mine[0]["host"], "web1");
    let theirs = a
        .run(&["list", "--remote", "nas", "--host", "web2", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&theirs), vec![two.clone()]);
    let all = b
        .run(&["list", "--remote", "nas", "--all-hosts", "--json"])
        .ok()
        .json();
    let mut all_ids = ids(&all);
    all_ids.sort();
    let mut want = vec![one.clone(), two.clone()];
    want.sort();
    assert_eq!(all_ids, want);
    let text = b
        .run(&["list", "--remote", "nas", "--all-hosts"])
        .ok()
        .stdout;
    assert!(
        text.contains("host web1:") && text.contains("host web2:"),
        "{text}"
    );
    // The local repository: every snapshot it holds, or one host's.
    let local = b.run(&["list", "--host", "web1", "--json"]).ok().json();
    assert_eq!(local, serde_json::json!([]));
    let local = b.run(&["list", "--host", "web2", "--json"]).ok().json();
    assert_eq!(ids(&local), vec![two.clone()]);
}

#[test]
fn another_servers_site_comes_back_only_with_its_host_named() {
    let (a, b, _nas, _platform, one, two) = two_servers();
    let listing_one = files(&a.w.path("platforms/d7"));
    fs::remove_dir_all(a.w.path("platforms/d7")).unwrap();
    // web2 restoring web1's snapshot must name the host.
    let r = b.run(&["restore", &one, "--from", "nas", "--yes"]);
    assert_one_line_error(&r, 1, &["taken on host 'web1'", "--host web1"]);
    let r = b.run(&["restore", &one, "--from", "nas", "--host", "web3", "--yes"]);
    assert_one_line_error(&r, 1, &["taken on host 'web1', not on 'web3'"]);
    b.run(&["restore", &one, "--from", "nas", "--host", "web1", "--yes"])
        .ok();
    assert_eq!(files(&a.w.path("platforms/d7")), listing_one);
    // Now web2's repository holds web1's snapshot too; --host tells them apart.
    let local = b.run(&["list", "--host", "web1", "--json"]).ok().json();
    assert_eq!(ids(&local), vec![one.clone()]);
    // web2 lost: its own site comes back into a fresh folder.
    let listing_two = files(&b.w.path("platforms/d7"));
    fs::remove_dir_all(b.w.path("platforms/d7")).unwrap();
    fs::remove_dir_all(&b.w.repo).unwrap();
    let url = format!("file://{}", _nas.path().display());
    b.run(&["remote", "add", "nas", &url]).ok();
    b.run(&["restore", &two, "--from", "nas", "--yes"]).ok();
    assert_eq!(files(&b.w.path("platforms/d7")), listing_two);
}

/// More snapshots of web1's site, each with a new file in place of the previous one's (so
/// the pack of all but the last is unused once they are pruned).
fn more_snapshots(a: &Server, n: u64) -> Vec<String> {
    let site = a.w.path("platforms/d7/sites/one.example");
    (0..n)
        .map(|i| {
            if i > 0 {
                fs::remove_file(site.join(format!("files/new{}.bin", i - 1))).unwrap();
            }
            fs::write(
                site.join(format!("files/new{i}.bin")),
                noise(100 + i, 200_000),
            )
            .unwrap();
            a.snapshot("one.example")
        })
        .collect()
}

fn verify_remote_clean(s: &Server) {
    let v = s
        .run(&["verify", "--remote", "nas", "--read-data", "--json"])
        .ok()
        .json();
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn remote_prune_and_gc_keep_every_hosts_data_and_wait_for_pushes() {
    let (a, b, nas, _platform, _one, two) = two_servers();
    let newer = more_snapshots(&a, 2);
    a.run(&["push"]).ok();
    // web1 keeps its newest snapshot in the bucket; web2's are not its business.
    let r = a
        .run(&["prune", "--remote", "nas", "--keep-last", "1", "--json"])
        .ok()
        .json();
    assert_eq!(r["removed"], 2, "{r}");
    let all = a
        .run(&["list", "--remote", "nas", "--all-hosts", "--json"])
        .ok()
        .json();
    let mut left = ids(&all);
    left.sort();
    let mut want = vec![newer[1].clone(), two.clone()];
    want.sort();
    assert_eq!(left, want);
    let packs_before = object_files(nas.path()).len();
    // A push holds a shared lock: gc waits for it (refuses, removing nothing).
    let (push, gate) = b.paused(&["push"], "push");
    let r = a.run(&["gc", "--remote", "nas", "--grace", "0"]);
    assert_one_line_error(
        &r,
        1,
        &["remote 'nas' is locked", "push by pid", "host 'web2'"],
    );
    assert_eq!(object_files(nas.path()).len(), packs_before);
    fs::remove_file(&gate).unwrap();
    assert_eq!(finish(push).code, Some(0));
    // gc holds an exclusive lock: a push waits for it.
    let (gc, gate) = a.paused(&["gc", "--remote", "nas", "--grace", "0", "--json"], "gc");
    let r = b.run(&["push"]);
    assert_one_line_error(
        &r,
        1,
        &["push to remote 'nas'", "gc --remote by pid", "host 'web1'"],
    );
    fs::remove_file(&gate).unwrap();
    let done = finish(gc);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let g: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert!(g["packs_removed"].as_u64().unwrap() >= 1, "{g}");
    assert!(object_files(nas.path()).len() < packs_before);
    verify_remote_clean(&a);
    verify_remote_clean(&b);
    // Both servers restore from the bucket into fresh folders.
    for (s, id, platform) in [(&a, &newer[1], "platforms/d7"), (&b, &two, "platforms/d7")] {
        let before = files(&s.w.path(platform));
        fs::remove_dir_all(s.w.path(platform)).unwrap();
        let fresh = s.w.path("fresh");
        let f = fresh.to_string_lossy();
        let url = format!("file://{}", nas.path().display());
        s.run(&["--repo", &f, "remote", "add", "nas", &url]).ok();
        s.run(&["--repo", &f, "restore", id, "--from", "nas", "--yes"])
            .ok();
        assert_eq!(files(&s.w.path(platform)), before);
    }
}

#[test]
fn gc_and_push_running_together_leave_a_sound_remote() {
    let (a, b, nas, _platform, _one, _two) = two_servers();
    more_snapshots(&a, 2);
    a.run(&["push"]).ok();
    a.run(&["prune", "--remote", "nas", "--keep-last", "1"])
        .ok();
    // web2 takes and pushes new snapshots while web1 collects garbage, several rounds.
    let site = b.w.path("platforms/d7/sites/two.example");
    for round in 0..3u64 {
        fs::write(
            site.join(format!("files/r{round}.bin")),
            noise(300 + round, 150_000),
        )
        .unwrap();
        b.snapshot("two.example");
        let pass = b.w.pass.as_ref().unwrap().to_string_lossy().into_owned();
        let env = [WEB2[0], ("SITESNAP_PASSWORD_FILE", pass.as_str())];
        let push = spawn(&b.w.repo, &["push"], &env);
        let g = a.run(&["gc", "--remote", "nas", "--grace", "0"]);
        let p = finish(push);
        // Each either ran or was refused by the other's lock, in one line.
        for (code, err) in [(g.code, &g.stderr), (p.code.unwrap(), &p.stderr)] {
            assert!(
                code == 0 || (code == 1 && err.contains("is locked") && err.lines().count() == 1),
                "{code}: {err}"
            );
        }
        if p.code != Some(0) {
            b.run(&["push"]).ok();
        }
    }
    a.run(&["gc", "--remote", "nas", "--grace", "0"]).ok();
    verify_remote_clean(&a);
    verify_remote_clean(&b);
    let mine = b.run(&["list", "--remote", "nas", "--json"]).ok().json();
    assert_eq!(ids(&mine).len(), 4, "{mine}");
    let _ = nas;
}

#[test]
fn a_killed_holders_lock_is_stale_on_its_host_and_broken_on_request_elsewhere() {
    let (a, b, nas, _platform, _one, _two) = two_servers();
    let (push, _gate) = b.paused(&["push"], "kill");
    let mut push = push;
    push.kill().unwrap();
    push.wait().unwrap();
    let locks = || {
        fs::read_dir(nas.path().join("locks")).map_or(0, |d| {
            d.map(|e| e.unwrap())
                .filter(|e| e.path().is_dir())
                .flat_map(|e| fs::read_dir(e.path()).unwrap())
                .count()
        })
    };
    assert_eq!(locks(), 1, "the killed push left its lock");
    // Another host cannot tell that the holder is gone: it refuses, naming the escape hatch.
    let r = a.run(&["gc", "--remote", "nas", "--grace", "0"]);
    assert_one_line_error(&r, 1, &["is locked", "host 'web2'", "--break-lock"]);
    let r = a.run(&["prune", "--remote", "nas", "--keep-last", "5"]);
    assert_one_line_error(&r, 1, &["is locked", "--break-lock"]);
    // Its own host sees the process is gone: the lock is stale and removed.
    let r = b.run(&["gc", "--remote", "nas", "--grace", "0"]).ok();
    assert!(r.stderr.contains("removed a stale lock"), "{}", r.stderr);
    assert_eq!(locks(), 0);
    // --break-lock removes a live-looking lock of another host.
    let (push, gate) = b.paused(&["push"], "break");
    let r = a
        .run(&["gc", "--remote", "nas", "--grace", "0", "--break-lock"])
        .ok();
    assert!(r.stderr.contains("--break-lock"), "{}", r.stderr);
    fs::remove_file(&gate).unwrap();
    finish(push);
    verify_remote_clean(&a);
}
