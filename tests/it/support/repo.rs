//! The repository on disk: catalogue state, stored bytes, pack files, modes.

use std::fs;
use std::path::{Path, PathBuf};

/// Everything in the catalogue a failed command must leave alone.
#[derive(Debug, PartialEq, Eq)]
pub struct CatalogState {
    pub counts: Vec<(String, i64)>,
    pub sites: Vec<String>,
    pub snapshot_ids: Vec<String>,
    /// The files cache: each folder's path and entries.
    pub files_cache: Vec<String>,
}

pub fn catalog_state(repo: &Path) -> CatalogState {
    let c = rusqlite::Connection::open(repo.join("catalog.sqlite")).unwrap();
    let counts = [
        "sites",
        "packs",
        "chunks",
        "blobs",
        "snapshots",
        "cache_dirs",
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
        files_cache: strings(
            "SELECT hex(path) || '|' || coalesce(hex(files), '') FROM cache_dirs ORDER BY path",
        ),
    }
}

/// Sum of the compressed sizes of the chunks in the catalogue.
pub fn stored_bytes(repo: &Path) -> i64 {
    let c = rusqlite::Connection::open(repo.join("catalog.sqlite")).unwrap();
    // Each frame once: small chunks share frames (format-2 packs).
    c.query_row(
        "SELECT coalesce(sum(clen), 0) FROM (SELECT DISTINCT pack_id, offset, clen FROM chunks)",
        [],
        |r| r.get(0),
    )
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

/// Files under the repository's `data/` (packs and temporary files).
pub fn data_files(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().display().to_string())
        .collect();
    v.sort();
    v
}

/// Total bytes of the files under `repo/data` (packs and leftovers).
pub fn data_size(repo: &Path) -> u64 {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Pack files under `repo/data/xx/`.
pub fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(repo.join("data"))
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.file_name().len() == 64)
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

/// Rewrites every pack of an unencrypted repository as a format-1 pack (`SSNPACK1`, one
/// chunk per zstd frame, 48-byte entries), as sitesnap wrote them before format 2: the fixture
/// of an old repository. The catalogue is not touched (rebuild it with `repair catalog`).
/// Returns how many packs it rewrote.
pub fn packs_to_format_1(repo: &Path) -> usize {
    use fs::Permissions;
    use sitesnap::store::{ChunkCodec, PACK_MAGIC, PackEntry, PackFormat, pack};
    use std::os::unix::fs::PermissionsExt;
    let codec = ChunkCodec::plain();
    let packs = pack_files(repo);
    for path in &packs {
        let bytes = fs::read(path).unwrap();
        let header = pack::read_header_with("fixture", bytes.len() as u64, &codec, |o, l| {
            Ok(bytes[o as usize..o as usize + l].to_vec())
        })
        .unwrap();
        let mut out = PACK_MAGIC.to_vec();
        let mut entries = Vec::new();
        for e in &header.entries {
            let stored = &bytes[e.offset as usize..(e.offset + e.clen as u64) as usize];
            let data = codec.decode_entry(header.format, e, stored).unwrap();
            let z = codec.encode(&e.hash, &data, 3).unwrap();
            entries.push(PackEntry {
                offset: out.len() as u64,
                clen: z.len() as u32,
                inner: 0,
                ..*e
            });
            out.extend_from_slice(&z);
        }
        out.extend(pack::encode_header(&codec, PackFormat::V1, &entries).unwrap());
        let name = super::trees::sha_hex(&out);
        let dir = repo.join("data").join(&name[..2]);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
        fs::remove_file(path).unwrap();
        let to = dir.join(&name);
        fs::write(&to, &out).unwrap();
        fs::set_permissions(&to, Permissions::from_mode(0o600)).unwrap();
    }
    packs.len()
}

/// Every pack's frames: for each pack file, (format, entries of its header).
pub fn pack_headers(repo: &Path) -> Vec<sitesnap::store::PackHeader> {
    let codec = sitesnap::store::ChunkCodec::plain();
    pack_files(repo)
        .iter()
        .map(|p| {
            let bytes = fs::read(p).unwrap();
            sitesnap::store::pack::read_header_with("t", bytes.len() as u64, &codec, |o, l| {
                Ok(bytes[o as usize..o as usize + l].to_vec())
            })
            .unwrap()
        })
        .collect()
}

/// Flips one bit of the byte at `at` in `path` (damage a stored file in place).
pub fn flip_bit(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x10;
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&b).unwrap();
}
