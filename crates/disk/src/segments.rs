//! Segment files (`segments/0000000001.seg`, ...): append-only files of object records.
//!
//! Owns their names, listing, creation, deletion, positioned reads of one record, and the
//! scan of a segment's headers and heads (bodies are skipped, not read) that rebuilds the
//! index. Which records are live is the index's business; this module only moves bytes.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::record::{self, Damage, Header, Kind, HEADER_LEN};

/// The folder of segment files.
pub fn folder(dir: &Path) -> PathBuf {
    dir.join("segments")
}

/// The file of segment `id`.
pub fn path(dir: &Path, id: u32) -> PathBuf {
    folder(dir).join(format!("{id:010}.seg"))
}

/// The segments present, oldest first, with their lengths.
pub fn list(dir: &Path) -> io::Result<Vec<(u32, u64)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(folder(dir))? {
        let e = e?;
        let name = e.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        out.push((id, e.metadata()?.len()));
    }
    out.sort_unstable();
    Ok(out)
}

/// A new, empty segment opened for appending.
pub fn create(dir: &Path, id: u32) -> io::Result<File> {
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path(dir, id))
}

/// Deletes a segment's file (already gone is fine).
pub fn delete(dir: &Path, id: u32) -> io::Result<()> {
    match fs::remove_file(path(dir, id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The segments open for reading, by id. A file deleted while a read holds it stays readable
/// until that read ends.
#[derive(Default)]
pub struct Files(RwLock<HashMap<u32, Arc<File>>>);

impl Files {
    /// Opens segment `id` for reading.
    pub fn open(&self, dir: &Path, id: u32) -> io::Result<()> {
        let f = File::open(path(dir, id))?;
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::new(f));
        Ok(())
    }

    /// The open segment `id`.
    pub fn get(&self, id: u32) -> Option<Arc<File>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Closes segment `id`.
    pub fn close(&self, id: u32) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Closes every segment.
    pub fn close_all(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Reads `len` bytes at `offset`.
pub fn read_at(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// What a segment's scan found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SegmentScan {
    /// Bytes of well-framed records from the start.
    pub good_len: u64,
    /// Records skipped for a bad head (bodies are checked when read).
    pub damaged: u64,
    /// The file ends in a torn or unreadable part after `good_len`.
    pub torn: bool,
}

/// Calls `f(header, offset, head)` for every object record of a segment whose header and
/// head are sound, reading heads only (bodies are skipped).
pub fn scan(file: &File, mut f: impl FnMut(&Header, u64, &[u8])) -> io::Result<SegmentScan> {
    let len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    r.rewind()?;
    let mut at = 0u64;
    let mut out = SegmentScan::default();
    let mut head = Vec::new();
    let mut hb = [0u8; HEADER_LEN];
    while at < len {
        if len - at < HEADER_LEN as u64 {
            out.torn = true;
            break;
        }
        r.read_exact(&mut hb)?;
        let h = match Header::decode(&hb) {
            Ok(h) => h,
            Err(_) => {
                out.torn = true;
                break;
            }
        };
        if len - at < h.total_len() {
            out.torn = true;
            break;
        }
        head.resize(h.head_len as usize, 0);
        r.read_exact(&mut head)?;
        if crc32fast::hash(&head) != h.head_crc {
            out.damaged += 1;
        } else if h.kind == Kind::Object {
            f(&h, at, &head);
        }
        r.seek_relative((h.body_len + record::TRAILER_LEN as u64) as i64)?;
        at += h.total_len();
        out.good_len = at;
    }
    Ok(out)
}

/// Checks a whole record read back for `seq`: all checksums, its kind and its seq.
pub fn check(buf: &[u8], seq: u64) -> Result<record::Record<'_>, Damage> {
    let (rec, n) = record::parse(buf).map_err(|(d, _)| d)?;
    if n != buf.len() || rec.kind != Kind::Object || rec.seq != seq {
        return Err(Damage::BadHeader);
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn scan_skips_bodies_and_stops_at_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(folder(dir.path())).unwrap();
        let mut f = create(dir.path(), 1).unwrap();
        let a = record::encode(Kind::Object, 1, b"ha", &[7u8; 5000]);
        let mut bad = record::encode(Kind::Object, 2, b"hb", b"body");
        bad[HEADER_LEN] ^= 1; // head damaged
        let c = record::encode(Kind::Object, 3, b"hc", b"body-c");
        f.write_all(&a).unwrap();
        f.write_all(&bad).unwrap();
        f.write_all(&c).unwrap();
        f.write_all(&c[..10]).unwrap(); // torn
        drop(f);
        assert_eq!(list(dir.path()).unwrap().len(), 1);
        let files = Files::default();
        files.open(dir.path(), 1).unwrap();
        let file = files.get(1).unwrap();
        let mut seen = Vec::new();
        let s = scan(&file, |h, off, head| seen.push((h.seq, off, head.to_vec()))).unwrap();
        let off_c = (a.len() + bad.len()) as u64;
        assert_eq!(
            seen,
            vec![(1, 0, b"ha".to_vec()), (3, off_c, b"hc".to_vec())]
        );
        assert_eq!(s.damaged, 1);
        assert!(s.torn);
        assert_eq!(s.good_len, off_c + c.len() as u64);
        let back = read_at(&file, off_c, c.len() as u64).unwrap();
        assert_eq!(check(&back, 3).unwrap().body, b"body-c");
        assert!(check(&back, 4).is_err(), "another record's seq");
        delete(dir.path(), 1).unwrap();
        delete(dir.path(), 1).unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
    }
}
