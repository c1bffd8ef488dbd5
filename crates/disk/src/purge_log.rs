//! The purge log file (`purges.log`): what makes a purge's acknowledgement durable.
//!
//! Owns the file and its three operations: load it at start (every tombstone, soft mark,
//! `all` boundary and rebuild-time selector purge in it), append records and `fdatasync`
//! before a purge is acknowledged, and rewrite it whole (compaction: write a temporary file,
//! sync it, rename it over the old one, sync the directory). It does not decide what a purge
//! matches; the tier does.
//!
//! Damage is handled conservatively: a torn tail (a purge that was never acknowledged, since
//! acknowledgement waits for the sync) is cut off; any other damage means an acknowledged
//! purge may be unreadable, so [`Loaded::distrust`] is set and the tier treats every object
//! record written before this start as purged (data is lost, a purge never is).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::index::RebuildPurge;
use crate::record::{self, Kind};
use crate::wire;

/// What the purge log says, as loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Seqs of hard-purged object records.
    pub tombstones: HashSet<u64>,
    /// Seqs of soft-purged object records, with the purge time (unix ms).
    pub soft: HashMap<u64, u64>,
    /// Every record with a smaller seq is dead.
    pub all_boundary: u64,
    /// Records below `.0` are stale from `.1` (unix ms).
    pub soft_all: (u64, u64),
    /// Selector purges written while an index was being rebuilt.
    pub selectors: Vec<RebuildPurge>,
    /// The largest seq any record names.
    pub max_seq: u64,
    /// Damaged records found (other than a torn tail).
    pub damaged: u64,
    /// A purge may have been lost to damage: every object record written before this start
    /// must count as purged.
    pub distrust: bool,
}

/// The open purge log.
pub struct PurgeFile {
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    pub bytes: u64,
}

/// Where the next sound record header starts in `buf`, if anywhere (damage in the middle,
/// not a torn tail).
fn next_sound_header(buf: &[u8]) -> Option<usize> {
    (0..buf.len().saturating_sub(record::HEADER_LEN - 1))
        .find(|&i| buf[i..i + 4] == record::MAGIC && record::Header::decode(&buf[i..]).is_ok())
}

/// Applies one purge-log record to what is loaded.
fn apply(l: &mut Loaded, kind: Kind, seq: u64, head: &[u8], body: &[u8]) {
    l.max_seq = l.max_seq.max(seq);
    match kind {
        Kind::Tombstones => l.tombstones.extend(record::unpack_seqs(body)),
        Kind::Soft => {
            let at = record::unpack_ms(head).max(1);
            for s in record::unpack_seqs(body) {
                let e = l.soft.entry(s).or_insert(at);
                *e = (*e).min(at);
            }
        }
        Kind::All => l.all_boundary = l.all_boundary.max(seq),
        Kind::SoftAll => {
            if seq >= l.soft_all.0 {
                l.soft_all = (seq, record::unpack_ms(head).max(1));
            }
        }
        Kind::Selector => match wire::decode(head) {
            Ok(req) => l.selectors.push(RebuildPurge {
                boundary: seq,
                at_ms: record::unpack_ms(body).max(1),
                req: Arc::new(req),
            }),
            // Unreadable though its checksums hold (a newer format?): be safe.
            Err(_) => {
                l.damaged += 1;
                l.distrust = true;
            }
        },
        Kind::Object => {
            l.damaged += 1;
            l.distrust = true;
        }
    }
}

/// Reads a purge log's bytes. Returns what it says and the length of its sound part.
pub fn load_bytes(buf: &[u8]) -> (Loaded, usize) {
    let mut l = Loaded::default();
    let mut at = 0;
    while at < buf.len() {
        match record::parse(&buf[at..]) {
            Ok((rec, n)) => {
                apply(&mut l, rec.kind, rec.seq, rec.head, rec.body);
                at += n;
            }
            Err((d, n)) if d.skippable() => {
                l.damaged += 1;
                l.distrust = true;
                at += n;
            }
            Err(_) => match next_sound_header(&buf[at + 1..]) {
                // Damage in the middle: read on from the next sound record.
                Some(p) => {
                    l.damaged += 1;
                    l.distrust = true;
                    at += 1 + p;
                }
                // A torn tail: the sound part ends here.
                None => break,
            },
        }
    }
    (l, at.min(buf.len()))
}

impl PurgeFile {
    /// Opens (or creates) `dir/purges.log` and loads it; a torn tail is cut off.
    pub fn open(dir: &Path) -> io::Result<(PurgeFile, Loaded)> {
        let path = dir.join("purges.log");
        let buf = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let (loaded, good) = load_bytes(&buf);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        if good < buf.len() {
            file.set_len(good as u64)?;
            file.sync_data()?;
        }
        Ok((
            PurgeFile {
                path,
                file,
                bytes: good as u64,
            },
            loaded,
        ))
    }

