//! Progress and summaries (issue 13): long commands draw a progress bar (phase, done/total,
//! rate, estimate) on a terminal only; every writing command ends with one summary line on a
//! terminal or with `-v`, prints nothing on stdout off a terminal, and nothing at all with `-q`.

use crate::support::{Run, World};
use std::process::Command;

/// Runs sitesnap under a pseudo-terminal (`script` from util-linux); returns what the terminal
/// got (stdout and stderr together).
pub fn on_a_terminal(w: &World, args: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_sitesnap");
    let o = Command::new("script")
        .args(["-qec", &format!("{bin} {args}"), "/dev/null"])
        .env("SITESNAP_REPO", &w.repo)
        .env("TERM", "xterm")
        .env_remove("SITESNAP_PASSWORD_FILE")
        .output()
        .expect("script (util-linux)");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{args}: {out}");
    out
}

/// The three runs of one writing command: `-q` prints nothing at all; off a terminal nothing
/// on stdout; `-v` ends with the summary line, which starts with `summary`.
fn three_ways(w: &World, quiet: &[&str], plain: &[&str], verbose: &[&str], summary: &str) {
    let q = w.run(&[&["-q"][..], quiet].concat()).ok();
    assert_eq!(
        (q.stdout.as_str(), q.stderr.as_str()),
        ("", ""),
        "-q {quiet:?} printed something"
    );
    let p = w.run(plain).ok();
    assert_eq!(p.stdout, "", "{plain:?} off a terminal printed on stdout");
    let v = w.run(&[&["-v"][..], verbose].concat()).ok();
    assert_summary(&v, verbose, summary);
}

fn assert_summary(v: &Run, args: &[&str], summary: &str) {
    let last = v.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(summary),
        "-v {args:?}: the last line is not the summary '{summary}...':\n{}",
        v.stdout
    );
}

fn snap_ids(w: &World, uri: &str) -> Vec<String> {
    let r = w.run(&["list", uri, "--json"]).ok();
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap()[..8].to_string())
        .collect()
}

#[test]
fn every_writing_command_ends_with_one_summary_and_q_silences_it() {
    let w = World::new();
    let p = w.platform("platforms/d7", 20);
    let ps = p.to_string_lossy().into_owned();
    for u in ["a.example", "b.example", "c.example"] {
        std::fs::create_dir_all(p.join("sites").join(u)).unwrap();
    }
    let add = |u| ["site", "add", u, "--platform", ps.as_str()];
    three_ways(
        &w,
        &add("a.example"),
        &add("b.example"),
        &add("c.example"),
        "added site c.example",
    );
    let set = ["site", "set", "a.example", "--keep-last", "3"];
    three_ways(&w, &set, &set, &set, "changed site a.example");
    // A site without a database warns on stderr; -q silences the warning too.
    let snap = ["snapshot", "a.example"];
    three_ways(&w, &snap, &snap, &snap, "snapshot ");
    let cp = ["checkpoint", "a.example", "--label", "before"];
    three_ways(&w, &cp, &cp, &cp, "checkpoint ");
    let ids = snap_ids(&w, "a.example");
    let id = ids[0].as_str();
    three_ways(
        &w,
        &["pin", id],
        &["unpin", id],
        &["pin", id],
        "pinned snapshot",
    );
    let out = |n: &str| w.path(n).to_string_lossy().into_owned();
    let (o1, o2, o3) = (out("e1.tar.zst"), out("e2.tar.gz"), out("e3.tar"));
    three_ways(
        &w,
        &["export", id, "-o", &o1],
        &["export", id, "-o", &o2],
        &["export", id, "-o", &o3],
        "exported snapshot",
    );
    let restore = ["restore", id, "--yes"];
    three_ways(&w, &restore, &restore, &restore, "restored a.example");
    let ids = snap_ids(&w, "a.example");
    let mut unpinned = Vec::new();
    for i in &ids {
        if !w.run(&["show", i, "--json"]).ok().json()["pinned"]
            .as_bool()
            .unwrap()
        {
            unpinned.push(i.clone());
        }
    }
    assert!(unpinned.len() >= 3, "{unpinned:?}");
    three_ways(
        &w,
        &["forget", &unpinned[0]],
        &["forget", &unpinned[1]],
        &["forget", &unpinned[2]],
        "forgot 1 snapshot(s)",
    );
    let prune = ["prune", "--keep-last", "2"];
    three_ways(&w, &prune, &prune, &prune, "removed ");
    three_ways(&w, &["gc"], &["gc"], &["gc"], "removed ");
    let repair = ["repair", "catalog"];
    three_ways(&w, &repair, &repair, &repair, "rebuilt the catalogue");
    three_ways(
        &w,
        &["upgrade"],
        &["upgrade"],
        &["upgrade"],
        "the repository is already",
    );
    let init = |n: &str| w.path(n).to_string_lossy().into_owned();
    let (i1, i2, i3) = (init("n1"), init("n2"), init("n3"));
    three_ways(
        &w,
        &["--repo", &i1, "init"],
        &["--repo", &i2, "init"],
        &["--repo", &i3, "init"],
        "created repository",
    );
}

