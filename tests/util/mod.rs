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

// ------------------------------------------------------------------------------------------
// Additions for the snapshot, bad-input and crash tests: exact tree records (nanosecond
// mtimes, owners, content hashes, byte paths), reading a snapshot back through the library,
// catalogue state for "nothing written" checks, and running the binary as another user.

use std::os::unix::ffi::OsStrExt;

/// One path of a tree, as the tests compare live trees with snapshots: everything a restore
/// must put back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rec {
    pub path: Vec<u8>,
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub size: u64,
    pub target: Option<Vec<u8>>,
    /// Hex SHA-256 of a file's content.
    pub sha: Option<String>,
}

impl Rec {
    pub fn path_str(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

fn sha_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn rec_of(abs: &Path, rel: Vec<u8>) -> Option<Rec> {
    use std::os::unix::fs::MetadataExt;
    let md = fs::symlink_metadata(abs).unwrap_or_else(|e| panic!("{}: {e}", abs.display()));
    let ft = md.file_type();
    let (kind, target, sha, size) = if ft.is_symlink() {
        let t = fs::read_link(abs).unwrap().as_os_str().as_bytes().to_vec();
        ("link", Some(t), None, 0)
    } else if ft.is_dir() {
        ("dir", None, None, 0)
    } else if ft.is_file() {
        let data = fs::read(abs).unwrap_or_else(|e| panic!("{}: {e}", abs.display()));
        ("file", None, Some(sha_hex(&data)), data.len() as u64)
    } else {
        return None; // fifos, sockets, devices are not site content
    };
    Some(Rec {
        path: rel,
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        size,
        target,
        sha,
    })
}

/// Every path under `root` (not the root itself) that `keep(rel, is_dir)` allows (a refused
/// folder is not entered), sorted by path bytes.
pub fn live_records(root: &Path, keep: impl Fn(&Path, bool) -> bool) -> Vec<Rec> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| keep(e.path().strip_prefix(root).unwrap(), e.file_type().is_dir()))
    {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        if let Some(r) = rec_of(e.path(), rel) {
            out.push(r);
        }
    }
    out.sort();
    out
}

/// Records of binding files, named by their absolute path without the leading `/`.
pub fn live_bindings(files: &[&Path]) -> Vec<Rec> {
    let mut out: Vec<Rec> = files
        .iter()
        .filter_map(|f| {
            let rel = f
                .as_os_str()
                .as_bytes()
                .strip_prefix(b"/")
                .unwrap()
                .to_vec();
            rec_of(f, rel)
        })
        .collect();
    out.sort();
    out
}

/// The platform part of a platform root, written independently of the library's filter:
/// everything except folders `sites/<name>` other than `sites/all` and `sites/default`.
pub fn platform_keep(rel: &Path, is_dir: bool) -> bool {
    let parts: Vec<&[u8]> = rel.iter().map(|c| c.as_bytes()).collect();
    if parts.len() >= 2 && parts[0] == b"sites" {
        let name = parts[1];
        if name == b"all" || name == b"default" {
            return true;
        }
        return parts.len() == 2 && !is_dir;
    }
    true
}

/// A snapshot read back through the library, as a restore would see it.
pub struct ReadBack {
    pub snap: sitesnap::catalog::SnapshotRecord,
    pub platform: Option<Vec<Rec>>,
    pub site: Option<Vec<Rec>>,
    pub bindings: Option<Vec<Rec>>,
    pub dump: Option<Vec<u8>>,
}

