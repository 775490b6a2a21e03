//! The plain encodings of the store's objects (before [`crate::repo::Repo::encode_object`]):
//! manifests, site objects and pins are UTF-8 JSON objects; blob lists are binary.

use crate::catalog::{SiteRecord, SnapshotKind, SnapshotRecord};
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::ChunkList;
use crate::store::list::MAX_LEVELS;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The repository format these objects belong to (the `format` field of each JSON object).
pub const FORMAT_VERSION: u32 = 2;

/// The first 8 bytes of a blob list.
pub const BLOB_LIST_MAGIC: &[u8; 8] = b"SSNBLST1";
/// The magic of an indirect blob list (its list chunks' ids).
pub const BLOB_LIST2_MAGIC: &[u8; 8] = b"SSNBLST2";
/// The magic of an indirect blob list of two or more levels of list chunks.
pub const BLOB_LIST3_MAGIC: &[u8; 8] = b"SSNBLST3";

fn hex_opt(h: &Option<Hash>) -> Option<String> {
    h.map(|h| h.to_hex())
}

fn hash_opt(s: &Option<String>) -> Result<Option<Hash>> {
    s.as_deref()
        .map(|s| {
            let mut a = [0u8; 32];
            hex::decode_to_slice(s, &mut a)
                .map_err(|_| Error::Corrupt(format!("bad blob id '{s}' in a manifest")))?;
            Ok(Hash(a))
        })
        .transpose()
}

fn time_str(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Error::Corrupt(format!("bad time '{s}' in a store object")))
}

fn check_format(format: u32, what: &str) -> Result<()> {
    if format != FORMAT_VERSION {
        return Err(Error::Invalid(format!(
            "{what} has format {format}; this sitesnap reads format {FORMAT_VERSION}"
        )));
    }
    Ok(())
}

/// A snapshot manifest: everything the catalogue's snapshot row holds, plus the host that took
/// it and the format version. Named by the snapshot id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_VERSION`].
    pub format: u32,
    /// The snapshot id (16 hex digits, also the object's name).
    pub id: String,
    /// The site's URI.
    pub site: String,
    /// The host that took it.
    pub host: String,
    /// How it was taken.
    pub kind: SnapshotKind,
    /// Its label.
    pub label: Option<String>,
    /// Pinned when taken (later changes are pin objects: a pin object is the truth).
    pub pinned: bool,
    /// When it was taken (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The platform's path.
    pub platform_path: String,
    /// Platform tree blob id (hex), if the platform was there.
    pub platform_tree: Option<String>,
    /// The site directory relative to the platform.
    pub site_dir: String,
    /// Site directory tree blob id.
    pub site_tree: Option<String>,
    /// Binding files tree blob id.
    pub bindings_tree: Option<String>,
    /// Database engine (`sqlite`, `mysql`, `postgres`).
    pub db_kind: Option<String>,
    /// Database URL, password redacted.
    pub db_url: Option<String>,
    /// Dump blob id.
    pub db_dump: Option<String>,
    /// Files captured.
    pub files: u64,
    /// Bytes of files and dump.
    pub bytes: u64,
    /// File bytes read.
    pub bytes_read: u64,
    /// Dump bytes.
    pub db_bytes: u64,
    /// Compressed bytes added.
    pub bytes_added: u64,
    /// Capture duration.
    pub duration_ms: u64,
    /// Note.
    pub note: Option<String>,
    /// The platform's web root at capture, relative to the platform (`""`: the platform root;
    /// absent: not recorded).
    #[serde(default)]
    pub web_root: Option<String>,
    /// The site's extra paths at capture, relative to the platform.
    #[serde(default)]
    pub extra_paths: Vec<String>,
    /// Extra paths tree blob id.
    #[serde(default)]
    pub extra_tree: Option<String>,
}

impl Manifest {
    /// The manifest of a snapshot row taken on `host`.
    pub fn of(s: &SnapshotRecord, host: &str) -> Manifest {
        Manifest {
            format: FORMAT_VERSION,
            id: s.id.clone(),
            site: s.site.clone(),
            host: host.to_string(),
            kind: s.kind,
            label: s.label.clone(),
            pinned: s.pinned,
            time: time_str(&s.time),
            platform_path: s.platform_path.to_string_lossy().into_owned(),
            platform_tree: hex_opt(&s.platform_tree),
            site_dir: s.site_dir.clone(),
            site_tree: hex_opt(&s.site_tree),
            bindings_tree: hex_opt(&s.bindings_tree),
            db_kind: s.db_kind.clone(),
            db_url: s.db_url.clone(),
            db_dump: hex_opt(&s.db_dump),
            files: s.files,
            bytes: s.bytes,
            bytes_read: s.bytes_read,
            db_bytes: s.db_bytes,
            bytes_added: s.bytes_added,
            duration_ms: s.duration_ms,
            note: s.note.clone(),
            web_root: s.web_root.clone(),
            extra_paths: s.extra_paths.clone(),
            extra_tree: hex_opt(&s.extra_tree),
        }
    }

