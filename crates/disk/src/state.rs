//! The disk tier's shared state, and the two paths that run on the caller's thread: reading
//! an object back, and purging (durably, before the acknowledgement).
//!
//! Owns [`Shared`] (what the writer thread, the rebuild thread and the store's callers share)
//! and its lock order: the index lock, then the purge log's. It does not append object
//! records (the writer does) nor scan segments (the rebuild does).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use vanish_engine::purge::log::PurgeLog;
use vanish_engine::purge::selector::{PurgeMode, Target};
use vanish_engine::store::StoreError;
use vanish_engine::{CachedObject, PurgeRequest, ResourceKey};

use crate::codec::{self, from_ms, unix_ms};
use crate::index::{DiskEntry, DiskIndex, RebuildPurge};
use crate::metrics::{self, Counters};
use crate::purge_log::PurgeFile;
use crate::record::{self, Kind, HEADER_LEN};
use crate::segments::{self, Files};

/// What the writer thread is asked to do.
pub enum Job {
    /// Write an object admitted at this disk epoch.
    Write(Box<CachedObject>, u64),
    /// A hard `all` ran: start a new segment and delete the older ones.
    DropAll,
    /// Sync what was written, then answer.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// Settings the tier runs with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of segment files at most.
    pub capacity: u64,
    /// A segment is sealed past this size.
    pub segment_size: u64,
    /// Variants kept per resource.
    pub max_variants: usize,
    /// Largest record written.
    pub max_record: u64,
}

/// Everything the tier's threads share.
pub struct Shared {
    /// The tier's folder.
    pub dir: PathBuf,
    /// Its limits.
    pub limits: Limits,
    /// The index (locked before `purges`).
    pub index: Mutex<DiskIndex>,
    /// Purges since each admission began (read-after-purge for writes in flight).
    pub log: PurgeLog,
    /// Segments open for reading.
    pub files: Files,
    /// The durable purge log.
    pub purges: Mutex<PurgeFile>,
    /// Tombstones appended since start (compaction after the rebuild keeps them).
    pub appended: Mutex<Vec<u64>>,
    /// The index is rebuilt: lookups may use it.
    pub ready: AtomicBool,
    /// Writes are off after an I/O error.
    pub degraded: AtomicBool,
    /// Bytes of segment files.
    pub disk_bytes: AtomicU64,
    /// Event counters.
    pub counters: Counters,
    /// Milliseconds the last rebuild took.
    pub rebuild_ms: AtomicU64,
    /// Segments below this id were there at start (the rebuild reads them).
    pub first_new: u32,
}

/// What a purge found on disk.
#[derive(Debug, Default)]
pub struct DiskPurge {
    /// Objects matched.
    pub matched: u64,
    /// The matched entries (not for `all`).
    pub entries: Vec<Arc<DiskEntry>>,
}

fn not_applied(reason: String) -> StoreError {
    StoreError::NotApplied {
        cause: Box::new(StoreError::Command {
            backend: "disk",
            reason,
        }),
        outcome:
            "the purge is applied in memory but may not survive a restart of the disk tier (retry)"
                .into(),
    }
}

impl Shared {
    /// The index, locked.
    pub fn lock_index(&self) -> MutexGuard<'_, DiskIndex> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The purge log, locked (take the index lock first when both are needed).
    pub fn lock_purges(&self) -> MutexGuard<'_, PurgeFile> {
        self.purges.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the sizes as metrics.
    pub fn publish_sizes(&self, idx: &DiskIndex) {
        metrics::sizes(
            self.disk_bytes.load(Ordering::Relaxed),
            idx.live_bytes(),
            idx.len() as u64,
            self.limits.capacity,
        );
    }