fn tree_records(repo: &sitesnap::repo::Repo, id: &sitesnap::hash::Hash) -> Vec<Rec> {
    use sitesnap::tree::Kind;
    let t = sitesnap::capture::load_tree(repo, id).expect("tree loads");
    let mut reader = sitesnap::store::ChunkReader::new(&repo.data_dir(), &repo.cat);
    let mut out = Vec::new();
    for e in &t.entries {
        let (kind, sha) = match e.kind {
            Kind::File => {
                let mut buf = Vec::with_capacity(e.size as usize);
                let n = reader
                    .copy_chunks(&e.chunks, &mut buf)
                    .unwrap_or_else(|err| panic!("reading {}: {err}", e.path_str()));
                assert_eq!(n, e.size, "stored size of {}", e.path_str());
                ("file", Some(sha_hex(&buf)))
            }
            Kind::Dir => ("dir", None),
            Kind::Symlink => ("link", None),
        };
        out.push(Rec {
            path: e.path.clone(),
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime_ns: e.mtime_ns,
            size: e.size,
            target: e.target.clone(),
            sha,
        });
    }
    let mut sorted = out.clone();
    sorted.sort();
    assert_eq!(out, sorted, "a stored tree is sorted by path");
    out
}

/// Reads every part of snapshot `id` (any unique prefix) back through the library: the trees
/// with every file's content read and hash-checked chunk by chunk, and the database dump.
pub fn restore_read(repo_root: &Path, id: &str) -> ReadBack {
    let repo = sitesnap::repo::Repo::open(repo_root).expect("repo opens");
    let snap = repo.cat.resolve_snapshot(id).expect("snapshot resolves");
    let platform = snap.platform_tree.map(|h| tree_records(&repo, &h));
    let site = snap.site_tree.map(|h| tree_records(&repo, &h));
    let bindings = snap.bindings_tree.map(|h| tree_records(&repo, &h));
    let dump = snap.db_dump.map(|h| {
        let (chunks, size) = repo.cat.blob(&h).expect("dump blob");
        let mut reader = sitesnap::store::ChunkReader::new(&repo.data_dir(), &repo.cat);
        let mut buf = Vec::new();
        reader.copy_chunks(&chunks, &mut buf).expect("dump reads");
        assert_eq!(buf.len() as u64, size, "dump size");
        buf
    });
    ReadBack {
        snap,
        platform,
        site,
        bindings,
        dump,
    }
}

/// Asserts two record lists are equal, naming the first differences.
pub fn assert_same_records(what: &str, got: &[Rec], want: &[Rec]) {
    if got == want {
        return;
    }
    let g: std::collections::BTreeMap<&[u8], &Rec> = got.iter().map(|r| (&r.path[..], r)).collect();
    let w: std::collections::BTreeMap<&[u8], &Rec> =
        want.iter().map(|r| (&r.path[..], r)).collect();
    let mut diffs = Vec::new();
    for (p, r) in &w {
        match g.get(p) {
            None => diffs.push(format!("missing from snapshot: {}", r.path_str())),
            Some(x) if x != r => {
                diffs.push(format!("differs:\n  snapshot {x:?}\n  live     {r:?}"))
            }
            _ => {}
        }
    }
    for (p, r) in &g {
        if !w.contains_key(p) {
            diffs.push(format!("only in snapshot: {}", r.path_str()));
        }
    }
    diffs.truncate(15);
    panic!(
        "{what}: snapshot ({} entries) differs from live ({} entries):\n{}",
        got.len(),
        want.len(),
        diffs.join("\n")
    );
}

/// Writes a dump to a file so rusqlite can open it; checks it is a sound SQLite database.
pub fn dump_to_db(dump: &[u8], at: &Path) -> PathBuf {
    fs::write(at, dump).unwrap();
    let c = rusqlite::Connection::open(at).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("the dump opens as an SQLite database");
    assert_eq!(ok, "ok", "integrity_check of the dump");
    at.to_path_buf()
}

/// Everything in the catalogue a failed command must leave alone.
#[derive(Debug, PartialEq, Eq)]
pub struct CatalogState {
    pub counts: Vec<(String, i64)>,
    pub sites: Vec<String>,
    pub snapshot_ids: Vec<String>,
}

