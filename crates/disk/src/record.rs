//! The record: the one framing every byte on disk is written in (objects in segment files,
//! purges in the purge log).
//!
//! Owns the layout and its checks, nothing else: it knows no object, no index, no file.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "VNK1"
//!      4     1  kind (1 object, 2 tombstones, 3 soft marks, 4 all, 5 soft all, 6 selector purge)
//!      5     3  zero
//!      8     8  seq        (little-endian; objects: segment id << 32 | index in segment)
//!     16     4  head_len
//!     20     8  body_len
//!     28     4  head_crc   (CRC-32 of the head)
//!     32     4  header_crc (CRC-32 of bytes 0..32)
//!     36  head_len  head
//!      .  body_len  body
//!      .     4  body_crc   (CRC-32 of the body)
//! ```
//!
//! The header's own checksum makes its lengths trustworthy, so a reader can skip a body
//! without reading it (the index is rebuilt from headers and heads only) and step over a
//! record whose body is damaged. A header that fails its check, or lengths that run past the
//! end of the data, end the readable part (a torn tail). Nothing is ever served from a
//! record whose three checksums have not all been verified ([`parse`]).

use std::fmt;

/// The magic that starts every record.
pub const MAGIC: [u8; 4] = *b"VNK1";
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 36;
/// Bytes of the trailer (the body's checksum).
pub const TRAILER_LEN: usize = 4;
/// Largest head a reader accepts (a header claiming more is treated as damaged).
pub const MAX_HEAD: u32 = 16 * 1024 * 1024;
/// Largest body a reader accepts.
pub const MAX_BODY: u64 = 1 << 40;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A stored object: head = its metadata and response head, body = its body.
    Object = 1,
    /// Hard-purged object records: body = their seqs (u64 little-endian each).
    Tombstones = 2,
    /// Soft-purged object records: head = the purge time (unix ms, u64), body = their seqs.
    Soft = 3,
    /// A hard purge of everything: every record with a smaller seq is dead.
    All = 4,
    /// A soft purge of everything: head = the purge time (unix ms); records with a smaller
    /// seq are stale from then on.
    SoftAll = 5,
    /// A purge by selectors of every record with a smaller seq, written while the index was
    /// still being rebuilt: head = the encoded purge request.
    Selector = 6,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Object,
            2 => Kind::Tombstones,
            3 => Kind::Soft,
            4 => Kind::All,
            5 => Kind::SoftAll,
            6 => Kind::Selector,
            _ => return None,
        })
    }
}

/// Why bytes are not a usable record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The data ends inside the record (a write cut short): nothing after it is readable.
    Torn,
    /// The header fails its checksum, magic or bounds: nothing after it is readable.
    BadHeader,
    /// The head fails its checksum (the record is skipped; the next one is readable).
    BadHead,
    /// The body fails its checksum (the record is skipped; the next one is readable).
    BadBody,
}

impl Damage {
    /// True when the records after this one can still be read.
    pub fn skippable(self) -> bool {
        matches!(self, Damage::BadHead | Damage::BadBody)
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Damage::Torn => "record cut short (torn write)",
            Damage::BadHeader => "record header fails its checksum",
            Damage::BadHead => "record head fails its checksum",
            Damage::BadBody => "record body fails its checksum",
        })
    }
}

/// A record's fixed header, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the record holds.
    pub kind: Kind,
    /// Its sequence number.
    pub seq: u64,
    /// Bytes of head.
    pub head_len: u32,
    /// Bytes of body.
    pub body_len: u64,
    /// CRC-32 of the head.
    pub head_crc: u32,
}

impl Header {
    /// Bytes the whole record takes.
    pub fn total_len(&self) -> u64 {
        HEADER_LEN as u64 + self.head_len as u64 + self.body_len + TRAILER_LEN as u64
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = self.kind as u8;
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.head_len.to_le_bytes());
        b[20..28].copy_from_slice(&self.body_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.head_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Checks and reads a header (its magic, checksum, kind and bounds).
    pub fn decode(b: &[u8]) -> Result<Header, Damage> {
        if b.len() < HEADER_LEN {
            return Err(Damage::Torn);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        if b[0..4] != MAGIC || b[5..8] != [0, 0, 0] || crc32fast::hash(&b[0..32]) != u32_at(32) {
            return Err(Damage::BadHeader);
        }
        let kind = Kind::from_u8(b[4]).ok_or(Damage::BadHeader)?;
        let h = Header {
            kind,
            seq: u64_at(8),
            head_len: u32_at(16),
            body_len: u64_at(20),
            head_crc: u32_at(28),
        };
        if h.head_len > MAX_HEAD || h.body_len > MAX_BODY {
            return Err(Damage::BadHeader);
        }
        Ok(h)
    }
}

/// A record read whole and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// What it holds.
    pub kind: Kind,
    /// Its sequence number.
    pub seq: u64,
    /// The head.
    pub head: &'a [u8],
    /// The body.
    pub body: &'a [u8],
}

/// The bytes of a whole record.
pub fn encode(kind: Kind, seq: u64, head: &[u8], body: &[u8]) -> Vec<u8> {
    let header = Header {
        kind,
        seq,
        head_len: head.len() as u32,
        body_len: body.len() as u64,
        head_crc: crc32fast::hash(head),
    };
    let mut out = Vec::with_capacity(header.total_len() as usize);
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(head);
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out
}

/// Reads the record at the start of `buf`, checking all three checksums. Returns it and the
/// bytes it took; on damage, how many bytes to skip when the damage is skippable.
pub fn parse(buf: &[u8]) -> Result<(Record<'_>, usize), (Damage, usize)> {
    let h = Header::decode(buf).map_err(|d| (d, 0))?;
    let total = h.total_len();
    if (buf.len() as u64) < total {
        return Err((Damage::Torn, 0));
    }
    let total = total as usize;
    let head_end = HEADER_LEN + h.head_len as usize;
    let body_end = head_end + h.body_len as usize;
    let head = &buf[HEADER_LEN..head_end];
    let body = &buf[head_end..body_end];
    if crc32fast::hash(head) != h.head_crc {
        return Err((Damage::BadHead, total));
    }
    let want = &buf[body_end..total];
    if crc32fast::hash(body).to_le_bytes() != want {
        return Err((Damage::BadBody, total));
    }
    Ok((
        Record {
            kind: h.kind,
            seq: h.seq,
            head,
            body,
        },
        total,
    ))
}

/// What reading every record of a buffer found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of well-framed records from the start (where a torn tail begins).
    pub good_len: usize,
    /// Records skipped for a bad head or body.
    pub damaged: u64,
    /// True when the readable part ended before the data did (torn or bad header).
    pub torn: bool,
}

