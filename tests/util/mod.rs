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