pub fn catalog_state(repo: &Path) -> CatalogState {
    let c = rusqlite::Connection::open(repo.join("catalog.sqlite")).unwrap();
    let counts = [
        "sites",
        "packs",
        "chunks",
        "blobs",
        "snapshots",
        "files_cache",
        "journals",
    ]
    .iter()
    .map(|t| {
        let n: i64 = c
            .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap();
        (t.to_string(), n)
    })
    .collect();
    let strings = |sql: &str| -> Vec<String> {
        let mut st = c.prepare(sql).unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    CatalogState {
        counts,
        sites: strings(
            "SELECT uri || '|' || platform || '|' || site_dir || '|' || coalesce(db_url, '') || '|' || bindings FROM sites ORDER BY uri",
        ),
        snapshot_ids: strings("SELECT id FROM snapshots ORDER BY id"),
    }
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

/// Sets a path's mtime (and atime) to `ns` nanoseconds since the epoch, without following a
/// symlink.
pub fn set_mtime_ns(p: &Path, ns: i64) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let ts = libc::timespec {
        tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    };
    let times = [ts, ts];
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        r,
        0,
        "utimensat {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Gives every entry under `root` (deepest first, so folders keep theirs) an mtime with a
/// distinct nanosecond part.
pub fn nanosecond_mtimes(root: &Path, base_s: i64) {
    let mut all: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .contents_first(true)
        .into_iter()
        .map(|e| e.unwrap().path().to_path_buf())
        .collect();
    // contents_first already lists children before their folder.
    for (i, p) in all.drain(..).enumerate() {
        let ns = base_s * 1_000_000_000 + (i as i64) * 1_000_003_917 + 123;
        set_mtime_ns(&p, ns);
    }
}

/// Makes a platform more like a real one: foreign owners, special modes, big and empty files,
/// odd names, dangling and absolute symlinks, a FIFO, extra empty folders, files directly in
/// `sites/`, and nanosecond mtimes everywhere.
pub fn decorate_platform(root: &Path) {
    use std::os::unix::fs::{chown, lchown};
    fs::create_dir_all(root.join("themes/bartik/images")).unwrap();
    fs::write(
        root.join("themes/bartik/images/hero.jpg"),
        noise(77, 3 << 20),
    )
    .unwrap();
    let text: String = (0..40_000)
        .map(|i| format!("// generated line {i} of a large include\n"))
        .collect();
    fs::write(root.join("includes/big.inc"), text).unwrap();
    fs::write(root.join("includes/empty.inc"), b"").unwrap();
    let odd = root
        .join("modules/node")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9 menu.txt"));
    fs::write(&odd, b"latin-1 name").unwrap();
    fs::create_dir_all(root.join("themes/garland/empty-a/empty-b")).unwrap();
    symlink("nowhere/at/all", root.join("modules/dangling")).unwrap();
    symlink("/etc/hostname", root.join("modules/abs-link")).unwrap();
    fs::write(root.join("sites/README.txt"), "sites folder\n").unwrap();
    fs::write(root.join("sites/example.sites.php"), "<?php\n").unwrap();
    let fifo = std::ffi::CString::new(root.join("includes/a-fifo").as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // Foreign owners: some files, a folder, a symlink.
    for i in (0..10_000).step_by(97) {
        for d in ["includes", "modules/node", "themes/bartik"] {
            let p = root.join(d).join(format!("file{i}.php"));
            if p.exists() {
                chown(&p, Some(1234), Some(5678)).unwrap();
            }
        }
    }
    chown(root.join("themes/garland"), Some(1234), Some(5678)).unwrap();
    lchown(root.join("modules/includes-link"), Some(1234), Some(5678)).unwrap();
    // Special modes (chown clears set-id bits, so chmod after it).
    let suid = root.join("includes/suid-tool");
    fs::write(&suid, "#!/bin/sh\n").unwrap();
    chown(&suid, Some(1234), Some(5678)).unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o6755)).unwrap();
    let ro = root.join("includes/readonly.inc");
    fs::write(&ro, "<?php // read only\n").unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o440)).unwrap();
    let none = root.join("includes/mode-000.txt");
    fs::write(&none, "no permissions at all\n").unwrap();
    fs::set_permissions(&none, fs::Permissions::from_mode(0o000)).unwrap();
    let sticky = root.join("sites/all/tmp-sticky");
    fs::create_dir_all(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    nanosecond_mtimes(root, 1_600_000_000);
}

