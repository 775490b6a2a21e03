//! Unit tests of the row-aligned dump chunker.

use super::*;
use crate::hash::Hash;
use crate::store::DUMP_ROW_CHUNKS;
use std::collections::HashSet;

/// One dump row like mariadb-dump writes it (one row per line inside an extended INSERT).
fn row(id: u64, edited: bool) -> String {
    let h = Hash::of(&id.to_le_bytes()).to_string();
    format!(
        "({id},'Article {id} about {}{}','Lorem ipsum {} dolor sit amet',0x{},{}),\n",
        &h[..6],
        if edited { " (edited)" } else { "" },
        &h[6..46],
        &h[46..62],
        1_600_000_000 + id
    )
}

fn dump(rows: std::ops::Range<u64>, edited: &[u64]) -> Vec<u8> {
    let mut s = String::from("-- header\nINSERT INTO `big` VALUES ");
    for id in rows {
        s.push_str(&row(id, edited.contains(&id)));
    }
    s.push_str("(0,'','',NULL,0);\nUNLOCK TABLES;\n");
    s.into_bytes()
}

fn chunks(data: &[u8]) -> Vec<&[u8]> {
    cut_rows(data, DUMP_ROW_CHUNKS)
        .map(|(o, l)| &data[o..o + l])
        .collect()
}

fn ids(data: &[u8]) -> HashSet<Hash> {
    chunks(data).into_iter().map(Hash::of).collect()
}

/// Is `end` (a chunk's length from `start`) just past a row's end?
fn at_row_end(data: &[u8], end: usize) -> bool {
    end == data.len() || data[end - 1] == b'\n' || data[end - 2..=end] == *b"),("
}

