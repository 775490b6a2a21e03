//! contrib/aegir/sitesnap.drush.inc, run by Debian's php-cli through a small drush API shim
//! (tests/it/drush_shim.php) with the real sitesnap binary: each pre-task hook takes a
//! checkpoint labelled "before Aegir <task>", and a failing checkpoint aborts the task.
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const URI: &str = "drush.example.com";

fn php() -> bool {
    if which("php") {
        return true;
    }
    assert!(!ci(), "php is not installed (apt-get install -y php-cli)");
    eprintln!("SKIPPED: php is not installed (apt-get install -y php-cli)");
    false
}

fn src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs the shim for `task`; returns (exit code, stderr).
fn run_task(w: &World, task: &str, root: &Path, marker: &Path, repo: &Path) -> (i32, String) {
    let o = Command::new("php")
        .arg(src("tests/it/drush_shim.php"))
        .arg(src("contrib/aegir/sitesnap.drush.inc"))
        .arg(task)
        .arg(URI)
        .arg(root)
        .arg(marker)
        .env("SITESNAP_BIN", bin())
        .env("SITESNAP_REPO", repo)
        .current_dir(w.dir.path())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_drush_hook_takes_a_checkpoint_before_each_aegir_task() {
    if !php() {
        return;
    }
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 10);
    w.site(URI, &p);
    for (task, label) in [
        ("migrate", "Migrate"),
        ("clone", "Clone"),
        ("restore", "Restore"),
        ("delete", "Delete"),
    ] {
        let marker = w.path(&format!("{task}.ran"));
        let (code, err) = run_task(&w, task, &p, &marker, &w.repo);
        assert_eq!(code, 0, "{task}: {err}");
        assert!(marker.exists(), "{task}: the task did not run");
        let list = w.run(&["list", URI, "--json"]).ok().json();
        let last = list.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["kind"], "checkpoint", "{last}");
        assert_eq!(last["label"], format!("before Aegir {label}"), "{last}");
        assert!(err.contains("sitesnap: checkpoint"), "{err}");
    }
    assert_eq!(w.snapshot_count(), 4);
}

#[test]
fn the_drush_hook_blocks_the_task_when_sitesnap_fails() {
    if !php() {
        return;
    }
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 10);
    w.site(URI, &p);
    // The site's database is unreadable: the checkpoint fails.
    let db = p.join("sites").join(URI).join("site.sqlite");
    std::fs::write(&db, b"not a database at all").unwrap();
    let marker = w.path("migrate.ran");
    let (code, err) = run_task(&w, "migrate", &p, &marker, &w.repo);
    assert_eq!(code, 1, "{err}");
    assert!(
        !marker.exists(),
        "the task ran although the checkpoint failed"
    );
    assert!(err.contains("SITESNAP_CHECKPOINT_FAILED"), "{err}");
    assert!(err.contains("Migrate task is aborted"), "{err}");
    assert_eq!(w.snapshot_count(), 0);
    // No repository at all: also blocked.
    let (code, err) = run_task(&w, "delete", &p, &marker, &w.path("no-repo"));
    assert_eq!(code, 1, "{err}");
    assert!(!marker.exists());
}
