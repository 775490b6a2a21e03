//! A temporary world (directory + initialized repository) and running the real binary in it.

use super::fixtures::{make_composer_platform, make_composer_site, make_platform, make_site};
use super::repo::{CatalogState, catalog_state};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct World {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    /// The passphrase file of an encrypted repository (given to every run through
    /// `$SITESNAP_PASSWORD_FILE`).
    pub pass: Option<PathBuf>,
}

/// Output of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn fails(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad json ({e}): {}", self.stdout))
    }
}

impl World {
    /// A new temporary world with an initialized repository.
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        let w = World {
            dir,
            repo,
            pass: None,
        };
        w.run(&["init"]).ok();
        w
    }

    /// A new temporary world whose repository is at `rel` under it, initialized after
    /// `before_init` ran on the world's folder (to mount a small filesystem there, say).
    pub fn with_repo_at(rel: &str, before_init: impl FnOnce(&Path)) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        before_init(dir.path());
        let repo = dir.path().join(rel);
        let w = World {
            dir,
            repo,
            pass: None,
        };
        w.run(&["init"]).ok();
        w
    }

    /// A new temporary world with an encrypted repository (`init --encrypt`); every run gets
    /// its passphrase file.
    pub fn encrypted() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        let pw = dir.path().join("passphrase");
        std::fs::write(&pw, "correct horse battery staple\n").expect("passphrase");
        let w = World {
            dir,
            repo,
            pass: Some(pw),
        };
        w.run(&["init", "--encrypt"]).ok();
        w
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sitesnap"));
        c.env("SITESNAP_REPO", &self.repo);
        if let Some(p) = &self.pass {
            c.env("SITESNAP_PASSWORD_FILE", p);
        }
        c.env_remove("SITESNAP_FAILPOINT");
        c.env_remove("SITESNAP_TEST_NOW");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("run sitesnap");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Snapshot of one site, returning its JSON record.
    pub fn snapshot(&self, uri: &str) -> serde_json::Value {
        let r = self.run(&["snapshot", uri, "--json"]).ok();
        r.json()[0].clone()
    }

    /// Builds a Drupal-like platform with `files` code files under includes/, modules/,
    /// sites/all/modules/ and themes/, plus sites/default and sites/sites.php.
    pub fn platform(&self, name: &str, files: usize) -> PathBuf {
        let root = self.path(name);
        make_platform(&root, files, name);
        root
    }

    /// Adds a site folder with settings.php, some uploaded files and an SQLite database inside
    /// it, a vhost and a drush alias naming the platform, and registers it.
    pub fn site(&self, uri: &str, platform: &Path) -> Site {
        let s = make_site(self.dir.path(), uri, platform);
        let vhost = s.vhost.to_string_lossy().into_owned();
        let alias = s.alias.to_string_lossy().into_owned();
        let db = format!("sqlite://{}", s.db.display());
        self.run(&[
            "site",
            "add",
            uri,
            "--platform",
            &platform.to_string_lossy(),
            "--db",
            &db,
            "--bind",
            &vhost,
            "--bind",
            &alias,
        ])
        .ok();
        s
    }

    /// Builds a Drupal 8+ composer platform whose web root is `web_root` (see
    /// `make_composer_platform`).
    pub fn composer_platform(&self, name: &str, web_root: &str) -> PathBuf {
        let root = self.path(name);
        make_composer_platform(&root, web_root);
        root
    }

    /// Adds a composer site (`<web_root>/sites/<uri>`, `private/<uri>`, SQLite database, vhost
    /// and alias whose root is the web root) and registers it with `private/<uri>` as its extra
    /// path, plus `extra_args`.
    pub fn composer_site(
        &self,
        uri: &str,
        platform: &Path,
        web_root: &str,
        extra_args: &[&str],
    ) -> Site {
        let s = make_composer_site(self.dir.path(), uri, platform, web_root);
        let db = format!("sqlite://{}", s.db.display());
        let private = format!("private/{uri}");
        let (vhost, alias) = (s.vhost.to_string_lossy(), s.alias.to_string_lossy());
        let p = platform.to_string_lossy();
        let mut args = vec!["site", "add", uri, "--platform", &p, "--db", &db];
        args.extend(["--bind", &vhost, "--bind", &alias, "--extra-path", &private]);
        args.extend(extra_args);
        self.run(&args).ok();
        s
    }

    pub fn catalog(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.repo.join("catalog.sqlite")).expect("catalog")
    }

    pub fn snapshot_count(&self) -> i64 {
        self.catalog()
            .query_row("SELECT count(*) FROM snapshots", [], |r| r.get(0))
            .unwrap()
    }
}

pub struct Site {
    pub uri: String,
    pub dir: PathBuf,
    pub db: PathBuf,
    pub vhost: PathBuf,
    pub alias: PathBuf,
}

/// Asserts a failed run: exit `code`, nothing on stdout, exactly one line on stderr that
/// contains every one of `names`.
pub fn assert_one_line_error(r: &Run, code: i32, names: &[&str]) {
    assert_eq!(
        r.code, code,
        "expected exit {code}\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.is_empty(), "stdout of a failed run: {}", r.stdout);
    assert!(
        r.stderr.ends_with('\n') && r.stderr.lines().count() == 1,
        "expected exactly one line on stderr, got:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.matches("(os error").count() <= 1,
        "a cause is repeated: {}",
        r.stderr
    );
    for n in names {
        assert!(
            r.stderr.contains(n),
            "the error should name '{n}': {}",
            r.stderr
        );
    }
}

impl World {
    /// Runs the binary as another user (uid/gid, no supplementary groups) through `setpriv`.
    pub fn run_as(&self, uid: u32, gid: u32, args: &[&str]) -> Run {
        let bin = env!("CARGO_BIN_EXE_sitesnap");
        let o = std::process::Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(bin)
            .args(args)
            .env("SITESNAP_REPO", &self.repo)
            .env_remove("SITESNAP_FAILPOINT")
            .env_remove("SITESNAP_TEST_NOW")
            .output()
            .expect("run setpriv");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs the binary and returns its raw exit status (to see a death by signal).
    pub fn run_status(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (std::process::ExitStatus, String, String) {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("run sitesnap");
        (
            o.status,
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    pub fn state(&self) -> CatalogState {
        catalog_state(&self.repo)
    }
}