/// Calls `f` for every sound record of `buf`, in order, skipping damaged ones.
pub fn scan<'a>(buf: &'a [u8], mut f: impl FnMut(Record<'a>)) -> Scan {
    let mut at = 0;
    let mut out = Scan::default();
    while at < buf.len() {
        match parse(&buf[at..]) {
            Ok((rec, n)) => {
                f(rec);
                at += n;
            }
            Err((d, n)) if d.skippable() => {
                out.damaged += 1;
                at += n;
            }
            Err(_) => {
                out.torn = true;
                break;
            }
        }
        out.good_len = at;
    }
    out
}

/// Seqs packed as a record body (u64 little-endian each).
pub fn pack_seqs(seqs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len() * 8);
    for s in seqs {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// The seqs of a record body ([`pack_seqs`]); a trailing partial value is ignored.
pub fn unpack_seqs(body: &[u8]) -> impl Iterator<Item = u64> + '_ {
    body.chunks_exact(8).map(|c| {
        let mut x = [0u8; 8];
        x.copy_from_slice(c);
        u64::from_le_bytes(x)
    })
}

/// A unix-ms time as a record head.
pub fn pack_ms(ms: u64) -> [u8; 8] {
    ms.to_le_bytes()
}

/// A record head read as a unix-ms time (0 when it is not 8 bytes).
pub fn unpack_ms(head: &[u8]) -> u64 {
    <[u8; 8]>::try_from(head).map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Vec<u8> {
        let mut buf = encode(Kind::Object, 7, b"head-one", b"body-one");
        buf.extend(encode(Kind::Tombstones, 8, b"", &pack_seqs(&[1, 2, 3])));
        buf
    }

    #[test]
    fn round_trips() {
        let buf = two();
        let mut seen = Vec::new();
        let s = scan(&buf, |r| {
            seen.push((r.kind, r.seq, r.head.to_vec(), r.body.to_vec()))
        });
        assert_eq!(s.good_len, buf.len());
        assert!(!s.torn);
        assert_eq!(s.damaged, 0);
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0],
            (Kind::Object, 7, b"head-one".to_vec(), b"body-one".to_vec())
        );
        assert_eq!(
            unpack_seqs(&seen[1].3).collect::<Vec<_>>(),
            vec![1, 2, 3],
            "tombstone seqs"
        );
    }

    #[test]
    fn a_torn_tail_is_never_read() {
        let buf = two();
        let first = encode(Kind::Object, 7, b"head-one", b"body-one").len();
        // Every cut inside the second record leaves exactly the first readable.
        for cut in first..buf.len() {
            let mut n = 0;
            let s = scan(&buf[..cut], |_| n += 1);
            assert_eq!(n, 1, "cut at {cut}");
            assert_eq!(s.good_len, first);
            assert_eq!(s.torn, cut > first, "cut at {cut}");
        }
        // Every cut inside the first leaves nothing.
        for cut in 1..first {
            let mut n = 0;
            let s = scan(&buf[..cut], |_| n += 1);
            assert_eq!((n, s.good_len, s.torn), (0, 0, true), "cut at {cut}");
        }
    }

    #[test]
    fn a_bad_body_or_head_is_skipped_and_counted() {
        let first = encode(Kind::Object, 7, b"head-one", b"body-one").len();
        for flip in [HEADER_LEN + 1, HEADER_LEN + 9, first - 1] {
            let mut buf = two();
            buf[flip] ^= 0x40;
            let mut seqs = Vec::new();
            let s = scan(&buf, |r| seqs.push(r.seq));
            assert_eq!(
                seqs,
                vec![8],
                "flip at {flip}: the damaged record is not read"
            );
            assert_eq!(s.damaged, 1);
            assert!(!s.torn);
        }
    }

    #[test]
    fn a_bad_header_ends_the_readable_part() {
        for flip in 0..HEADER_LEN {
            let mut buf = two();
            buf[flip] ^= 0x01;
            let mut n = 0;
            let s = scan(&buf, |_| n += 1);
            assert_eq!((n, s.good_len, s.torn), (0, 0, true), "flip at {flip}");
        }
    }

    #[test]
    fn lengths_past_the_end_are_torn_not_a_panic() {
        let mut h = Header {
            kind: Kind::Object,
            seq: 1,
            head_len: 10,
            body_len: MAX_BODY,
            head_crc: 0,
        }
        .encode()
        .to_vec();
        h.extend_from_slice(&[0u8; 20]);
        assert_eq!(parse(&h).unwrap_err().0, Damage::Torn);
        let big = Header {
            kind: Kind::Object,
            seq: 1,
            head_len: MAX_HEAD + 1,
            body_len: 0,
            head_crc: 0,
        }
        .encode();
        assert_eq!(Header::decode(&big).unwrap_err(), Damage::BadHeader);
    }
}