    /// The snapshot row it describes (`pinned` as given: the pin object decides).
    pub fn record(&self, pinned: bool) -> Result<SnapshotRecord> {
        Ok(SnapshotRecord {
            id: self.id.clone(),
            site: self.site.clone(),
            kind: self.kind,
            label: self.label.clone(),
            pinned,
            time: parse_time(&self.time)?,
            platform_path: PathBuf::from(&self.platform_path),
            platform_tree: hash_opt(&self.platform_tree)?,
            site_dir: self.site_dir.clone(),
            site_tree: hash_opt(&self.site_tree)?,
            bindings_tree: hash_opt(&self.bindings_tree)?,
            db_kind: self.db_kind.clone(),
            db_url: self.db_url.clone(),
            db_dump: hash_opt(&self.db_dump)?,
            files: self.files,
            bytes: self.bytes,
            bytes_read: self.bytes_read,
            db_bytes: self.db_bytes,
            bytes_added: self.bytes_added,
            duration_ms: self.duration_ms,
            note: self.note.clone(),
            web_root: self.web_root.clone(),
            extra_paths: self.extra_paths.clone(),
            extra_tree: hash_opt(&self.extra_tree)?,
        })
    }

    /// The blob ids it names: platform, site, bindings trees (true) and the dump (false).
    pub fn blobs(&self) -> Result<Vec<(Hash, bool)>> {
        let mut out = Vec::new();
        for (h, tree) in [
            (&self.platform_tree, true),
            (&self.site_tree, true),
            (&self.bindings_tree, true),
            (&self.extra_tree, true),
            (&self.db_dump, false),
        ] {
            if let Some(h) = hash_opt(h)? {
                out.push((h, tree));
            }
        }
        Ok(out)
    }

    /// The plain bytes (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest serializes")
    }

    /// Parses the plain bytes.
    pub fn decode(b: &[u8]) -> Result<Manifest> {
        let m: Manifest =
            serde_json::from_slice(b).map_err(|e| Error::Corrupt(format!("bad manifest: {e}")))?;
        check_format(m.format, "a manifest")?;
        Ok(m)
    }
}

/// A version of a site registration. The newest version (highest `seq`) of a URI wins; older
/// ones are removed once the new one is durable.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteObject {
    /// Always [`FORMAT_VERSION`].
    pub format: u32,
    /// Version of this registration (1, 2, ...).
    pub seq: u64,
    /// When this version was written.
    pub time: String,
    /// The site's URI.
    pub uri: String,
    /// Its platform.
    pub platform: String,
    /// Its directory relative to the platform.
    pub site_dir: String,
    /// Binding files.
    pub bindings: Vec<String>,
    /// Database URL without its password.
    pub db_url: Option<String>,
    /// The registered URL had a password (not stored: `site set --db` after a repair).
    pub db_password: bool,
    /// Retention policy (JSON text).
    pub policy: Option<String>,
    /// Paths outside the site folder that belong to the site alone, relative to the platform.
    #[serde(default)]
    pub extra_paths: Vec<String>,
    /// The platform's web root, relative to the platform (`""`: the platform root).
    #[serde(default)]
    pub web_root: Option<String>,
    /// Structure-only table patterns, comma-separated (absent: the default list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure_tables: Option<String>,
}

impl SiteObject {
    /// Version `seq` of the registration `s`, at `now`.
    pub fn of(
        s: &SiteRecord,
        seq: u64,
        now: &DateTime<Utc>,
        web_root: Option<String>,
    ) -> SiteObject {
        let (db_url, db_password) = match s.db_url.as_deref() {
            Some(u) => {
                let (u, had) = password_removed(u);
                (Some(u), had)
            }
            None => (None, false),
        };
        SiteObject {
            format: FORMAT_VERSION,
            seq,
            time: time_str(now),
            uri: s.uri.clone(),
            platform: s.platform.to_string_lossy().into_owned(),
            site_dir: s.site_dir.clone(),
            bindings: s
                .bindings
                .iter()
                .map(|b| b.to_string_lossy().into_owned())
                .collect(),
            db_url,
            db_password,
            policy: s.policy.clone(),
            extra_paths: s.extra_paths.clone(),
            web_root,
            structure_tables: s
                .structure_tables
                .as_ref()
                .map(crate::db::StructureTables::to_list),
        }
    }

