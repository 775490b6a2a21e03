//! `sitesnap export`: a snapshot as a portable tar that system tar extracts to the same trees.
use crate::support::*;
use std::fs;
use std::process::Command;

fn extract(archive: &std::path::Path, flag: &str, into: &std::path::Path) {
    fs::create_dir_all(into).unwrap();
    let st = Command::new("tar")
        .arg(flag)
        .arg("-xpf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn export_extracts_to_the_snapshot_trees() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    let site = w.site("example.com", &p);
    let id = w.snapshot("example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rows = sqlite_rows(&site.db, "node");
    for (name, flag) in [
        ("snap.tar.zst", "--zstd"),
        ("snap.tar.gz", "-z"),
        ("snap.tar", "-a"),
    ] {
        let out = w.path(name);
        w.run(&["export", &id[..6], "-o", &out.to_string_lossy()])
            .ok();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let x = w.path(&format!("x-{name}"));
        extract(&out, flag, &x);
        assert_eq!(
            listing(&x.join("site")),
            listing_filtered(&site.dir, |r| !r.starts_with("site.sqlite"))
        );
        let plat = listing_filtered(&p, |rel| {
            let mut c = rel.components();
            match (c.next(), c.next()) {
                (Some(a), Some(b)) if a.as_os_str() == "sites" => {
                    let n = b.as_os_str();
                    n == "all" || n == "default" || n == "sites.php"
                }
                _ => true,
            }
        });
        assert_eq!(listing(&x.join("platform")), plat);
        assert_eq!(sqlite_rows(&x.join("database.sqlite"), "node"), rows);
        let vhost_in = x
            .join("bindings")
            .join(site.vhost.strip_prefix("/").unwrap());
        assert_eq!(fs::read(vhost_in).unwrap(), fs::read(&site.vhost).unwrap());
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(x.join("sitesnap-snapshot.json")).unwrap()).unwrap();
        assert_eq!(meta["id"], id);
    }
}

#[test]
fn export_refuses_bad_names_and_corrupt_data() {
    let w = World::new();
    let p = w.platform("platforms/p", 20);
    w.site("example.com", &p);
    let id = w.snapshot("example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = w
        .run(&["export", &id, "-o", &w.path("x.zip").to_string_lossy()])
        .fails(2);
    assert!(r.stderr.contains(".tar.zst"), "{}", r.stderr);
    // Damage every pack's data: the export fails, names the snapshot, and leaves no file.
    for e in walkdir::WalkDir::new(w.repo.join("data")).min_depth(2) {
        let e = e.unwrap();
        let in_tmp = e.path().parent().unwrap().file_name().unwrap() == "tmp";
        if e.file_type().is_file() && !in_tmp {
            let mut b = fs::read(e.path()).unwrap();
            for i in (16..b.len().saturating_sub(64)).step_by(97) {
                b[i] ^= 1;
            }
            fs::write(e.path(), b).unwrap();
        }
    }
    let out = w.path("broken.tar.zst");
    let r = w
        .run(&["export", &id, "-o", &out.to_string_lossy()])
        .fails(1);
    assert!(r.stderr.contains(&id), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!out.exists());
    let leftovers: Vec<_> = fs::read_dir(w.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("sitesnap-export"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
