//! Key files: the master key sealed under a key derived from a passphrase by argon2id
//! (`argon2`), one JSON file per passphrase in the repository's `keys/` folder (0700, files
//! 0600). Any one key file opens the repository; adding a passphrase writes another key file
//! of the same master key, removing one deletes its file.

use super::{Binding, MASTER_KEY_LEN, MasterKey, NONCE_LEN, open_with, random, seal_with};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A passphrase, zeroized when dropped. Never printed.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(s: String) -> Passphrase {
        Passphrase(Zeroizing::new(s))
    }

    /// Reads a passphrase from the first line of a file (the line end is not part of it).
    pub fn from_file(path: &Path) -> Result<Passphrase> {
        let text = Zeroizing::new(fs::read_to_string(path).at(path)?);
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(Error::Invalid(format!(
                "password file {}: its first line is empty",
                path.display()
            )));
        }
        Ok(Passphrase::new(line.to_string()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Is it the same passphrase as `other`?
    pub fn matches(&self, other: &Passphrase) -> bool {
        self.bytes() == other.bytes()
    }
}

/// argon2id cost of new key files: 64 MiB of memory, 3 passes, 1 lane.
pub const KDF_M_COST_KIB: u32 = 64 * 1024;
/// argon2id passes of new key files.
pub const KDF_T_COST: u32 = 3;
/// argon2id lanes of new key files.
pub const KDF_P_COST: u32 = 1;
/// The largest memory cost a key file may ask for (a key file is read before it is trusted).
const KDF_M_COST_MAX_KIB: u32 = 4 * 1024 * 1024;
/// The largest number of passes a key file may ask for.
const KDF_T_COST_MAX: u32 = 64;

/// A key file's JSON (`docs/FORMAT.md`, "Key files").
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyFileJson {
    format: u32,
    id: String,
    created: String,
    host: String,
    kdf: String,
    argon2_version: u32,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    aead: String,
    nonce: String,
    sealed: String,
}

/// What `key list` shows of a key file.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Its id (the file's name).
    pub id: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The host that made it.
    pub host: String,
}

/// The key files of one repository (`<repo>/keys/`).
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

/// Keys derived in this process, by everything the derivation reads (a SHA-256 of salt,
/// parameters and passphrase): one command that opens the same key file twice (a restore
/// `--from` a remote into a fresh folder opens the remote's key file, then the local one made
/// from it) pays for argon2id once. Zeroized when the process ends.
static DERIVED: std::sync::Mutex<Vec<Derived>> = std::sync::Mutex::new(Vec::new());

/// A derived key by its derivation's id.
type Derived = ([u8; 32], Zeroizing<[u8; 32]>);

/// How many argon2id derivations this process ran (for tests).
static DERIVATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The cache key of a derivation.
fn derivation_id(pass: &Passphrase, salt: &[u8], m: u32, t: u32, p: u32) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [
        &(salt.len() as u64).to_le_bytes()[..],
        salt,
        &m.to_le_bytes(),
        &t.to_le_bytes(),
        &p.to_le_bytes(),
        pass.bytes(),
    ] {
        h.update(part);
    }
    h.finalize().into()
}

