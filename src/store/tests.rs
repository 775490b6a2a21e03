//! Unit tests of the local backend and the pack writer.

use super::*;
use std::io::Write;

fn backend() -> (tempfile::TempDir, LocalBackend) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("tmp")).unwrap();
    let b = LocalBackend::new(d.path());
    (d, b)
}

fn name(c: char) -> ObjectName {
    ObjectName::pack(&c.to_string().repeat(64))
}

/// An upload is invisible until committed, then visible whole under its name; a discarded one
/// leaves nothing, not even its temporary file.
#[test]
fn put_is_atomic() {
    let (_d, b) = backend();
    let n = name('a');
    let mut up = b.create(ObjectKind::Pack).unwrap();
    up.write_all(b"first half ").unwrap();
    up.flush_all().unwrap();
    assert_eq!(b.size(&n).unwrap(), None);
    assert!(b.list(ObjectKind::Pack).unwrap().is_empty());
    assert_eq!(b.incomplete().unwrap().len(), 1);
    up.write_all(b"second half").unwrap();
    up.flush_all().unwrap();
    up.commit(&n).unwrap();
    assert_eq!(b.read(&n).unwrap(), b"first half second half");
    assert!(b.incomplete().unwrap().is_empty());

    let mut up = b.create(ObjectKind::Pack).unwrap();
    up.write_all(b"never").unwrap();
    up.discard();
    assert!(b.incomplete().unwrap().is_empty());
    assert_eq!(b.list(ObjectKind::Pack).unwrap().len(), 1);
}

/// Ranges read exactly the asked bytes; a range past the end is an error.
#[test]
fn read_range() {
    let (_d, b) = backend();
    let n = name('b');
    b.put(&n, b"0123456789").unwrap();
    assert_eq!(b.read_range(&n, 0, 3).unwrap(), b"012");
    assert_eq!(b.read_range(&n, 7, 3).unwrap(), b"789");
    assert_eq!(b.read_range(&n, 4, 0).unwrap(), b"");
    assert!(b.read_range(&n, 8, 3).is_err());
    assert!(b.read_range(&name('c'), 0, 1).is_err());
    assert_eq!(b.size(&n).unwrap(), Some(10));
}

/// Listing returns content-named objects with sizes, sorted, and ignores anything else.
#[test]
fn list() {
    let (d, b) = backend();
    b.put(&name('d'), b"dd").unwrap();
    b.put(&name('1'), b"1").unwrap();
    std::fs::write(d.path().join("dd").join("not-a-pack"), b"x").unwrap();
    std::fs::write(d.path().join("tmp").join("pack-half"), b"half").unwrap();
    let l = b.list(ObjectKind::Pack).unwrap();
    assert_eq!(
        l,
        vec![
            ObjectInfo {
                name: name('1'),
                size: 1
            },
            ObjectInfo {
                name: name('d'),
                size: 2
            }
        ]
    );
    let inc = b.incomplete().unwrap();
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].id.as_str(), inc[0].size), ("pack-half", 4));
    assert!(b.remove_incomplete("pack-half").unwrap());
    assert!(!b.remove_incomplete("pack-half").unwrap());
    assert!(b.remove_incomplete("../x").is_err());
}

/// Removing an object makes it vanish (also from open-file reuse); removing a missing one is
/// not an error.
#[test]
fn remove_missing_object() {
    let (_d, b) = backend();
    let n = name('e');
    b.put(&n, b"abc").unwrap();
    assert_eq!(b.read_range(&n, 0, 1).unwrap(), b"a");
    assert!(b.remove(&n).unwrap());
    assert_eq!(b.size(&n).unwrap(), None);
    assert!(b.read_range(&n, 0, 1).is_err());
    assert!(!b.remove(&n).unwrap());
}

/// A pack written by the roller reads back through its own header and the backend, plain and
/// sealed; small chunks share a frame, a large one has its own; a sealed pack does not read
/// with the plain codec nor with another key.
#[test]
fn written_pack_reads_back() {
    let key = std::sync::Arc::new(crate::crypto::MasterKey::generate().unwrap());
    for codec in [ChunkCodec::plain(), ChunkCodec::sealed(key)] {
        written_pack_reads_back_with(codec);
    }
}

fn written_pack_reads_back_with(codec: ChunkCodec) {
    let (_d, b) = backend();
    let b: std::sync::Arc<dyn Backend> = std::sync::Arc::new(b);
    let mut roller = PackRoller::new(b.clone(), codec.clone());
    let mut chunks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 1000 + i as usize]).collect();
    chunks.push((0..200_000u32).map(|i| (i % 251) as u8).collect());
    for c in &chunks {
        assert!(roller.add_chunk(codec.id(c), c).unwrap().is_none());
    }
    let sealed = roller.finish().unwrap();
    assert_eq!(sealed.len(), 1);
    let info = sealed.into_iter().next().unwrap().commit().unwrap();
    let n = ObjectName::pack(&info.name);
    let bytes = b.read(&n).unwrap();
    assert_eq!(bytes.len() as u64, info.size);
    assert_eq!(&bytes[..8], codec.pack_magic());
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        info.name
    );
    let read =
        |c: &ChunkCodec| pack::read_header_with("t", info.size, c, |o, l| b.read_range(&n, o, l));
    let header = read(&codec).unwrap();
    assert_eq!(header.format, PackFormat::V2);
    assert_eq!(header.entries, info.entries);
    let frames: std::collections::HashSet<u64> = header.entries.iter().map(|e| e.offset).collect();
    assert_eq!(
        frames.len(),
        2,
        "five small chunks in one frame, the large one alone"
    );
    let mut cache = FrameCache::default();
    for e in &header.entries {
        let c = chunks.iter().find(|c| codec.id(c) == e.hash).unwrap();
        let z = || b.read_range(&n, e.offset, e.clen as usize);
        assert_eq!(
            &cache
                .chunk(&codec, &info.name, header.format, e, z)
                .unwrap(),
            c
        );
    }
    if codec.is_sealed() {
        assert!(read(&ChunkCodec::plain()).is_err());
        let other = ChunkCodec::sealed(std::sync::Arc::new(
            crate::crypto::MasterKey::generate().unwrap(),
        ));
        assert!(read(&other).is_err());
    }
    assert!(
        PackRoller::new(b.clone(), codec)
            .finish()
            .unwrap()
            .is_empty()
    );
}
