//! `push` options: `--site URI` sends only what a site's snapshots need; `--metrics FILE`
//! writes Prometheus textfile metrics; a progress bar on a terminal only; a remote lock held
//! by a working process is refreshed and never turns stale, one whose holder was killed does.
use crate::db::Flavour;
use crate::db::sqlite::Sqlite;
use crate::remote::{Placed, object_files, place};
use crate::support::*;
use std::fs;
use std::path::PathBuf;

/// The ids `list --remote NAME --all-hosts --json` shows.
fn remote_ids(w: &World, name: &str) -> Vec<String> {
    let v = w
        .run(&["list", "--remote", name, "--all-hosts", "--json"])
        .ok()
        .json();
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// A world with two SQLite sites, each on a platform of its own and snapshotted twice, and a
/// folder remote `nas`.
fn two_sites() -> (World, Placed<Sqlite>, Placed<Sqlite>, PathBuf) {
    let w = World::encrypted();
    let a = place::<Sqlite>(&w, "a.example").unwrap();
    let b = place::<Sqlite>(&w, "b.example").unwrap();
    fs::write(
        b.platform.join("sites/b.example/files/more.bin"),
        noise(7, 200_000),
    )
    .unwrap();
    w.snapshot("b.example");
    let nas = w.path("nas");
    fs::create_dir(&nas).unwrap();
    w.run(&["remote", "add", "nas", &format!("file://{}", nas.display())])
        .ok();
    (w, a, b, nas)
}

#[test]
fn push_site_sends_only_that_sites_snapshots_and_a_full_push_the_rest() {
    let (w, a, b, nas) = two_sites();
    // An unknown site is refused before anything is sent.
    let r = w.run(&["push", "--site", "nope.example"]);
    assert_one_line_error(&r, 1, &["nope.example"]);
    assert!(object_files(&nas).is_empty());

    let first = w
        .run(&["push", "--site", "a.example", "--json"])
        .ok()
        .json();
    let sent = first["uploaded"].as_u64().unwrap();
    assert_eq!(sent, object_files(&nas).len() as u64, "{first}");
    assert_eq!(first["sites"][0], "a.example", "{first}");
    // Only a.example's snapshot is on the remote; b.example's two are not.
    assert_eq!(remote_ids(&w, "nas"), vec![a.id.clone()]);
    let b_ids: Vec<String> = w
        .run(&["list", "b.example", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(b_ids.len(), 2);
    assert!(b_ids.contains(&b.id));
    // Again: nothing more to send for a.example.
    let again = w
        .run(&["push", "--site", "a.example", "--json"])
        .ok()
        .json();
    assert_eq!(
        (again["uploaded"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(sent))
    );

    // a.example comes back from the remote into a fresh folder.
    let fresh = w.path("fresh");
    let f = fresh.to_string_lossy().into_owned();
    let url = format!("file://{}", nas.display());
    w.run(&["--repo", &f, "remote", "add", "nas", &url]).ok();
    a.lose();
    w.run(&["--repo", &f, "restore", &a.id, "--from", "nas", "--yes"])
        .ok();
    assert_eq!(listing(&a.platform), a.listing);
    assert_eq!(a.db.state(), a.state);

    // A full push sends only what b.example needs: nothing already sent goes again.
    let total = object_files(&w.repo.join("data")).len() as u64;
    let full = w.run(&["push", "--json"]).ok().json();
    assert_eq!(full["skipped"].as_u64(), Some(sent), "{full}");
    assert_eq!(full["uploaded"].as_u64(), Some(total - sent), "{full}");
    assert!(full.get("sites").is_none(), "{full}");
    let mut all = b_ids.clone();
    all.push(a.id.clone());
    all.sort();
    assert_eq!(remote_ids(&w, "nas"), all);
}

/// The value of `name{remote="nas"}` in a metrics text.
fn gauge(text: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}{{remote=\"nas\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
}

#[test]
fn push_metrics_count_a_push_and_keep_the_last_success_when_one_fails() {
    let (w, _a, _b, nas) = two_sites();
    let prom = w.path("push.prom");
    let p = prom.to_string_lossy().into_owned();
    let r = w.run(&["push", "--metrics", &p, "--json"]).ok().json();
    let text = fs::read_to_string(&prom).unwrap();
    let g = |name: &str| gauge(&text, name).unwrap_or_else(|| panic!("{name}: {text}"));
    assert_eq!(
        g("sitesnap_push_uploaded_objects"),
        r["uploaded"].to_string()
    );
    assert_eq!(
        g("sitesnap_push_uploaded_bytes"),
        r["uploaded_bytes"].to_string()
    );
    assert_eq!(g("sitesnap_push_skipped_objects"), "0");
    assert_eq!(g("sitesnap_push_skipped_bytes"), "0");
    assert_eq!(g("sitesnap_push_last_run_failed"), "0");
    assert!(g("sitesnap_push_duration_seconds").parse::<f64>().is_ok());
    let success = g("sitesnap_push_last_success_timestamp_seconds");
    assert!(success.parse::<f64>().unwrap() > 1e9, "{text}");
    assert!(
        text.contains("# TYPE sitesnap_push_uploaded_bytes gauge"),
        "{text}"
    );

    // The share is gone: the push fails, the file says so and keeps the last success.
    fs::remove_dir_all(&nas).unwrap();
    let r = w.run(&["push", "--metrics", &p]);
    assert_one_line_error(&r, 1, &["push to remote 'nas'"]);
    let text = fs::read_to_string(&prom).unwrap();
    assert_eq!(
        gauge(&text, "sitesnap_push_last_run_failed").as_deref(),
        Some("1")
    );
    assert_eq!(
        gauge(&text, "sitesnap_push_last_success_timestamp_seconds"),
        Some(success)
    );
    assert_eq!(
        gauge(&text, "sitesnap_push_uploaded_objects"),
        None,
        "{text}"
    );

    // The nightly run writes the sites' and the push's metrics in one file.
    fs::create_dir(&nas).unwrap();
    w.run(&["snapshot", "--all", "--push", "nas", "--metrics", &p])
        .ok();
    let text = fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains("sitesnap_last_run_failed{site=\"a.example\"} 0"),
        "{text}"
    );
    assert_eq!(
        gauge(&text, "sitesnap_push_last_run_failed").as_deref(),
        Some("0")
    );
    let sent: u64 = gauge(&text, "sitesnap_push_uploaded_objects")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sent, object_files(&nas).len() as u64, "{text}");
}

/// Runs sitesnap under a pseudo-terminal (`script` from util-linux) with the world's
/// passphrase file; returns what the terminal got (stdout and stderr together).
fn on_a_terminal(w: &World, args: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_sitesnap");
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &format!("{bin} {args}"), "/dev/null"])
        .env("SITESNAP_REPO", &w.repo)
        .env("TERM", "xterm");
    if let Some(p) = &w.pass {
        c.env("SITESNAP_PASSWORD_FILE", p);
    }
    let o = c.output().expect("script (util-linux)");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{args}: {out}");
    out
}

#[test]
fn push_shows_progress_on_a_terminal_only() {
    let w = World::encrypted();
    let p = w.platform("platforms/d7", 20);
    let site = w.site("big.example", &p);
    for i in 0..6 {
        fs::write(
            site.dir.join(format!("files/media{i}.bin")),
            noise(100 + i, 4_000_000),
        )
        .unwrap();
    }
    w.snapshot("big.example");
    let nas = w.path("nas");
    fs::create_dir(&nas).unwrap();
    let url = format!("file://{}", nas.display());
    w.run(&["remote", "add", "nas", &url]).ok();
    let tty = on_a_terminal(&w, "push nas");
    assert!(tty.contains("push to nas"), "{tty}");
    assert!(
        tty.contains("objects") && tty.contains("eta") && tty.contains('%'),
        "a bar with objects, total and estimate: {tty}"
    );
    assert!(tty.contains("pushed to nas"), "the summary follows: {tty}");
    // Off a terminal: nothing at all.
    let nas2 = w.path("nas2");
    fs::create_dir(&nas2).unwrap();
    let url2 = format!("file://{}", nas2.display());
    w.run(&["remote", "add", "nas2", &url2]).ok();
    let r = w.run(&["push", "nas2"]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    assert!(!object_files(&nas2).is_empty());
}

/// A remote lock whose holder is alive and working is refreshed, so another server never
/// takes it as stale however long it is held; once its holder is killed, it turns stale after
/// the stale age and is removed. `SITESNAP_TEST_LOCK_STALE_SECS` (debug builds, tests only)
/// makes that age 3 s; the holder says it runs on host web2, so web1 cannot see its process
/// and only the lock's age tells.
#[test]
fn a_refreshed_remote_lock_never_turns_stale_and_a_killed_holders_does() {
    let (w, _a, _b, _nas) = two_sites();
    w.run(&["push"]).ok();
    let stale = ("SITESNAP_TEST_LOCK_STALE_SECS", "3");
    let gate = w.path("gate");
    let pass = w.pass.as_ref().unwrap().to_string_lossy().into_owned();
    let prune = ["prune", "--remote", "nas", "--keep-last", "5"];
    let mut holder = spawn(
        &w.repo,
        &prune,
        &[
            stale,
            ("SITESNAP_HOST", "web2"),
            ("SITESNAP_PASSWORD_FILE", &pass),
            ("SITESNAP_PAUSE", "remote-locked"),
            ("SITESNAP_PAUSE_FILE", gate.to_str().unwrap()),
        ],
    );
    wait_for(&gate);
    let web1 = [stale, ("SITESNAP_HOST", "web1")];
    // Twice the stale age: a lock that was not refreshed would be stale by now.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let r = w.run_env(&prune, &web1);
    assert_one_line_error(&r, 1, &["is locked", "host 'web2'"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Killed: no more refreshes; past the stale age web1 removes it and runs.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let r = w.run_env(&prune, &web1).ok();
    assert!(r.stderr.contains("removed a stale lock"), "{}", r.stderr);
    assert!(r.stderr.contains("host 'web2'"), "{}", r.stderr);
}