/// Makes a site folder less uniform: a foreign-owned upload, nanosecond mtimes.
pub fn decorate_site(dir: &Path) {
    use std::os::unix::fs::chown;
    chown(dir.join("files/upload3.bin"), Some(1234), Some(5678)).unwrap();
    fs::write(dir.join("files/empty.txt"), b"").unwrap();
    fs::create_dir_all(dir.join("files/js")).unwrap();
    fs::write(dir.join("files/js/agg.js"), "var a = 1;\n".repeat(500)).unwrap();
    let skip = dir.join("site.sqlite");
    for (i, e) in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .contents_first(true)
        .into_iter()
        .enumerate()
    {
        let e = e.unwrap();
        if e.path() != skip {
            set_mtime_ns(
                e.path(),
                1_650_000_000_000_000_000 + i as i64 * 777_777_777 + 1,
            );
        }
    }
}

/// The live site folder minus the SQLite database file and its side files.
pub fn site_keep(db_name: &'static str) -> impl Fn(&Path, bool) -> bool {
    move |rel: &Path, _| {
        let s = rel.as_os_str().as_bytes();
        let db = db_name.as_bytes();
        !(s.starts_with(db) && matches!(&s[db.len()..], b"" | b"-wal" | b"-shm" | b"-journal"))
    }
}

/// Sum of the compressed sizes of the chunks in the catalogue.
pub fn stored_bytes(repo: &Path) -> i64 {
    let c = rusqlite::Connection::open(repo.join("catalog.sqlite")).unwrap();
    c.query_row("SELECT coalesce(sum(clen), 0) FROM chunks", [], |r| {
        r.get(0)
    })
    .unwrap()
}

pub fn mode_of(p: &Path) -> u32 {
    std::os::unix::fs::MetadataExt::mode(&fs::symlink_metadata(p).unwrap()) & 0o7777
}

/// Every folder in the repository is 0700 and every file 0600.
pub fn assert_private_repo(repo: &Path) {
    assert_eq!(mode_of(repo), 0o700, "{}", repo.display());
    let mut seen = 0;
    for e in walkdir::WalkDir::new(repo).min_depth(1) {
        let e = e.unwrap();
        let want = if e.file_type().is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            mode_of(e.path()),
            want,
            "mode of {} is {:o}",
            e.path().display(),
            mode_of(e.path())
        );
        seen += 1;
    }
    assert!(seen >= 4, "catalogue, lock, data, data/tmp");
}

/// Compares every part of snapshot `id` of `site` with the live trees.
pub fn assert_snapshot_matches_live(w: &World, id: &str, platform: &Path, site: &Site) -> ReadBack {
    let rb = restore_read(&w.repo, id);
    assert_eq!(rb.snap.platform_path, platform);
    assert_same_records(
        "platform tree",
        rb.platform.as_deref().expect("platform tree"),
        &live_records(platform, platform_keep),
    );
    assert_same_records(
        "site tree",
        rb.site.as_deref().expect("site tree"),
        &live_records(&site.dir, site_keep("site.sqlite")),
    );
    assert_same_records(
        "bindings tree",
        rb.bindings.as_deref().expect("bindings tree"),
        &live_bindings(&[&site.vhost, &site.alias]),
    );
    let dump = rb.dump.as_deref().expect("database dump");
    let db = dump_to_db(dump, &w.path(&format!("dump-{id}.sqlite")));
    assert_eq!(sqlite_tables(&db), sqlite_tables(&site.db));
    for t in sqlite_tables(&site.db) {
        assert_eq!(sqlite_rows(&db, &t), sqlite_rows(&site.db, &t), "table {t}");
    }
    fs::remove_file(db).unwrap();
    rb
}

// ------------------------------------------------------------------ real database servers

/// True when running under CI (`CI=true`): a server that cannot be reached is then a failure.
pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// A database engine with a real server the tests reach through its own command-line client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Mysql,
    Postgres,
}

