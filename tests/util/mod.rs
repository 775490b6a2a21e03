//! Shared test harness: a temporary world with a repository, Drupal-like platforms, sites with
//! SQLite databases and binding files, and helpers that run the real `sitesnap` binary.
#![allow(dead_code)]

use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

pub struct World {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
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
        let w = World { dir, repo };
        w.run(&["init"]).ok();
        w
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("sitesnap").expect("binary");
        c.env("SITESNAP_REPO", &self.repo);
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

/// Writes a deterministic pseudo-random byte string (xorshift) of `n` bytes.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

pub fn make_platform(root: &Path, files: usize, tag: &str) {
    let dirs = [
        "includes",
        "modules/node",
        "modules/system",
        "modules/user",
        "sites/all/modules/views",
        "sites/all/modules/ctools",
        "themes/bartik",
        "themes/garland",
    ];
    for d in dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::create_dir_all(root.join("sites/default")).unwrap();
    fs::create_dir_all(root.join("sites/all/libraries/empty")).unwrap();
    for i in 0..files {
        let d = dirs[i % dirs.len()];
        let body = format!(
            "<?php\n// {tag} file {i}\nfunction f_{i}() {{ return {}; }}\n{}\n",
            i * 7,
            "// padding line for a realistic code file size\n".repeat(i % 40)
        );
        fs::write(root.join(d).join(format!("file{i}.php")), body).unwrap();
    }
    fs::write(
        root.join("index.php"),
        "<?php require 'includes/bootstrap.inc';\n",
    )
    .unwrap();
    fs::write(root.join("sites/sites.php"), "<?php\n$sites = array();\n").unwrap();
    fs::write(
        root.join("sites/default/default.settings.php"),
        "<?php\n$databases = array();\n",
    )
    .unwrap();
    symlink("../includes", root.join("modules/includes-link")).unwrap();
    let odd = root.join("includes/odd-perms.sh");
    fs::write(&odd, "#!/bin/sh\necho odd\n").unwrap();
    fs::set_permissions(&odd, fs::Permissions::from_mode(0o4751)).unwrap();
}

pub fn make_site(world: &Path, uri: &str, platform: &Path) -> Site {
    let dir = platform.join("sites").join(uri);
    fs::create_dir_all(dir.join("files/styles")).unwrap();
    fs::create_dir_all(dir.join("private/empty")).unwrap();
    fs::write(
        dir.join("settings.php"),
        format!("<?php\n$base_url = 'http://{uri}';\n"),
    )
    .unwrap();
    fs::set_permissions(dir.join("settings.php"), fs::Permissions::from_mode(0o440)).unwrap();
    for i in 0..20 {
        fs::write(
            dir.join("files").join(format!("upload{i}.bin")),
            noise(i as u64 + uri.len() as u64, 10_000 + i * 1000),
        )
        .unwrap();
    }
    symlink("files/upload1.bin", dir.join("files/latest.bin")).unwrap();
    let db = dir.join("site.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE node (nid INTEGER PRIMARY KEY, title TEXT, body BLOB);
         CREATE TABLE variable (name TEXT PRIMARY KEY, value TEXT);",
    )
    .unwrap();
    for i in 0..200 {
        c.execute(
            "INSERT INTO node (title, body) VALUES (?1, ?2)",
            rusqlite::params![format!("node {i} of {uri}"), noise(i, 200)],
        )
        .unwrap();
    }
    c.execute("INSERT INTO variable VALUES ('site_name', ?1)", [uri])
        .unwrap();
    drop(c);
    let conf = world.join("config");
    fs::create_dir_all(conf.join("vhost.d")).unwrap();
    fs::create_dir_all(conf.join("drush")).unwrap();
    let vhost = conf.join("vhost.d").join(uri);
    let p = platform.display();
    fs::write(
        &vhost,
        format!(
            "server {{\n  server_name {uri};\n  root {p};\n  fastcgi_param db_passwd s3cret;\n}}\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&vhost, fs::Permissions::from_mode(0o600)).unwrap();
    let alias = conf.join("drush").join(format!("{uri}.alias.drushrc.php"));
    fs::write(
        &alias,
        format!(
            "<?php\n$aliases['{uri}'] = array('root' => '{p}', 'site_path' => '{p}/sites/{uri}', 'uri' => '{uri}');\n"
        ),
    )
    .unwrap();
    Site {
        uri: uri.to_string(),
        dir,
        db,
        vhost,
        alias,
    }
}

/// A comparable listing of a tree: path, type, mode, size, content hash or link target, mtime.
pub fn listing(root: &Path) -> Vec<String> {
    listing_filtered(root, |_| true)
}

pub fn listing_filtered(root: &Path, keep: impl Fn(&Path) -> bool) -> Vec<String> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| keep(e.path().strip_prefix(root).unwrap()))
    {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let what = if md.file_type().is_symlink() {
            format!("link {}", fs::read_link(e.path()).unwrap().display())
        } else if md.is_dir() {
            "dir".to_string()
        } else {
            format!(
                "file {} {}",
                md.len(),
                hex::encode(sha2::Sha256::digest(fs::read(e.path()).unwrap()))
            )
        };
        let mtime = if md.file_type().is_symlink() || md.is_dir() {
            0
        } else {
            md.mtime()
        };
        out.push(format!(
            "{rel} {what} mode={:o} uid={} gid={} mtime={mtime}",
            md.mode() & 0o7777,
            md.uid(),
            md.gid()
        ));
    }
    out
}

/// Rows of a SQLite table as strings, ordered by rowid.
pub fn sqlite_rows(db: &Path, table: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
        .unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        let mut s = Vec::new();
        for i in 0..n {
            let v: rusqlite::types::Value = r.get(i)?;
            s.push(format!("{v:?}"));
        }
        Ok(s.join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

pub fn sqlite_tables(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