    /// Writes turned off after an I/O error (a log line and a metric); the memory tier goes
    /// on serving.
    pub fn degrade(&self, what: &str, e: &std::io::Error) {
        self.counters.io_error();
        if !self.degraded.swap(true, Ordering::AcqRel) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "disk tier: {what} failed; writing to disk is off, serving from memory (retried every 30 s)");
            metrics::degraded(true);
        }
    }

    /// The stored variants of a resource, read back and checked (empty while the index is
    /// being rebuilt). Damaged records are dropped and counted.
    pub fn read(&self, key: &ResourceKey) -> Vec<CachedObject> {
        if !self.ready.load(Ordering::Acquire) {
            return Vec::new();
        }
        let now = SystemTime::now();
        let (entries, soft_all) = {
            let idx = self.lock_index();
            let Some(list) = idx.get(key) else {
                return Vec::new();
            };
            let live: Vec<_> = list
                .iter()
                .filter(|e| e.is_written() && !e.is_dead() && e.retain_until > now)
                .cloned()
                .collect();
            (live, idx.soft_all)
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            match self.read_entry(&e) {
                Ok(obj) => {
                    if e.is_dead() {
                        continue; // purged while it was read
                    }
                    let soft = e.soft_at_ms();
                    if soft > 0 {
                        obj.mark_soft_purged(from_ms(soft));
                    }
                    if e.seq < soft_all.0 {
                        obj.mark_soft_purged(from_ms(soft_all.1));
                    }
                    out.push(obj);
                }
                Err(why) => {
                    tracing::warn!(
                        seq = e.seq,
                        segment = e.segment(),
                        "disk tier: {why}; the object is dropped"
                    );
                    self.lock_index().remove(e.meta.id);
                }
            }
        }
        out
    }

    fn read_entry(&self, e: &DiskEntry) -> Result<CachedObject, String> {
        let file = self
            .files
            .get(e.segment())
            .ok_or_else(|| "segment file closed".to_owned())?;
        self.counters.read();
        let buf = segments::read_at(&file, e.offset, e.len).map_err(|err| {
            self.counters.io_error();
            format!("read failed: {err}")
        })?;
        let (head_len, body_len) = match segments::check(&buf, e.seq) {
            Ok(r) => (r.head.len(), r.body.len()),
            Err(d) => {
                self.counters.damaged(1);
                return Err(d.to_string());
            }
        };
        let buf = Bytes::from(buf);
        let head = buf.slice(HEADER_LEN..HEADER_LEN + head_len);
        let body = buf.slice(HEADER_LEN + head_len..HEADER_LEN + head_len + body_len);
        codec::decode_object(&head, body).map_err(|err| {
            self.counters.damaged(1);
            format!("undecodable record: {err}")
        })
    }

    /// Purges what the request matches on disk. A hard purge's tombstones (or a soft one's
    /// marks) are appended to the purge log and synced before this returns.
    pub fn purge(&self, req: &Arc<PurgeRequest>) -> Result<DiskPurge, StoreError> {
        let now_ms = unix_ms(SystemTime::now()).max(1);
        let is_all = req
            .selectors
            .iter()
            .any(|s| matches!(s.target, Target::All) && s.headers.is_empty());
        let mut idx = self.lock_index();
        if req.dry_run {
            return Ok(if is_all {
                DiskPurge {
                    matched: idx.len() as u64,
                    entries: Vec::new(),
                }
            } else {
                let entries = idx.select(req);
                DiskPurge {
                    matched: entries.len() as u64,
                    entries,
                }
            });
        }
        self.log.record(req.clone());
        let boundary = idx.next_seq;
        let mut recs = Vec::new();
        if !idx.rebuilt && !is_all {
            // Records not read back yet are checked against it, now and after a crash.
            idx.rebuild_purges.push(RebuildPurge {
                boundary,
                at_ms: now_ms,
                req: req.clone(),
            });
            recs.extend(record::encode(
                Kind::Selector,
                boundary,
                &crate::wire::encode(req),
                &record::pack_ms(now_ms),
            ));
        }
        let mut out = DiskPurge::default();
        let mut tombstones = Vec::new();
        if is_all {
            out.matched = idx.len() as u64;
            match req.mode {
                PurgeMode::Hard => {
                    idx.all_boundary = boundary;
                    let old = idx.take_entries();
                    std::thread::spawn(move || drop(old));
                    recs.extend(record::encode(Kind::All, boundary, b"", b""));
                }
                PurgeMode::Soft => {
                    idx.soft_all = (boundary, now_ms);
                    recs.extend(record::encode(
                        Kind::SoftAll,
                        boundary,
                        &record::pack_ms(now_ms),
                        b"",
                    ));
                }
            }
        } else {
            let matched = idx.select(req);
            out.matched = matched.len() as u64;
            let seqs: Vec<u64> = matched.iter().map(|e| e.seq).collect();
            match req.mode {
                PurgeMode::Hard => {
                    for e in &matched {
                        e.kill();
                        idx.remove(e.meta.id);
                    }
                    if !seqs.is_empty() {
                        recs.extend(record::encode(
                            Kind::Tombstones,
                            boundary,
                            b"",
                            &record::pack_seqs(&seqs),
                        ));
                        tombstones = seqs;
                    }
                }
                PurgeMode::Soft => {
                    for e in &matched {
                        e.mark_soft(now_ms);
                    }
                    if !seqs.is_empty() {
                        recs.extend(record::encode(
                            Kind::Soft,
                            boundary,
                            &record::pack_ms(now_ms),
                            &record::pack_seqs(&seqs),
                        ));
                    }
                }
            }
            out.entries = matched;
        }
        self.publish_sizes(&idx);
        if recs.is_empty() {
            return Ok(out);
        }
        // The index is free again before the sync: lookups do not wait for the disk. A
        // compaction running meanwhile rewrites the log first; these records follow it.
        drop(idx);
        let appended = self.lock_purges().append(&recs);
        match appended {
            Ok(()) => {
                self.counters.wrote_log(recs.len() as u64);
                if !tombstones.is_empty() {
                    self.appended
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(tombstones);
                }
                Ok(out)
            }
            Err(e) => {
                self.degrade("writing the purge log", &e);
                // The purge cannot be made durable: make it so by deleting every segment
                // (data is lost, the purge is not).
                self.forget_everything().map_err(not_applied)?;
                Ok(out)
            }
        }
    }

    /// Deletes every segment file and forgets every entry (when a purge cannot be logged).
    pub fn forget_everything(&self) -> Result<(), String> {
        let mut idx = self.lock_index();
        idx.all_boundary = idx.next_seq;
        let old = idx.take_entries();
        let ids = segments::list(&self.dir).map_err(|e| e.to_string())?;
        if let Some(&(last, _)) = ids.last() {
            idx.drop_segments(last);
        }
        self.files.close_all();
        let mut failed = None;
        for (id, _) in ids {
            if let Err(e) = segments::delete(&self.dir, id) {
                failed = Some(e.to_string());
            }
        }
        drop(idx);
        drop(old);
        self.disk_bytes.store(0, Ordering::Relaxed);
        match failed {
            Some(e) => Err(format!("cannot delete a segment file: {e}")),
            None => Ok(()),
        }
    }

    /// The tombstones and soft marks the compacted purge log keeps: the dead records of live
    /// segments (`dead`, found by the rebuild, and what was appended since start), the marks
    /// of live entries, and the `all` boundaries. Caller holds the index lock.
    pub fn compacted(&self, idx: &DiskIndex, dead: &HashSet<u64>) -> Vec<u8> {
        let next = idx.next_seq;
        let mut out = Vec::new();
        if idx.all_boundary > 0 {
            out.extend(record::encode(Kind::All, idx.all_boundary, b"", b""));
        }
        if idx.soft_all.0 > 0 {
            out.extend(record::encode(
                Kind::SoftAll,
                idx.soft_all.0,
                &record::pack_ms(idx.soft_all.1),
                b"",
            ));
        }
        let appended = self.appended.lock().unwrap_or_else(|e| e.into_inner());
        let mut seqs: Vec<u64> = dead
            .iter()
            .chain(appended.iter())
            .copied()
            .filter(|s| *s >= idx.all_boundary && !idx.is_gone(crate::index::segment_of(*s)))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        for chunk in seqs.chunks(1 << 16) {
            out.extend(record::encode(
                Kind::Tombstones,
                next,
                b"",
                &record::pack_seqs(chunk),
            ));
        }
        let mut soft: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        for e in idx.iter() {
            let at = e.soft_at_ms();
            if at > 0 {
                soft.entry(at).or_default().push(e.seq);
            }
        }
        for (at, seqs) in soft {
            out.extend(record::encode(
                Kind::Soft,
                next,
                &record::pack_ms(at),
                &record::pack_seqs(&seqs),
            ));
        }
        out
    }
}