impl Engine {
    /// The admin URL: `SITESNAP_TEST_MYSQL_URL` (default: root over the local socket) or
    /// `SITESNAP_TEST_PG_URL` (default: postgres on 127.0.0.1:5432). The path, if any, is
    /// ignored; each test makes its own database on that server.
    pub fn admin_url(self) -> url::Url {
        let (var, default) = match self {
            Engine::Mysql => (
                "SITESNAP_TEST_MYSQL_URL",
                "mysql://root@localhost/?socket=/run/mysqld/mysqld.sock",
            ),
            Engine::Postgres => (
                "SITESNAP_TEST_PG_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
        };
        let s = std::env::var(var).unwrap_or_else(|_| default.to_string());
        url::Url::parse(&s).unwrap_or_else(|e| panic!("{var}: bad URL: {e}"))
    }

    fn client(self) -> &'static str {
        match self {
            Engine::Mysql => ["mariadb", "mysql"]
                .into_iter()
                .find(|c| which(c))
                .unwrap_or("mariadb"),
            Engine::Postgres => "psql",
        }
    }
}

/// Whether `prog` is on PATH.
pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A database made for one test on a real server, dropped when the test ends.
pub struct TestDb {
    pub engine: Engine,
    pub name: String,
    admin: url::Url,
    /// Roles/users made by the test, dropped with the database.
    users: std::cell::RefCell<Vec<String>>,
}

/// Output of one client run.
pub struct SqlOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

fn client_cmd(engine: Engine, admin: &url::Url, database: Option<&str>) -> std::process::Command {
    let mut c = std::process::Command::new(engine.client());
    let user = url_decode(admin.username());
    let pw = admin.password().map(url_decode);
    let socket = admin
        .query_pairs()
        .find(|(k, _)| k == "socket" || k == "host")
        .map(|(_, v)| v.into_owned());
    let host = admin.host_str().unwrap_or("localhost").to_string();
    match engine {
        Engine::Mysql => {
            // The harness's own client: password in its environment, never in argv.
            if let Some(p) = pw {
                c.env("MYSQL_PWD", p);
            }
            c.arg(format!("--user={user}"));
            match socket {
                Some(s) => {
                    c.arg("--protocol=socket").arg(format!("--socket={s}"));
                }
                None => {
                    c.arg(format!("--host={host}"));
                    if let Some(p) = admin.port() {
                        c.arg(format!("--port={p}"));
                    }
                }
            }
            c.args([
                "--batch",
                "--skip-column-names",
                "--binary-as-hex",
                "--default-character-set=utf8mb4",
            ]);
            if let Some(d) = database {
                c.arg(format!("--database={d}"));
            }
        }
        Engine::Postgres => {
            if let Some(p) = pw {
                c.env("PGPASSWORD", p);
            }
            c.env("PGHOST", socket.unwrap_or(host));
            if let Some(p) = admin.port() {
                c.env("PGPORT", p.to_string());
            }
            c.env("PGUSER", &user);
            let maint = admin.path().trim_start_matches('/');
            let maint = if maint.is_empty() { "postgres" } else { maint };
            c.env("PGDATABASE", database.unwrap_or(maint));
            c.env("PGOPTIONS", "-c client_min_messages=warning");
            c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
        }
    }
    c
}