    /// The site row it describes (without the password, if there was one).
    pub fn record(&self) -> SiteRecord {
        SiteRecord {
            uri: self.uri.clone(),
            platform: PathBuf::from(&self.platform),
            site_dir: self.site_dir.clone(),
            db_url: self.db_url.clone(),
            bindings: self.bindings.iter().map(PathBuf::from).collect(),
            policy: self.policy.clone(),
            extra_paths: self.extra_paths.clone(),
            structure_tables: self.structure_tables.as_deref().map(|t| {
                crate::db::StructureTables::parse(t)
                    .unwrap_or_else(|_| crate::db::StructureTables::none())
            }),
        }
    }

    /// Does this object describe `s` (ignoring the version, the time and the password)?
    pub fn describes(&self, s: &SiteRecord) -> bool {
        let mut other = SiteObject::of(s, self.seq, &Utc::now(), self.web_root.clone());
        other.time = self.time.clone();
        *self == other
    }

    /// The plain bytes (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a site object serializes")
    }

    /// Parses the plain bytes.
    pub fn decode(b: &[u8]) -> Result<SiteObject> {
        let s: SiteObject = serde_json::from_slice(b)
            .map_err(|e| Error::Corrupt(format!("bad site object: {e}")))?;
        check_format(s.format, "a site object")?;
        Ok(s)
    }
}

/// A pin marker: snapshot `snapshot` is pinned. Named by the snapshot id; removed on unpin.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PinObject {
    /// Always [`FORMAT_VERSION`].
    pub format: u32,
    /// The pinned snapshot.
    pub snapshot: String,
    /// When it was pinned.
    pub time: String,
}

impl PinObject {
    /// A pin of `snapshot` at `now`.
    pub fn new(snapshot: &str, now: &DateTime<Utc>) -> PinObject {
        PinObject {
            format: FORMAT_VERSION,
            snapshot: snapshot.to_string(),
            time: time_str(now),
        }
    }

    /// The plain bytes (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a pin serializes")
    }

    /// Parses the plain bytes.
    pub fn decode(b: &[u8]) -> Result<PinObject> {
        let p: PinObject =
            serde_json::from_slice(b).map_err(|e| Error::Corrupt(format!("bad pin: {e}")))?;
        check_format(p.format, "a pin")?;
        Ok(p)
    }
}

/// The plain bytes of a blob list. A direct list: `SSNBLST1`, plain size (u64 LE), chunk
/// count (u64 LE), then the 32-byte chunk hashes in order. An indirect one of one level:
/// `SSNBLST2`, plain size, chunk count, then the 32-byte hashes of its list chunks in order.
/// Of more levels: `SSNBLST3`, plain size, chunk count, levels (u64 LE), then the hashes of
/// its top-level list chunks.
pub fn encode_blob_list(list: &ChunkList, size: u64) -> Vec<u8> {
    let ids = list.stored();
    let mut v = Vec::with_capacity(32 + 32 * ids.len());
    v.extend_from_slice(match list.levels() {
        0 => BLOB_LIST_MAGIC,
        1 => BLOB_LIST2_MAGIC,
        _ => BLOB_LIST3_MAGIC,
    });
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&list.count().to_le_bytes());
    if list.levels() > 1 {
        v.extend_from_slice(&u64::from(list.levels()).to_le_bytes());
    }
    for h in ids {
        v.extend_from_slice(&h.0);
    }
    v
}

/// Parses a blob list: its chunk list (direct or indirect) and plain size.
pub fn decode_blob_list(b: &[u8]) -> Result<(ChunkList, u64)> {
    let bad = |why: &str| Error::Corrupt(format!("bad blob list: {why}"));
    let magic = b.get(..8).unwrap_or_default();
    let header = match magic {
        m if m == BLOB_LIST_MAGIC || m == BLOB_LIST2_MAGIC => 24,
        m if m == BLOB_LIST3_MAGIC => 32,
        _ => return Err(bad("no SSNBLST1, 2 or 3 header")),
    };
    if b.len() < header {
        return Err(bad("its header is cut short"));
    }
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let (size, n) = (u64_at(8), u64_at(16));
    let levels = if header == 32 { u64_at(24) } else { 1 };
    let rest = &b[header..];
    let ids: Vec<Hash> = rest
        .chunks_exact(32)
        .map(|c| Hash(c.try_into().expect("32 bytes")))
        .collect();
    if magic == BLOB_LIST_MAGIC {
        if rest.len() as u64 != n.saturating_mul(32) {
            return Err(bad("its length disagrees with its chunk count"));
        }
        return Ok((ChunkList::Direct(ids), size));
    }
    if !rest.len().is_multiple_of(32) || ids.is_empty() || n < ids.len() as u64 {
        return Err(bad("its length disagrees with its chunk count"));
    }
    if !(1..=u64::from(MAX_LEVELS)).contains(&levels) || (header == 32 && levels < 2) {
        return Err(bad(&format!("{levels} levels of list chunks")));
    }
    Ok((
        ChunkList::Indirect {
            count: n,
            levels: levels as u32,
            lists: ids,
        },
        size,
    ))
}

