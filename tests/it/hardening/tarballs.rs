//! A corpus of hostile Aegir backups, generated here with the `tar` crate (raw headers where
//! the builder would refuse a name): `database.sql` as a symlink or hard link to
//! `/etc/shadow`, `../` and absolute paths, device nodes and fifos, huge declared sizes, a
//! symlink followed by a file written through it, and a setuid file. Each import either
//! refuses in one line (nothing changed: catalogue, world, `data/tmp`) or sanitizes (the
//! setuid bit), and nothing is ever written outside the import's own folder (canary paths).
use super::*;
use std::fs;
use std::io::Write;

const URI: &str = "tar.example.org";

/// One member of a generated archive.
enum Member<'a> {
    /// A regular file (`mode`), its name written raw into the header.
    File(&'a str, &'a [u8], u32),
    /// A symlink to `target`.
    Symlink(&'a str, &'a str),
    /// A hard link to `target`.
    Hardlink(&'a str, &'a str),
    /// A character device, block device or fifo.
    Special(&'a str, tar::EntryType),
    /// A regular file whose header declares `size` bytes but holds only `data`.
    Lying(&'a str, u64, &'a [u8]),
}

/// A header with `name` written raw (no checks), `kind`, `size` and `mode`.
fn raw_header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let n = name.as_bytes();
    assert!(n.len() < 100, "{name}: too long for a plain header");
    h.as_gnu_mut().unwrap().name[..n.len()].copy_from_slice(n);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// Writes a gzipped archive of `members` as `<URI>-<stamp>.tar.gz` under `backups/`.