fn run_sql(mut c: std::process::Command, sql: &str) -> SqlOut {
    use std::io::Write;
    use std::process::Stdio;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", c.get_program()));
    let mut stdin = child.stdin.take().unwrap();
    let sql = sql.to_string();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(sql.as_bytes());
    });
    let o = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    SqlOut {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

impl TestDb {
    /// Creates a uniquely named database `ssnap_<tag>_<random>` on the engine's test server.
    /// When the server (or its client) is not there: under `CI=true` the test fails; otherwise
    /// this prints why and returns None, and the test returns.
    pub fn create(engine: Engine, tag: &str) -> Option<TestDb> {
        let admin = engine.admin_url();
        let why = if !which(engine.client()) {
            Some(format!("{} is not installed", engine.client()))
        } else {
            let probe = run_sql(client_cmd(engine, &admin, None), "SELECT 1;");
            (!probe.ok).then(|| probe.stderr.trim().to_string())
        };
        if let Some(why) = why {
            let var = match engine {
                Engine::Mysql => "SITESNAP_TEST_MYSQL_URL",
                Engine::Postgres => "SITESNAP_TEST_PG_URL",
            };
            let msg = format!(
                "{engine:?} test server {} unreachable: {why} (set {var} to point at one)",
                redact_url(&admin)
            );
            if ci() {
                panic!("{msg}");
            }
            eprintln!("SKIPPED (no server, CI is not true): {msg}");
            return None;
        }
        let name = format!("ssnap_{tag}_{}", hex::encode(noise_seed_bytes()));
        let db = TestDb {
            engine,
            name,
            admin,
            users: Default::default(),
        };
        db.admin_sql(&format!("CREATE DATABASE {};", db.ident(&db.name)));
        Some(db)
    }

    pub fn ident(&self, s: &str) -> String {
        match self.engine {
            Engine::Mysql => format!("`{}`", s.replace('`', "``")),
            Engine::Postgres => format!("\"{}\"", s.replace('"', "\"\"")),
        }
    }

    /// The URL sitesnap gets for this database (the admin credentials).
    pub fn url(&self) -> String {
        let mut u = self.admin.clone();
        u.set_path(&format!("/{}", self.name));
        u.to_string()
    }

    /// The URL for this database with other credentials, the password percent-encoded
    /// (every byte but ASCII letters and digits).
    pub fn url_as(&self, user: &str, password: &str) -> String {
        let mut u = self.admin.clone();
        u.set_path(&format!("/{}", self.name));
        u.set_username(user).unwrap();
        let enc = pct(password);
        u.set_password(Some(&enc)).unwrap();
        let s = u.to_string();
        assert!(s.contains(&enc), "URL keeps the encoding: {s}");
        s
    }

    /// The client command the harness uses on this database.
    pub fn client(&self) -> std::process::Command {
        client_cmd(self.engine, &self.admin, Some(&self.name))
    }

    /// Runs SQL in this database; panics with the client's message if it fails.
    pub fn sql(&self, sql: &str) -> String {
        let o = self.try_sql(sql);
        assert!(o.ok, "SQL failed: {}\n{sql}", o.stderr);
        o.stdout
    }

    /// Runs SQL in this database as another user; panics if it fails.
    pub fn sql_as(&self, user: &str, password: &str, sql: &str) -> String {
        let mut admin = self.admin.clone();
        admin.set_username(user).unwrap();
        admin.set_password(Some(&pct(password))).unwrap();
        let o = run_sql(client_cmd(self.engine, &admin, Some(&self.name)), sql);
        assert!(o.ok, "SQL as {user} failed: {}\n{sql}", o.stderr);
        o.stdout
    }

    pub fn try_sql(&self, sql: &str) -> SqlOut {
        run_sql(self.client(), sql)
    }

    /// Runs SQL outside this database (MariaDB: no database; PostgreSQL: the maintenance one).
    pub fn admin_sql(&self, sql: &str) -> String {
        let o = run_sql(client_cmd(self.engine, &self.admin, None), sql);
        assert!(o.ok, "admin SQL failed: {}\n{sql}", o.stderr);
        o.stdout
    }

    /// Whether the database exists on the server.
    pub fn exists(&self) -> bool {
        let q = match self.engine {
            Engine::Mysql => format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}';",
                self.name
            ),
            Engine::Postgres => format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{}';",
                self.name
            ),
        };
        self.admin_sql(&q).trim() == "1"
    }

    /// Drops the database (connections first, for PostgreSQL).
    pub fn drop_database(&self) {
        let q = match self.engine {
            Engine::Mysql => format!("DROP DATABASE IF EXISTS {};", self.ident(&self.name)),
            Engine::Postgres => format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE);",
                self.ident(&self.name)
            ),
        };
        self.admin_sql(&q);
    }

    /// Creates a user/role with `password` and every right on this database (dropped at the
    /// end of the test).
    pub fn create_user(&self, user: &str, password: &str) {
        let lit = |s: &str| match self.engine {
            Engine::Mysql => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
            Engine::Postgres => format!("'{}'", s.replace('\'', "''")),
        };
        match self.engine {
            Engine::Mysql => {
                for host in ["localhost", "%"] {
                    self.admin_sql(&format!(
                        "CREATE USER '{user}'@'{host}' IDENTIFIED BY {pw};
                         GRANT ALL ON {db}.* TO '{user}'@'{host}';",
                        pw = lit(password),
                        db = self.ident(&self.name)
                    ));
                }
            }
            Engine::Postgres => {
                self.admin_sql(&format!(
                    "CREATE ROLE {u} LOGIN PASSWORD {pw};
                     ALTER DATABASE {db} OWNER TO {u};",
                    u = self.ident(user),
                    pw = lit(password),
                    db = self.ident(&self.name)
                ));
            }
        }
        self.users.borrow_mut().push(user.to_string());
    }

    /// Table names, sorted.
    pub fn tables(&self) -> Vec<String> {
        let q = match self.engine {
            Engine::Mysql => {
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME;"
            }
            Engine::Postgres => {
                "SELECT tablename FROM pg_tables WHERE schemaname NOT IN \
                 ('pg_catalog', 'information_schema') ORDER BY tablename;"
            }
        };
        self.sql(q).lines().map(String::from).collect()
    }

    /// Every row of `table`, ordered, one string per row (binary as hex, NULL distinct from
    /// any string), plus an engine checksum (CHECKSUM TABLE / md5 of the ordered rows).
    pub fn table_digest(&self, table: &str, order_by: &str) -> (String, Vec<String>) {
        // `schema.table` is quoted part by part.
        let t = table
            .split('.')
            .map(|p| self.ident(p))
            .collect::<Vec<_>>()
            .join(".");
        match self.engine {
            Engine::Mysql => {
                let sum = self.sql(&format!("CHECKSUM TABLE {t};"));
                let rows = self.sql(&format!("SELECT * FROM {t} ORDER BY {order_by};"));
                (sum, rows.lines().map(String::from).collect())
            }
            Engine::Postgres => {
                let sum = self.sql(&format!(
                    "SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY {order_by})), '-') FROM {t} x;"
                ));
                let rows = self.sql(&format!("SELECT x::text FROM {t} x ORDER BY {order_by};"));
                (sum, rows.lines().map(String::from).collect())
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut sql = match self.engine {
            Engine::Mysql => format!("DROP DATABASE IF EXISTS {};", self.ident(&self.name)),
            Engine::Postgres => format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE);",
                self.ident(&self.name)
            ),
        };
        for u in self.users.borrow().iter() {
            match self.engine {
                Engine::Mysql => {
                    sql.push_str(&format!(
                        "DROP USER IF EXISTS '{u}'@'localhost'; DROP USER IF EXISTS '{u}'@'%';"
                    ));
                }
                Engine::Postgres => {
                    sql.push_str(&format!("DROP ROLE IF EXISTS {};", self.ident(u)))
                }
            }
        }
        let o = run_sql(client_cmd(self.engine, &self.admin, None), &sql);
        if !o.ok {
            eprintln!(
                "warning: could not drop test database {}: {}",
                self.name, o.stderr
            );
        }
    }
}