/// What version `seq` of `uri`'s site object is named by:
/// `"sitesnap-site\0" || uri || "\0" || seq (u64 LE)`.
pub fn site_object_name_input(uri: &str, seq: u64) -> Vec<u8> {
    let mut v = b"sitesnap-site\0".to_vec();
    v.extend_from_slice(uri.as_bytes());
    v.push(0);
    v.extend_from_slice(&seq.to_le_bytes());
    v
}

/// The name of version `seq` of `uri`'s site object in an unencrypted repository: hex SHA-256
/// of [`site_object_name_input`] (an encrypted one uses `Repo::keyed_name` of it).
pub fn site_object_name(uri: &str, seq: u64) -> String {
    hex::encode(Sha256::digest(site_object_name_input(uri, seq)))
}

/// A database URL without its password, and whether it had one.
pub fn password_removed(url: &str) -> (String, bool) {
    if url.starts_with("sqlite:") {
        return (url.to_string(), false);
    }
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            (u.to_string(), true)
        }
        Ok(_) => (url.to_string(), false),
        // Not a URL we can take apart: keep nothing that might be a secret.
        Err(_) => (crate::db::redact(url), url.contains('@')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_list_round_trips_and_refuses_bad_lengths() {
        let cs = ChunkList::Direct(vec![Hash::of(b"a"), Hash::of(b"b")]);
        let b = encode_blob_list(&cs, 77);
        assert_eq!(b.len(), 24 + 64);
        assert_eq!(&b[..8], b"SSNBLST1");
        assert_eq!(decode_blob_list(&b).unwrap(), (cs, 77));
        assert!(decode_blob_list(&b[..b.len() - 1]).is_err());
        assert!(decode_blob_list(b"SSNBLST2xxxxxxxxxxxxxxxx").is_err());
        assert!(decode_blob_list(b"SSNBLST3xxxxxxxxxxxxxxxx").is_err());
    }

    #[test]
    fn indirect_blob_list_round_trips() {
        let lists = vec![Hash::of(b"l1"), Hash::of(b"l2"), Hash::of(b"l3")];
        let l = ChunkList::Indirect {
            count: 5000,
            levels: 1,
            lists: lists.clone(),
        };
        let b = encode_blob_list(&l, 1 << 33);
        assert_eq!(&b[..8], b"SSNBLST2");
        assert_eq!(b.len(), 24 + 3 * 32);
        assert_eq!(decode_blob_list(&b).unwrap(), (l, 1 << 33));
        assert!(decode_blob_list(&b[..b.len() - 1]).is_err());
        // More list chunks than ids: corrupt.
        let mut short = b.clone();
        short[16..24].copy_from_slice(&2u64.to_le_bytes());
        assert!(decode_blob_list(&short).is_err());
        // Two levels: SSNBLST3 with the level count after the chunk count.
        let l = ChunkList::Indirect {
            count: 5000,
            levels: 2,
            lists,
        };
        let b = encode_blob_list(&l, 9);
        assert_eq!(&b[..8], b"SSNBLST3");
        assert_eq!(b.len(), 32 + 3 * 32);
        assert_eq!(b[24..32], 2u64.to_le_bytes());
        assert_eq!(decode_blob_list(&b).unwrap(), (l, 9));
        for bad_levels in [0u64, 1, 17] {
            let mut w = b.clone();
            w[24..32].copy_from_slice(&bad_levels.to_le_bytes());
            assert!(decode_blob_list(&w).is_err(), "{bad_levels} levels");
        }
    }

    #[test]
    fn passwords_are_removed_from_server_urls() {
        assert_eq!(
            password_removed("mysql://u:secret@127.0.0.1:3306/db"),
            ("mysql://u@127.0.0.1:3306/db".to_string(), true)
        );
        assert_eq!(
            password_removed("postgres://u@h/db"),
            ("postgres://u@h/db".to_string(), false)
        );
        assert_eq!(
            password_removed("sqlite:///a/b.sqlite"),
            ("sqlite:///a/b.sqlite".to_string(), false)
        );
    }

    #[test]
    fn site_names_differ_by_uri_and_version() {
        assert_ne!(site_object_name("a", 1), site_object_name("a", 2));
        assert_ne!(site_object_name("a", 1), site_object_name("b", 1));
        assert_eq!(site_object_name("a", 1).len(), 64);
    }
}