    /// Appends records and waits until they are on stable storage.
    pub fn append(&mut self, records: &[u8]) -> io::Result<()> {
        self.file.write_all(records)?;
        self.file.sync_data()?;
        self.bytes += records.len() as u64;
        Ok(())
    }

    /// Replaces the whole file with `records`, atomically (a crash leaves the old or the new).
    pub fn rewrite(&mut self, records: &[u8]) -> io::Result<()> {
        let tmp = self.path.with_extension("log.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(records)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.bytes = records.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vanish_engine::{PurgeRequest, Selector};

    fn log() -> Vec<u8> {
        let mut b = record::encode(Kind::Tombstones, 10, b"", &record::pack_seqs(&[3, 4]));
        b.extend(record::encode(
            Kind::Soft,
            11,
            &record::pack_ms(500),
            &record::pack_seqs(&[5]),
        ));
        b.extend(record::encode(Kind::All, 2, b"", b""));
        b.extend(record::encode(
            Kind::SoftAll,
            12,
            &record::pack_ms(700),
            b"",
        ));
        let req = PurgeRequest::new(vec![Selector::tag("t")]);
        b.extend(record::encode(
            Kind::Selector,
            13,
            &wire::encode(&req),
            &record::pack_ms(900),
        ));
        b
    }

    #[test]
    fn loads_every_kind() {
        let b = log();
        let (l, good) = load_bytes(&b);
        assert_eq!(good, b.len());
        assert_eq!(l.tombstones, HashSet::from([3, 4]));
        assert_eq!(l.soft.get(&5), Some(&500));
        assert_eq!(l.all_boundary, 2);
        assert_eq!(l.soft_all, (12, 700));
        assert_eq!(l.selectors.len(), 1);
        assert_eq!((l.selectors[0].boundary, l.selectors[0].at_ms), (13, 900));
        assert_eq!(l.max_seq, 13);
        assert_eq!(l.damaged, 0);
    }

    #[test]
    fn a_torn_tail_is_an_unacknowledged_purge_and_is_cut() {
        let b = log();
        let last = b.len()
            - record::encode(
                Kind::Selector,
                13,
                &wire::encode(&PurgeRequest::new(vec![Selector::tag("t")])),
                &record::pack_ms(900),
            )
            .len();
        for cut in last + 1..b.len() {
            let (l, good) = load_bytes(&b[..cut]);
            assert_eq!(good, last, "cut at {cut}");
            assert!(l.selectors.is_empty());
            assert_eq!(l.damaged, 0);
            assert_eq!(l.all_boundary, 2);
        }
    }

    #[test]
    fn damage_in_the_middle_distrusts_everything_older() {
        for flip in [record::HEADER_LEN + 2, 5] {
            let mut b = log();
            b[flip] ^= 1; // the first record's body, then its header
            let (l, good) = load_bytes(&b);
            assert_eq!(l.damaged, 1, "flip at {flip}");
            assert!(l.distrust);
            assert_eq!(good, b.len());
            assert!(l.tombstones.is_empty());
            assert_eq!(
                l.soft_all,
                (12, 700),
                "records after the damage are still read"
            );
        }
        let (l, _) = load_bytes(&log());
        assert!(!l.distrust);
    }

    #[test]
    fn the_fuzz_seeds_follow_the_documented_layout() {
        let seed = include_bytes!("../../../fuzz/corpus/disk_record/purge_log");
        let (l, good) = load_bytes(seed);
        assert_eq!((good, l.damaged), (seed.len(), 0));
        assert_eq!(
            (l.tombstones.len(), l.soft.len(), l.all_boundary),
            (3, 1, 12)
        );
        assert_eq!((l.selectors.len(), l.max_seq), (1, 14));
        let obj = include_bytes!("../../../fuzz/corpus/disk_record/object");
        let r = crate::segments::check(obj, 0).unwrap();
        let m = crate::codec::decode_meta(r.head).unwrap();
        assert_eq!(m.meta.key.host(), "h.example");
        assert_eq!(r.body, b"hello body");
    }

    #[test]
    fn open_append_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, l) = PurgeFile::open(dir.path()).unwrap();
        assert_eq!(l.max_seq, 0);
        f.append(&record::encode(Kind::All, 9, b"", b"")).unwrap();
        drop(f);
        let (mut f, l) = PurgeFile::open(dir.path()).unwrap();
        assert_eq!(l.all_boundary, 9);
        f.rewrite(&record::encode(Kind::All, 20, b"", b"")).unwrap();
        f.append(&record::encode(
            Kind::Tombstones,
            21,
            b"",
            &record::pack_seqs(&[30]),
        ))
        .unwrap();
        drop(f);
        let (_, l) = PurgeFile::open(dir.path()).unwrap();
        assert_eq!((l.all_boundary, l.tombstones.len()), (20, 1));
    }
}