fn redact_url(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

fn noise_seed_bytes() -> [u8; 6] {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("random");
    b
}

/// A registered site (platform with a few files, site folder, no bindings) whose database is
/// `db_url`. Returns the platform root.
pub fn db_site(w: &World, uri: &str, db_url: &str) -> PathBuf {
    let p = w.path(&format!("platforms/{uri}"));
    make_platform(&p, 10, uri);
    fs::create_dir_all(p.join("sites").join(uri).join("files")).unwrap();
    fs::write(p.join("sites").join(uri).join("settings.php"), "<?php\n").unwrap();
    w.run(&[
        "site",
        "add",
        uri,
        "--platform",
        &p.to_string_lossy(),
        "--db",
        db_url,
    ])
    .ok();
    p
}

/// Restores a snapshot's database dump into `db_url` through the library (open the
/// repository, resolve the snapshot, stream its dump blob into `Database::load`).
pub fn restore_db(w: &World, snapshot_id: &str, db_url: &str) -> sitesnap::Result<()> {
    let repo = sitesnap::repo::Repo::open(&w.repo)?;
    let snap = repo.cat.resolve_snapshot(snapshot_id)?;
    let dump = snap.db_dump.expect("snapshot has a database dump");
    let mut r = sitesnap::capture::blob_reader(&repo, &dump)?;
    let db = sitesnap::db::Database::parse(db_url)?;
    db.load(&mut r)
}

/// Percent-encodes every byte but ASCII letters and digits.
pub fn pct(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What `watch_procs` saw.
#[derive(Debug, Default)]
pub struct ProcReport {
    /// Command lines (of any process) that held one of the needles.
    pub argv_hits: Vec<String>,
    /// Command lines of processes named like one of the tools.
    pub tools_seen: Vec<String>,
    /// Tool processes whose environment held a needle (their command line).
    pub env_hits: Vec<String>,
    /// `--defaults-extra-file` paths seen on tool command lines: the tool, the path and its
    /// mode when seen.
    pub option_files: Vec<(String, PathBuf, Option<u32>)>,
}

/// Watches every process's command line until stopped, looking for `needles`; and the tool
/// processes (named like one of `tools`) started under the world `w` (their environment holds
/// its `SITESNAP_REPO`, inherited from sitesnap), recording their command line, whether their
/// environment holds a needle, and their option files.
pub struct ProcWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<ProcReport>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

pub fn watch_procs(w: &World, needles: Vec<String>, tools: &'static [&'static str]) -> ProcWatch {
    use std::sync::atomic::Ordering;
    let marker = format!("SITESNAP_REPO={}", w.repo.display()).into_bytes();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut rep = ProcReport::default();
        let mut seen_pids = std::collections::HashSet::new();
        while !st.load(Ordering::Relaxed) {
            let Ok(rd) = fs::read_dir("/proc") else { break };
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
                    continue;
                };
                if cmd.is_empty() {
                    continue;
                }
                let shown = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if needles.iter().any(|n| contains(&cmd, n.as_bytes())) {
                    rep.argv_hits.push(shown.clone());
                }
                let argv0 = cmd.split(|b| *b == 0).next().unwrap_or(b"");
                let base =
                    Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(argv0))
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                if !tools.contains(&base.as_str()) || seen_pids.contains(pid) {
                    continue;
                }
                let Ok(env) = fs::read(e.path().join("environ")) else {
                    continue;
                };
                if !env.split(|b| *b == 0).any(|v| v == marker.as_slice()) {
                    continue; // another test's process
                }
                seen_pids.insert(pid.to_string());
                rep.tools_seen.push(shown.clone());
                if needles.iter().any(|n| contains(&env, n.as_bytes())) {
                    rep.env_hits.push(shown.clone());
                }
                for a in cmd.split(|b| *b == 0) {
                    if let Some(p) = a.strip_prefix(b"--defaults-extra-file=") {
                        let p = PathBuf::from(String::from_utf8_lossy(p).into_owned());
                        let mode = fs::metadata(&p)
                            .ok()
                            .map(|m| m.permissions().mode() & 0o7777);
                        rep.option_files.push((base.clone(), p, mode));
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        rep
    });
    ProcWatch { stop, handle }
}

impl ProcWatch {
    pub fn finish(self) -> ProcReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("watcher")
    }
}

/// Runs the real binary in the background (so its children can be watched) and waits.
pub fn run_watched(
    w: &World,
    args: &[&str],
    needles: Vec<String>,
    tools: &'static [&'static str],
) -> (Run, ProcReport) {
    let watch = watch_procs(w, needles, tools);
    // Give the watcher one pass before the child starts.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r = w.run(args);
    (r, watch.finish())
}
