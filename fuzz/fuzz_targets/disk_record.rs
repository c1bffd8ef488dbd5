//! The disk tier's readers: `vanish_disk::record::scan` (segment and purge-log framing),
//! `vanish_disk::purge_log::load_bytes` (the purge log as loaded at start),
//! `vanish_disk::segments::check` (a record read back to be served) and the object head
//! decoders of `vanish_disk::codec`.
//!
//! Input format: raw bytes as they would lie in a segment file or `purges.log` (seeds in
//! fuzz/corpus/disk_record are sound records, torn and flipped copies).
//!
//! Properties checked on every input:
//! - nothing panics and nothing allocates past the input's size, whatever the bytes;
//! - the scan's sound part is a prefix of the input, and every record it yields re-encodes
//!   to exactly its bytes in the input (what is read is what was written);
//! - a record `check` accepts is one `scan` yields; a head either decodes or is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vanish_disk::{codec, purge_log, record, segments};

fuzz_target!(|data: &[u8]| {
    let mut at = 0usize;
    let mut sound = Vec::new();
    let s = record::scan(data, |r| sound.push((r.kind, r.seq, r.head.to_vec(), r.body.to_vec())));
    assert!(s.good_len <= data.len());
    for (kind, seq, head, body) in &sound {
        let again = record::encode(*kind, *seq, head, body);
        // Damaged records may sit between sound ones: find this one from where we are.
        let found = data[at..]
            .windows(again.len())
            .position(|w| w == again.as_slice())
            .expect("a record scan yields is in the input byte for byte");
        at += found + again.len();
        if *kind == record::Kind::Object {
            if let Ok(meta) = codec::decode_meta(head) {
                let _ = meta.meta.key.to_string();
            }
            let _ = codec::decode_object(head, bytes::Bytes::from(body.clone()));
        }
    }
    if let Ok(r) = segments::check(data, 0) {
        assert_eq!(r.seq, 0);
        assert_eq!(sound.len(), 1, "a whole checked record is one scanned record");
    }
    let (_, good) = purge_log::load_bytes(data);
    assert!(good <= data.len());
    let _ = codec::decode_meta(data);
});