fn tarball(w: &World, stamp: &str, members: &[Member]) -> PathBuf {
    let out = w.path(&format!("backups/{URI}-{stamp}.tar.gz"));
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let gz =
        flate2::write::GzEncoder::new(fs::File::create(&out).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let settings = raw_header("./settings.php", tar::EntryType::Regular, 6, 0o644);
    let mut settings = settings;
    settings.set_cksum();
    b.append(&settings, &b"<?php\n"[..]).unwrap();
    for m in members {
        match m {
            Member::File(name, data, mode) => {
                let mut h = raw_header(name, tar::EntryType::Regular, data.len() as u64, *mode);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            Member::Symlink(name, target) | Member::Hardlink(name, target) => {
                let kind = match m {
                    Member::Symlink(..) => tar::EntryType::Symlink,
                    _ => tar::EntryType::Link,
                };
                let mut h = raw_header(name, kind, 0, 0o777);
                let t = target.as_bytes();
                h.as_gnu_mut().unwrap().linkname[..t.len()].copy_from_slice(t);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            Member::Special(name, kind) => {
                let mut h = raw_header(name, *kind, 0, 0o666);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            Member::Lying(name, size, data) => {
                let mut h = raw_header(name, tar::EntryType::Regular, *size, 0o644);
                h.set_cksum();
                let inner = b.get_mut();
                inner.write_all(h.as_bytes()).unwrap();
                inner.write_all(data).unwrap();
                inner.write_all(&[0u8; 512][data.len() % 512..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap().finish().unwrap();
    out
}

fn tmp_entries(w: &World) -> Vec<String> {
    fs::read_dir(w.repo.join("data/tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn hostile_tarballs_are_refused_or_sanitized_and_write_nothing_outside() {
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    w.site(URI, &p);
    w.snapshot(URI);
    // Canary paths: inside the world (so `world_print` sees them) but outside the import.
    let outside = w.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let abs = outside.join("abs.txt");
    let abs_s = abs.to_string_lossy().into_owned();
    let outside_s = outside.to_string_lossy().into_owned();
    let through = outside.join("through.txt");
    let secret = "root:$6$shadow-hash:19000::::::\n";
    fs::write(w.path("shadow"), secret).unwrap();
    let shadow = w.path("shadow").to_string_lossy().into_owned();
    let dotdot = format!("./files/../../../../../../../..{outside_s}/dotdot.txt");
    let refused: Vec<(&str, Vec<Member>, &[&str])> = vec![
        (
            "20240101.000001",
            vec![Member::Symlink("./database.sql", "/etc/shadow")],
            &["database.sql"],
        ),
        (
            "20240101.000002",
            vec![Member::Symlink("./database.sql", &shadow)],
            &["database.sql"],
        ),
        (
            "20240101.000003",
            vec![Member::Hardlink("./database.sql", "/etc/shadow")],
            &["database.sql", "hard link"],
        ),
        (
            "20240101.000004",
            vec![
                Member::File("./files/a.txt", b"a", 0o644),
                Member::Hardlink("./database.sql", "./files/a.txt"),
            ],
            &["database.sql", "hard link"],
        ),
        (
            "20240101.000005",
            vec![Member::File("../escaped.txt", b"evil", 0o644)],
            &["..", "escaped.txt"],
        ),
        (
            "20240101.000006",
            vec![Member::File(&dotdot, b"evil", 0o644)],
            &["dotdot.txt"],
        ),
        (
            "20240101.000007",
            vec![Member::File(&abs_s, b"evil", 0o644)],
            &["abs.txt", "absolute"],
        ),
        (
            "20240101.000008",
            vec![Member::Special("./files/null", tar::EntryType::Char)],
            &["files/null", "device"],
        ),
        (
            "20240101.000009",
            vec![Member::Special("./files/sda", tar::EntryType::Block)],
            &["files/sda", "device"],
        ),
        (
            "20240101.000010",
            vec![Member::Special("./files/pipe", tar::EntryType::Fifo)],
            &["files/pipe"],
        ),
        (
            "20240101.000011",
            vec![Member::Lying(
                "./files/huge.bin",
                1 << 40,
                b"only a few bytes",
            )],
            &["tar.example.org-20240101.000011.tar.gz"],
        ),
        (
            "20240101.000012",
            vec![
                Member::Symlink("./files", &outside_s),
                Member::File("./files/through.txt", b"evil", 0o644),
            ],
            &["files/through.txt"],
        ),
        (
            "20240101.000013",
            vec![
                Member::File("./database.sql", b"CREATE TABLE t (a INT);\n", 0o644),
                Member::Symlink("./database.sql", &shadow),
            ],
            &["database.sql"],
        ),
    ];
    let archives: Vec<(PathBuf, &[&str])> = refused
        .iter()
        .map(|(stamp, members, names)| (tarball(&w, stamp, members), *names))
        .collect();
    // Sanitized, not refused: a setuid root-owned file.
    let suid = tarball(
        &w,
        "20240101.000020",
        &[Member::File("./files/suid.sh", b"#!/bin/sh\nid\n", 0o4755)],
    );
    let before = (w.state(), world_print(&w));
    for (archive, names) in &archives {
        let r = w.run(&["import", &archive.to_string_lossy()]);
        let what = archive.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(r.code, 1, "{what}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{what}: {}", r.stderr);
        for n in *names {
            assert!(
                r.stderr.contains(n),
                "{what} should name '{n}': {}",
                r.stderr
            );
        }
        assert!(!r.stderr.contains("shadow-hash"), "{}", r.stderr);
        assert_eq!(w.state(), before.0, "{what}: catalogue unchanged");
        assert_same_world(&what, &world_print(&w), &before.1);
        assert_eq!(tmp_entries(&w), Vec::<String>::new(), "{what}");
        for canary in [&abs, &through, &outside.join("dotdot.txt")] {
            assert!(!canary.exists(), "{what}: {} was written", canary.display());
        }
        assert!(!w.path("escaped.txt").exists(), "{what}");
        assert!(!w.path("backups/escaped.txt").exists(), "{what}");
    }

    // The setuid file is imported without its setuid bit, said in the note.
    let r = w.run(&["import", &suid.to_string_lossy(), "--json"]).ok();
    let id = r.json()["id"].as_str().unwrap().to_string();
    let note: String = w
        .catalog()
        .query_row("SELECT note FROM snapshots WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(note.contains("files/suid.sh (4755 -> 755)"), "{note}");
    assert_same_world("setuid import", &world_print(&w), &before.1);
    assert_eq!(tmp_entries(&w), Vec::<String>::new());
}