/// Derives the key that seals the master key in a key file (once per process for the same
/// inputs).
fn derive(pass: &Passphrase, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>> {
    let id = derivation_id(pass, salt, m, t, p);
    let cached = DERIVED
        .lock()
        .ok()
        .and_then(|c| c.iter().find(|(k, _)| *k == id).map(|(_, v)| v.clone()));
    if let Some(kek) = cached {
        return Ok(kek);
    }
    let kek = derive_now(pass, salt, m, t, p)?;
    if let Ok(mut c) = DERIVED.lock() {
        c.push((id, kek.clone()));
    }
    Ok(kek)
}

/// Runs argon2id.
fn derive_now(
    pass: &Passphrase,
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>> {
    DERIVATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| Error::Invalid(format!("key file: bad argon2 parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(pass.bytes(), salt, &mut *out)
        .map_err(|e| Error::Invalid(format!("key derivation failed: {e}")))?;
    Ok(out)
}

fn is_key_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl KeyStore {
    /// The key files under a repository's root.
    pub fn of_repo(root: &Path) -> KeyStore {
        KeyStore {
            dir: root.join("keys"),
        }
    }

    /// Does the repository have any key file (is it encrypted)?
    pub fn any(&self) -> Result<bool> {
        Ok(!self.ids()?.is_empty())
    }

    /// The ids of the key files, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut ids = Vec::new();
        for e in rd {
            let name = e.at(&self.dir)?.file_name().to_string_lossy().into_owned();
            if is_key_id(&name) {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The bytes of key file `id` (to copy it to a remote).
    pub fn raw(&self, id: &str) -> Result<Vec<u8>> {
        let p = self.dir.join(id);
        fs::read(&p).at(&p)
    }

    /// Writes key file `id` copied from a remote (mode 0600), after checking that it is a key
    /// file of this format with that id.
    pub fn put_raw(&self, id: &str, bytes: &[u8]) -> Result<()> {
        let k: KeyFileJson = serde_json::from_slice(bytes)
            .map_err(|e| Error::Corrupt(format!("key file {id} from the remote: {e}")))?;
        if !is_key_id(id) || k.id != id {
            return Err(Error::Corrupt(format!(
                "key file {id} from the remote names another id"
            )));
        }
        fsutil::create_private_dir(&self.dir)?;
        fsutil::write_atomic(&self.dir.join(id), bytes, 0o600)
    }

    fn read(&self, id: &str) -> Result<KeyFileJson> {
        let p = self.dir.join(id);
        let text = fs::read(&p).at(&p)?;
        let k: KeyFileJson = serde_json::from_slice(&text)
            .map_err(|e| Error::Corrupt(format!("key file {id}: {e}")))?;
        if k.format != 1 || k.kdf != "argon2id" || k.aead != "xchacha20poly1305" || k.id != id {
            return Err(Error::Corrupt(format!(
                "key file {id}: unknown format, KDF or cipher"
            )));
        }
        if k.m_cost_kib > KDF_M_COST_MAX_KIB || k.t_cost > KDF_T_COST_MAX || k.p_cost > 16 {
            return Err(Error::Corrupt(format!(
                "key file {id}: KDF costs beyond what sitesnap accepts"
            )));
        }
        Ok(k)
    }

    /// Writes a new key file sealing `master` under `pass` (made on `host`); returns its id.
    pub fn add(&self, master: &MasterKey, pass: &Passphrase, host: &str) -> Result<String> {
        fsutil::create_private_dir(&self.dir)?;
        let id = hex::encode(random::<8>()?);
        let salt: [u8; 16] = random()?;
        let (m, t, p) = (KDF_M_COST_KIB, KDF_T_COST, KDF_P_COST);
        let kek = derive(pass, &salt, m, t, p)?;
        let sealed = seal_with(&kek, &Binding::KeyFile(&id).bytes(), &master.to_bytes())?;
        let json = KeyFileJson {
            format: 1,
            id: id.clone(),
            created: crate::fsutil::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            host: host.to_string(),
            kdf: "argon2id".into(),
            argon2_version: 0x13,
            m_cost_kib: m,
            t_cost: t,
            p_cost: p,
            salt: hex::encode(salt),
            aead: "xchacha20poly1305".into(),
            nonce: hex::encode(&sealed[..NONCE_LEN]),
            sealed: hex::encode(&sealed[NONCE_LEN..]),
        };
        let bytes = serde_json::to_vec_pretty(&json).expect("key file serializes");
        fsutil::write_atomic(&self.dir.join(&id), &bytes, 0o600)?;
        Ok(id)
    }

    /// Tries one key file with `pass`: the master key if it opens, `None` if the passphrase is
    /// not this file's.
    fn try_open(&self, id: &str, pass: &Passphrase) -> Result<Option<MasterKey>> {
        let k = self.read(id)?;
        let bad = || Error::Corrupt(format!("key file {id}: bad hex"));
        let salt = hex::decode(&k.salt).map_err(|_| bad())?;
        let mut sealed = hex::decode(&k.nonce).map_err(|_| bad())?;
        if sealed.len() != NONCE_LEN {
            return Err(bad());
        }
        sealed.extend(hex::decode(&k.sealed).map_err(|_| bad())?);
        let kek = derive(pass, &salt, k.m_cost_kib, k.t_cost, k.p_cost)?;
        let Some(plain) = open_with(&kek, &Binding::KeyFile(id).bytes(), &sealed) else {
            return Ok(None);
        };
        let plain = Zeroizing::new(plain);
        if plain.len() != MASTER_KEY_LEN {
            return Err(Error::Corrupt(format!("key file {id}: bad key length")));
        }
        Ok(MasterKey::from_bytes(&plain))
    }

    /// Opens the master key with `pass`: tries every key file; returns the key and the id of
    /// the file that opened it. A wrong passphrase is one error line.
    pub fn unlock(&self, pass: &Passphrase, repo: &Path) -> Result<(MasterKey, String)> {
        let ids = self.ids()?;
        if ids.is_empty() {
            return Err(Error::Invalid(format!(
                "repository {} is encrypted but has no key file in {}",
                repo.display(),
                self.dir.display()
            )));
        }
        for id in ids {
            if let Some(k) = self.try_open(&id, pass)? {
                return Ok((k, id));
            }
        }
        Err(Error::Refused(format!(
            "wrong passphrase: no key file of repository {} opens with it",
            repo.display()
        )))
    }

    /// What `key list` shows of each key file.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        self.ids()?
            .into_iter()
            .map(|id| {
                let k = self.read(&id)?;
                Ok(KeyInfo {
                    id,
                    created: k.created,
                    host: k.host,
                })
            })
            .collect()
    }

    /// Deletes a key file (the caller checks it is not the last one nor the one in use).
    pub fn remove(&self, id: &str) -> Result<()> {
        if !is_key_id(id) || !self.ids()?.iter().any(|i| i == id) {
            return Err(Error::Invalid(format!("no key file with id '{id}'")));
        }
        let p = self.dir.join(id);
        fs::remove_file(&p).at(&p)?;
        fsutil::sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file opens with its passphrase only, and gives back the same master key.
    #[test]
    fn key_file_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let ks = KeyStore::of_repo(d.path());
        assert!(!ks.any().unwrap());
        let mk = MasterKey::generate().unwrap();
        let id = ks.add(&mk, &Passphrase::new("right".into()), "h").unwrap();
        assert_eq!(ks.ids().unwrap(), vec![id.clone()]);
        let (k, used) = ks
            .unlock(&Passphrase::new("right".into()), d.path())
            .unwrap();
        assert_eq!(used, id);
        assert_eq!(*k.to_bytes(), *mk.to_bytes());
        let e = ks
            .unlock(&Passphrase::new("wrong".into()), d.path())
            .unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(d.path().join("keys").join(&id))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    /// The same key file opened twice in one process derives its key once; another
    /// passphrase or another salt derives again, and a wrong passphrase is still refused.
    #[test]
    fn a_derivation_is_reused_only_for_the_same_inputs() {
        let (salt, other_salt) = ([7u8; 16], [8u8; 16]);
        let pass = || Passphrase::new("cache test passphrase".into());
        let runs = || DERIVATIONS.load(std::sync::atomic::Ordering::Relaxed);
        let a = derive(&pass(), &salt, 8, 1, 1).unwrap();
        let after_first = runs();
        let b = derive(&pass(), &salt, 8, 1, 1).unwrap();
        assert_eq!(*a, *b);
        assert_eq!(runs(), after_first, "the second derivation was not reused");
        let c = derive(&Passphrase::new("another".into()), &salt, 8, 1, 1).unwrap();
        let d = derive(&pass(), &other_salt, 8, 1, 1).unwrap();
        assert!(runs() >= after_first + 2, "other inputs derived again");
        assert_ne!(*a, *c);
        assert_ne!(*a, *d);
        assert_eq!(*derive_now(&pass(), &salt, 8, 1, 1).unwrap(), *a);
    }
}
