//! Content hashes: SHA-256 (the `sha2` crate, which uses the CPU's SHA instructions) of a
//! chunk's plain bytes names the chunk everywhere: in packs, the index, trees and blobs.

use sha2::{Digest, Sha256};
use std::fmt;

/// A 32-byte SHA-256 content hash.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash of `data`.
    pub fn of(data: &[u8]) -> Hash {
        Hash(Sha256::digest(data).into())
    }

    /// Hash of a list of hashes (a blob id).
    pub fn of_list(list: &[Hash]) -> Hash {
        let mut h = Sha256::new();
        for x in list {
            h.update(x.0);
        }
        Hash(h.finalize().into())
    }

    /// The full hex form (64 digits).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// First 8 hex digits, for messages.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}
