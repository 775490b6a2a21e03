//! Building Drupal-like platforms and sites (with SQLite databases and binding files) and
//! decorating them with awkward names, modes, links and timestamps.

use super::world::Site;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

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

/// Builds a Drupal 8+ composer platform: `composer.json`, `vendor/`, a `private/` folder and
/// the web root `<web_root>/` with `core/`, `modules/contrib/`, `index.php` and
/// `sites/{all,default,sites.php}`.
pub fn make_composer_platform(root: &Path, web_root: &str) {
    let w = root.join(web_root);
    for d in [
        "vendor/symfony/console",
        "vendor/composer",
        "private",
        "config",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for d in [
        "core/lib/Drupal",
        "core/modules/node",
        "modules/contrib/token",
        "themes/contrib/olivero",
        "sites/all/modules",
        "sites/default",
    ] {
        fs::create_dir_all(w.join(d)).unwrap();
    }
    fs::write(
        root.join("composer.json"),
        "{\"name\": \"drupal/recommended-project\"}\n",
    )
    .unwrap();
    fs::write(root.join("composer.lock"), "{}\n").unwrap();
    fs::write(root.join("vendor/autoload.php"), "<?php // autoload\n").unwrap();
    fs::write(
        root.join("vendor/symfony/console/Application.php"),
        "<?php class A {}\n",
    )
    .unwrap();
    fs::write(w.join("index.php"), "<?php // front controller\n").unwrap();
    fs::write(w.join("core/lib/Drupal.php"), "<?php class Drupal {}\n").unwrap();
    fs::write(w.join("core/modules/node/node.module"), "<?php // node\n").unwrap();
    fs::write(
        w.join("modules/contrib/token/token.module"),
        "<?php // token\n",
    )
    .unwrap();
    fs::write(w.join("sites/sites.php"), "<?php\n$sites = [];\n").unwrap();
    fs::write(w.join("sites/default/default.settings.php"), "<?php\n").unwrap();
    fs::write(w.join("sites/all/modules/README.txt"), "shared\n").unwrap();
}

/// Adds a composer site: `<web_root>/sites/<uri>` with settings.php, uploaded files and an
/// SQLite database, a private folder `private/<uri>`, and a vhost and drush alias whose `root`
/// is the web root (as Aegir writes them for composer platforms).
pub fn make_composer_site(world: &Path, uri: &str, platform: &Path, web_root: &str) -> Site {
    let dir = platform.join(web_root).join("sites").join(uri);
    fs::create_dir_all(dir.join("files")).unwrap();
    fs::write(dir.join("settings.php"), format!("<?php\n// {uri} v1\n")).unwrap();
    for i in 0..5 {
        fs::write(
            dir.join("files").join(format!("upload{i}.bin")),
            noise(i as u64 + uri.len() as u64, 5_000 + i * 100),
        )
        .unwrap();
    }
    let private = platform.join("private").join(uri);
    fs::create_dir_all(private.join("exports")).unwrap();
    fs::write(private.join("secret.txt"), format!("{uri} secret v1\n")).unwrap();
    fs::write(private.join("exports/report.csv"), "a,b\n1,2\n").unwrap();
    let db = dir.join("site.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("CREATE TABLE node (nid INTEGER PRIMARY KEY, title TEXT);")
        .unwrap();
    c.execute("INSERT INTO node (title) VALUES (?1)", [uri])
        .unwrap();
    drop(c);
    let conf = world.join("config");
    fs::create_dir_all(conf.join("vhost.d")).unwrap();
    fs::create_dir_all(conf.join("drush")).unwrap();
    let served = platform.join(web_root);
    let vhost = conf.join("vhost.d").join(uri);
    fs::write(
        &vhost,
        format!(
            "server {{\n  server_name {uri};\n  root {};\n}}\n",
            served.display()
        ),
    )
    .unwrap();
    let alias = conf.join("drush").join(format!("{uri}.alias.drushrc.php"));
    fs::write(
        &alias,
        format!(
            "<?php\n$aliases['{uri}'] = array('root' => '{}', 'site_path' => '{}', 'uri' => '{uri}');\n",
            served.display(),
            dir.display()
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