#[test]
fn key_and_remote_commands_end_with_one_summary() {
    let w = World::encrypted();
    let f = w.path("second");
    std::fs::write(&f, "another passphrase of some length\n").unwrap();
    let fs = f.to_string_lossy().into_owned();
    let add = ["key", "add", "--new-password-file", fs.as_str()];
    let q = w.run(&[&["-q"][..], &add[..]].concat()).ok();
    assert_eq!((q.stdout.as_str(), q.stderr.as_str()), ("", ""));
    let v = w.run(&[&["-v"][..], &add[..]].concat()).ok();
    assert_summary(&v, &add, "added key ");
    let keys = w.run(&["key", "list", "--json"]).ok().json();
    let other: Vec<String> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["current"].as_bool().unwrap())
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(other.len(), 2, "{keys}");
    let q = w.run(&["-q", "key", "remove", &other[0]]).ok();
    assert_eq!((q.stdout.as_str(), q.stderr.as_str()), ("", ""));
    let v = w.run(&["-v", "key", "remove", &other[1]]).ok();
    assert_summary(&v, &["key", "remove"], "removed key ");
    // Remotes (push needs an encrypted repository).
    let p = w.platform("platforms/d7", 5);
    w.site("a.example", &p);
    w.snapshot("a.example");
    let r = |n: &str| {
        std::fs::create_dir_all(w.path(n)).unwrap();
        format!("file://{}", w.path(n).display())
    };
    let (r1, r2, r3) = (r("r1"), r("r2"), r("r3"));
    three_ways(
        &w,
        &["remote", "add", "r1", &r1],
        &["remote", "add", "r2", &r2],
        &["remote", "add", "r3", &r3],
        "added remote r3",
    );
    three_ways(
        &w,
        &["push", "r1"],
        &["push", "r1"],
        &["push", "r1"],
        "pushed to r1",
    );
    three_ways(
        &w,
        &["remote", "remove", "r1"],
        &["remote", "remove", "r2"],
        &["remote", "remove", "r3"],
        "removed remote r3",
    );
}

#[test]
fn long_commands_draw_progress_on_a_terminal_only() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    w.site("example.com", &p);
    let s1 = w.snapshot("example.com")["id"].as_str().unwrap()[..8].to_string();
    w.snapshot("example.com");
    let archive = w.path("out.tar.zst").to_string_lossy().into_owned();
    // Each: the command, the phase its bar names, the summary it ends with.
    let cases = [
        (
            format!("restore {s1} --yes"),
            "writing the site folder",
            "restored example.com",
        ),
        (
            format!("export {s1} -o {archive}"),
            "export ",
            "exported snapshot",
        ),
        (
            "verify --read-data".to_string(),
            "verify: packs",
            "checked ",
        ),
        (
            "prune --keep-last 1".to_string(),
            "prune: forgetting",
            "removed",
        ),
        ("gc".to_string(), "gc: ", "removed"),
    ];
    for (args, phase, summary) in &cases {
        let tty = on_a_terminal(&w, args);
        assert!(tty.contains(phase), "{args}: no '{phase}' bar: {tty}");
        assert!(tty.contains(summary), "{args}: no summary: {tty}");
    }
    // A snapshot prune kept.
    let s1 = snap_ids(&w, "example.com").pop().unwrap();
    // With totals: percent, files done/total and an estimate.
    let tty = on_a_terminal(&w, &format!("restore {s1} --yes"));
    assert!(
        tty.contains('%') && tty.contains("eta") && tty.contains(" files"),
        "{tty}"
    );
    // Off a terminal: no bar, no summary.
    let r = w.run(&["restore", &s1, "--yes"]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = w.run(&["export", &s1, "-o", &archive]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    // -q on a terminal: neither.
    let quiet = on_a_terminal(&w, &format!("-q restore {s1} --yes"));
    assert!(
        !quiet.contains("eta") && !quiet.contains("restored"),
        "{quiet}"
    );
}
