//! Encryption at rest, with maintained RustCrypto crates only: a repository's [`MasterKey`]
//! (an XChaCha20-Poly1305 key that seals data, and a separate HMAC-SHA-256 key that names
//! chunks) and the key files that wrap it under a passphrase (argon2id, [`keyfile`]). This
//! module is a leaf: it knows nothing of packs, objects or the catalogue; the store and the
//! repository call [`MasterKey::seal`], [`MasterKey::open`] and [`MasterKey::chunk_id`]. Key
//! material is zeroized when dropped. It never writes a key or passphrase anywhere but a
//! sealed key file.

pub mod keyfile;

use crate::error::{Error, Result};
use crate::hash::Hash;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

pub use keyfile::{KeyInfo, KeyStore, Passphrase};

/// Length of a random XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message has beyond its plain bytes: nonce + tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Length of the master key's encoding: encryption key (32) then MAC key (32).
pub const MASTER_KEY_LEN: usize = 64;

/// What a sealed message is bound to (the AEAD's associated data): a domain tag for the kind
/// of thing sealed, and the name or id that thing is known by, so sealed bytes cannot be moved
/// to another place or kind and still open.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// A chunk in a pack, bound to its chunk id.
    Chunk(&'a Hash),
    /// A pack's header (the chunk list at its end).
    PackHeader,
    /// A frame of a format-2 pack (one or more chunks; each is checked against its id).
    Frame,
    /// A store object of a kind (its folder name) under a name.
    Object(&'a str, &'a str),
    /// A secret column of the catalogue (such as a database URL) of one row.
    CatalogSecret(&'a str, &'a str),
    /// The master key inside a key file with this id.
    KeyFile(&'a str),
}

impl Binding<'_> {
    /// The associated-data bytes (`docs/FORMAT.md`, "Sealing").
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(96);
        let mut part = |p: &[u8]| {
            v.extend_from_slice(p);
            v.push(0);
        };
        match self {
            Binding::Chunk(h) => {
                part(b"sitesnap-chunk");
                v.extend_from_slice(&h.0);
            }
            Binding::PackHeader => part(b"sitesnap-pack-header"),
            Binding::Frame => part(b"sitesnap-frame"),
            Binding::Object(kind, name) => {
                part(b"sitesnap-object");
                part(kind.as_bytes());
                v.extend_from_slice(name.as_bytes());
            }
            Binding::CatalogSecret(column, row) => {
                part(b"sitesnap-catalog");
                part(column.as_bytes());
                v.extend_from_slice(row.as_bytes());
            }
            Binding::KeyFile(id) => {
                part(b"sitesnap-key");
                v.extend_from_slice(id.as_bytes());
            }
        }
        v
    }
}

/// A repository's master key: seals every chunk, pack header and object, and names chunks.
pub struct MasterKey {
    enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// `n` bytes from the operating system's random source.
pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Invalid(format!("the system random source failed: {e}")))?;
    Ok(b)
}

/// XChaCha20-Poly1305 sealing under `key`: `nonce (24) || ciphertext || tag (16)`.
pub(crate) fn seal_with(key: &[u8; 32], ad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let cipher = XChaCha20Poly1305::new_from_slice(key).expect("32-byte key");
    let nonce: [u8; NONCE_LEN] = random()?;
    let ct = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plain,
                aad: ad,
            },
        )
        .map_err(|_| Error::Invalid("encryption failed".into()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens what [`seal_with`] sealed; `None` if it was changed, moved or sealed by another key.
pub(crate) fn open_with(key: &[u8; 32], ad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let cipher = XChaCha20Poly1305::new_from_slice(key).expect("32-byte key");
    let nonce: [u8; NONCE_LEN] = sealed[..NONCE_LEN].try_into().expect("24");
    cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &sealed[NONCE_LEN..],
                aad: ad,
            },
        )
        .ok()
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Result<MasterKey> {
        Ok(MasterKey {
            enc: Zeroizing::new(random()?),
            mac: Zeroizing::new(random()?),
        })
    }

    /// The key from its 64-byte encoding (encryption key, then MAC key).
    pub fn from_bytes(b: &[u8]) -> Option<MasterKey> {
        if b.len() != MASTER_KEY_LEN {
            return None;
        }
        Some(MasterKey {
            enc: Zeroizing::new(b[..32].try_into().expect("32")),
            mac: Zeroizing::new(b[32..].try_into().expect("32")),
        })
    }

    /// The 64-byte encoding (zeroized when dropped).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(MASTER_KEY_LEN));
        v.extend_from_slice(&*self.enc);
        v.extend_from_slice(&*self.mac);
        v
    }

    /// Seals `plain`, bound to `binding`.
    pub fn seal(&self, binding: Binding<'_>, plain: &[u8]) -> Result<Vec<u8>> {
        seal_with(&self.enc, &binding.bytes(), plain)
    }

    /// Opens sealed bytes bound to `binding`; an error naming `what` if they do not open
    /// (changed, moved, or sealed by another repository's key).
    pub fn open(&self, binding: Binding<'_>, sealed: &[u8], what: &str) -> Result<Vec<u8>> {
        open_with(&self.enc, &binding.bytes(), sealed).ok_or_else(|| {
            Error::Corrupt(format!(
                "{what} does not decrypt (damaged, moved, or not of this repository)"
            ))
        })
    }

    /// A chunk's id in an encrypted repository: HMAC-SHA-256 of its plain bytes under the MAC
    /// key, so the store cannot be probed with guessed content.
    pub fn chunk_id(&self, data: &[u8]) -> Hash {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&*self.mac).expect("any key length");
        m.update(data);
        Hash(m.finalize().into_bytes().into())
    }

    /// A keyed name for a thing whose plain hash would reveal it (a site object's name).
    pub fn keyed_name(&self, data: &[u8]) -> String {
        self.chunk_id(data).to_hex()
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.mac.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sealed bytes open with the same key and binding only; a flipped byte is refused.
    #[test]
    fn seal_open_and_bindings() {
        let k = MasterKey::generate().unwrap();
        let h = Hash([7; 32]);
        let s = k.seal(Binding::Chunk(&h), b"hello").unwrap();
        assert_eq!(s.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(k.open(Binding::Chunk(&h), &s, "c").unwrap(), b"hello");
        assert!(k.open(Binding::Chunk(&Hash([8; 32])), &s, "c").is_err());
        assert!(k.open(Binding::Object("snapshots", "x"), &s, "c").is_err());
        let mut bad = s.clone();
        bad[30] ^= 1;
        assert!(k.open(Binding::Chunk(&h), &bad, "c").is_err());
        let other = MasterKey::generate().unwrap();
        assert!(other.open(Binding::Chunk(&h), &s, "c").is_err());
        // Two seals of the same bytes differ (random nonces).
        assert_ne!(s, k.seal(Binding::Chunk(&h), b"hello").unwrap());
    }

    /// Chunk ids are keyed: not SHA-256, and different per key; the key round-trips.
    #[test]
    fn chunk_ids_are_keyed() {
        let k = MasterKey::generate().unwrap();
        assert_ne!(k.chunk_id(b"x"), Hash::of(b"x"));
        assert_eq!(k.chunk_id(b"x"), k.chunk_id(b"x"));
        let k2 = MasterKey::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(k2.chunk_id(b"x"), k.chunk_id(b"x"));
        assert_ne!(
            MasterKey::generate().unwrap().chunk_id(b"x"),
            k.chunk_id(b"x")
        );
    }
}
