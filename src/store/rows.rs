//! Row-aligned content-defined chunking for database dumps. A dump is a sequence of rows: lines
//! (one-row `INSERT`s, PostgreSQL `COPY` data, SQLite `.dump` output, MariaDB's extended
//! `INSERT`s, which put one row per line) or the `),(` between the rows of an extended `INSERT`
//! that MySQL writes on one line. A chunk ends only at the end of a row, and whether it ends
//! there depends only on that row's last bytes and on the chunk being at least `min` long, so
//! identical runs of rows give identical chunks and a changed row changes only its own chunk
//! (and, when it decides a cut, the next one). A stretch of `max` bytes without a row end past
//! `min` (binary data, a huge row) falls back to byte-level content-defined cuts, and no chunk
//! is ever longer than `4 × max`. Streaming: memory is one buffer of `4 × max` plus a read's
//! worth, whatever the dump's size.

use super::chunk::ChunkParams;
use std::io::{self, Read};

/// Gear hash table: 256 fixed pseudo-random words (splitmix64 of 0..256). Fixed for ever: a
/// change would not break anything, but dumps cut with it would not dedup with older ones.
const GEAR: [u64; 256] = gear_table();

const fn gear_table() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut i = 0;
    let mut x: u64 = 0x5175_6e64_6974_5353; // any fixed seed
    while i < 256 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        t[i] = z ^ (z >> 31);
        i += 1;
    }
    t
}

/// Bytes of a row's end that decide whether a chunk ends after it.
const ROW_TAIL: usize = 64;

/// The largest chunk for `p`: the byte-level fallback stops there.
pub fn hard_max(p: &ChunkParams) -> usize {
    4 * p.max
}

/// The gear hash of the last [`ROW_TAIL`] bytes of `row`.
fn tail_hash(row: &[u8]) -> u64 {
    let tail = &row[row.len().saturating_sub(ROW_TAIL)..];
    tail.iter()
        .fold(0u64, |h, b| (h << 1).wrapping_add(GEAR[*b as usize]))
}

/// Does a chunk end after this row? The chance grows with the row's length (one in
/// `avg - min` per byte), so chunks average about `avg` bytes whatever the rows' size.
fn row_cuts(row: &[u8], p: &ChunkParams) -> bool {
    let per_byte = (1u64 << 32) / (p.avg - p.min).max(1) as u64;
    let threshold = (row.len() as u64).saturating_mul(per_byte);
    (tail_hash(row) >> 32) < threshold
}

/// The end of the row that starts at `from` in `d`: the index just past a `\n`, or of the `,`
/// of a `),(`; `None` if none is there (a `),` at the very end of `d` is not yet known to be a
/// row end).
fn next_row_end(d: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(k) = memchr::memchr2(b'\n', b'(', &d[i..]) {
        let at = i + k;
        if d[at] == b'\n' {
            return Some(at + 1);
        }
        if at >= 2 && d[at - 1] == b',' && d[at - 2] == b')' && at > from {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// The length of the chunk that starts `d` (`d` holds at least `hard_max` bytes unless it is
/// the rest of the stream, `eof`); `None` when `d` is not long enough to decide.
pub fn find_cut(d: &[u8], p: &ChunkParams, eof: bool) -> Option<usize> {
    let hard = hard_max(p);
    let window = &d[..d.len().min(hard)];
    if window.len() <= p.max {
        return (eof && !window.is_empty()).then_some(window.len());
    }
    let mut start = 0;
    let mut last_end = None;
    while let Some(end) = next_row_end(window, start) {
        if end > p.max {
            break;
        }
        if end >= p.min {
            if row_cuts(&window[start..end], p) {
                return Some(end);
            }
            last_end = Some(end);
        }
        start = end;
    }
    last_end.or_else(|| long_cut(window, p, eof))
}

/// No row end past `min` within `max` bytes: the first row end after `max`, else the first
/// byte-level gear hit after `max` (one in `avg` bytes), else `hard_max`.
fn long_cut(w: &[u8], p: &ChunkParams, eof: bool) -> Option<usize> {
    let row_end = next_row_end(w, p.max);
    let limit = row_end.unwrap_or(w.len());
    let bits = p.avg.next_power_of_two().trailing_zeros().max(1);
    let mask = !0u64 << (64 - bits);
    let mut h = tail_hash(&w[..p.max]);
    for (i, b) in w[p.max..limit].iter().enumerate() {
        h = (h << 1).wrapping_add(GEAR[*b as usize]);
        if h & mask == 0 {
            return Some(p.max + i + 1);
        }
    }
    match row_end {
        Some(end) => Some(end),
        None if w.len() >= hard_max(p) || eof => Some(w.len()),
        None => None,
    }
}

/// The (offset, length) cuts of an in-memory buffer.
pub fn cut_rows(data: &[u8], p: ChunkParams) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let n = find_cut(&data[at..], &p, true)?;
        let cut = (at, n);
        at += n;
        Some(cut)
    })
}

/// Bytes read ahead beyond `hard_max`: the buffer is compacted once per this many bytes.
const READ_AHEAD: usize = 1 << 20;

/// A stream cut into row-aligned chunks.
pub struct RowChunks<R> {
    r: R,
    p: ChunkParams,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> RowChunks<R> {
    /// Cuts `r` with `p`.
    pub fn new(r: R, p: ChunkParams) -> RowChunks<R> {
        RowChunks {
            r,
            p,
            buf: vec![0; hard_max(&p) + READ_AHEAD],
            pos: 0,
            end: 0,
            eof: false,
        }
    }

    /// Makes sure `hard_max` bytes are buffered past `pos` unless the stream ends first.
    fn fill(&mut self) -> io::Result<()> {
        let want = hard_max(&self.p);
        if self.eof || self.end - self.pos >= want {
            return Ok(());
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        while self.end < want {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Iterator for RowChunks<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        if let Err(e) = self.fill() {
            return Some(Err(e));
        }
        let d = &self.buf[self.pos..self.end];
        let n = find_cut(d, &self.p, self.eof)?;
        let chunk = d[..n].to_vec();
        self.pos += n;
        Some(Ok(chunk))
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