/// A reader that hands out a few bytes at a time (pipes do), from a buffer.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Pseudo-random bytes (xorshift), `n` of them, with `skip` bytes replaced.
struct Noise {
    x: u64,
    left: u64,
    skip: &'static [u8],
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for b in &mut buf[..n] {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            let v = (self.x >> 24) as u8;
            *b = if self.skip.contains(&v) { b'x' } else { v };
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn cuts_fall_only_at_row_ends_and_cover_the_dump() {
    let d = dump(1..20_000, &[]);
    let cs = chunks(&d);
    assert_eq!(cs.iter().map(|c| c.len()).sum::<usize>(), d.len());
    let mut end = 0;
    for c in &cs {
        end += c.len();
        assert!(at_row_end(&d, end), "cut at {end} is inside a row");
        assert!(c.len() <= DUMP_ROW_CHUNKS.max, "chunk of {} bytes", c.len());
    }
    // About `avg` bytes a chunk, not one row (rows here are about 140 bytes).
    let avg = d.len() / cs.len();
    assert!(
        avg > DUMP_ROW_CHUNKS.min && avg < 3 * DUMP_ROW_CHUNKS.avg,
        "average {avg}"
    );
}

#[test]
fn mysql_one_line_extended_insert_is_cut_between_rows() {
    let d = String::from_utf8(dump(1..5_000, &[]))
        .unwrap()
        .replace("),\n(", "),(")
        .into_bytes();
    assert_eq!(d.iter().filter(|b| **b == b'\n').count(), 3);
    let cs = chunks(&d);
    assert!(cs.len() > 100, "{} chunks", cs.len());
    let mut end = 0;
    for c in &cs[..cs.len() - 1] {
        end += c.len();
        assert!(at_row_end(&d, end), "cut at {end} is inside a row");
        assert!(c.len() <= DUMP_ROW_CHUNKS.max);
    }
}

#[test]
fn identical_row_runs_give_identical_chunks() {
    // The same rows after a different start: once the cuts meet, every chunk is shared.
    let a = dump(1..10_000, &[]);
    let mut b = b"-- another dump tool's header, longer than the first\n".to_vec();
    b.extend_from_slice(&dump(1..10_000, &[]));
    let (ca, cb) = (ids(&a), ids(&b));
    let fresh = cb.difference(&ca).count();
    assert!(fresh <= 3, "{fresh} of {} chunks differ", cb.len());
    // Dumped twice: the same chunks.
    assert_eq!(chunks(&a), chunks(&dump(1..10_000, &[])));
}

#[test]
fn a_changed_row_changes_only_its_own_chunks() {
    let a = dump(1..20_000, &[]);
    let before = ids(&a);
    for changed in [7_000u64, 12_345, 19_998] {
        let b = dump(1..20_000, &[changed]);
        let new: Vec<&[u8]> = chunks(&b)
            .into_iter()
            .filter(|c| !before.contains(&Hash::of(c)))
            .collect();
        assert!(
            !new.is_empty() && new.len() <= 3,
            "row {changed}: {} new chunks",
            new.len()
        );
        let bytes: usize = new.iter().map(|c| c.len()).sum();
        assert!(
            bytes <= 4 * DUMP_ROW_CHUNKS.max,
            "row {changed}: {bytes} new bytes"
        );
        let needle = row(changed, true);
        let joined: Vec<u8> = new.concat();
        assert!(
            joined.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the changed row is in the new chunks"
        );
    }
}

#[test]
fn streaming_cuts_as_the_buffer_does_whatever_the_reads() {
    let d = dump(1..8_000, &[3, 500, 7_000]);
    let whole: Vec<Vec<u8>> = chunks(&d).into_iter().map(<[u8]>::to_vec).collect();
    let streamed: Vec<Vec<u8>> = RowChunks::new(Trickle(&d, 0), DUMP_ROW_CHUNKS)
        .map(|c| c.unwrap())
        .collect();
    assert_eq!(streamed, whole);
    assert_eq!(RowChunks::new(&b""[..], DUMP_ROW_CHUNKS).count(), 0);
}

#[test]
fn no_row_end_in_100_mb_gives_bounded_content_defined_chunks() {
    let total = 100u64 << 20;
    let noise = || Noise {
        x: 0x1234_5678,
        left: total,
        skip: b"\n(",
    };
    let (mut n, mut sum, mut largest, mut forced) = (0u64, 0u64, 0usize, 0u64);
    let mut first = Vec::new();
    for c in RowChunks::new(noise(), DUMP_ROW_CHUNKS) {
        let c = c.unwrap();
        n += 1;
        sum += c.len() as u64;
        largest = largest.max(c.len());
        forced += u64::from(c.len() == hard_max(&DUMP_ROW_CHUNKS));
        if first.len() < 50 {
            first.push(Hash::of(&c));
        }
    }
    assert_eq!(sum, total);
    assert!(
        largest <= hard_max(&DUMP_ROW_CHUNKS),
        "chunk of {largest} bytes"
    );
    // Cut where the content says, hardly ever at the limit.
    assert!(n > total / hard_max(&DUMP_ROW_CHUNKS) as u64, "{n} chunks");
    assert!(forced * 100 < n, "{forced} of {n} chunks cut at the limit");
    // Content-defined: the same bytes behind a different start still meet the same cuts.
    let mut shifted = vec![b'x'; 1000];
    let mut head = vec![0u8; 1 << 20];
    noise().read_exact(&mut head).unwrap();
    shifted.extend_from_slice(&head);
    let later: HashSet<Hash> = chunks(&shifted).into_iter().map(Hash::of).collect();
    let shared = first.iter().filter(|h| later.contains(h)).count();
    assert!(shared >= 40, "{shared} of 50 chunks shared after a shift");
}

#[test]
fn binary_data_is_cut_into_bounded_chunks_that_cover_it() {
    let mut d = vec![0u8; 8 << 20];
    Noise {
        x: 99,
        left: d.len() as u64,
        skip: b"",
    }
    .read_exact(&mut d)
    .unwrap();
    let cs = chunks(&d);
    assert_eq!(cs.iter().map(|c| c.len()).sum::<usize>(), d.len());
    assert!(
        cs.iter()
            .all(|c| !c.is_empty() && c.len() <= hard_max(&DUMP_ROW_CHUNKS))
    );
    let streamed: Vec<Vec<u8>> = RowChunks::new(&d[..], DUMP_ROW_CHUNKS)
        .map(|c| c.unwrap())
        .collect();
    assert_eq!(streamed.len(), cs.len());
    assert!(streamed.iter().zip(&cs).all(|(s, c)| s == c));
}
