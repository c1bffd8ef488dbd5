//! The writer thread: the one place object records are appended.
//!
//! Owns the active segment (appends, seals, syncs), capacity eviction (oldest segment first,
//! its index entries with it), the expiry sweep of the index, and recovery from degraded mode.
//! An admitted object is checked against the purges since its admission and indexed *before*
//! its bytes are written (as not yet readable), so a purge that runs meanwhile finds it and
//! logs its tombstone; it becomes readable once written. Inserts are not synced one by one:
//! what was written survives the process dying (`kill -9`) through the page cache, and the
//! active segment is synced every second and when sealed; a power loss may lose the last
//! second of inserts, never a purge (purges sync before their acknowledgement).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use vanish_engine::purge::log::SincePurge;
use vanish_engine::CachedObject;

use crate::codec::{self, unix_ms, StoredMeta};
use crate::index::DiskEntry;
use crate::metrics;
use crate::record::{self, Kind, HEADER_LEN, TRAILER_LEN};
use crate::segments;
use crate::state::{Job, Shared};

/// How often the active segment is synced and expired entries are swept.
const TICK: Duration = Duration::from_secs(1);
/// How long writes stay off after an I/O error before a retry.
const RETRY: Duration = Duration::from_secs(30);

struct Active {
    id: u32,
    file: File,
    len: u64,
    dirty: bool,
}

/// The writer's state.
pub struct Writer {
    shared: Arc<Shared>,
    active: Option<Active>,
    /// Sealed segments, oldest first, with their lengths.
    sealed: VecDeque<(u32, u64)>,
    next_id: u32,
    retry_at: Option<Instant>,
}

impl Writer {
    /// A writer that continues after the segments present at start (`old`, oldest first).
    pub fn new(shared: Arc<Shared>, old: Vec<(u32, u64)>) -> Writer {
        let next_id = shared.first_new;
        Writer {
            shared,
            active: None,
            sealed: old.into(),
            next_id,
            retry_at: None,
        }
    }

    /// Runs until every sender is gone, then syncs and returns.
    pub fn run(mut self, jobs: Receiver<Job>) {
        if let Err(e) = self.roll() {
            self.fail("creating a segment", &e);
        }
        let mut last_tick = Instant::now();
        loop {
            match jobs.recv_timeout(TICK) {
                Ok(Job::Write(obj, epoch)) => self.write(*obj, epoch),
                Ok(Job::DropAll) => self.drop_all(),
                Ok(Job::Flush(done)) => {
                    self.sync();
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.sync();
                    return;
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick();
            }
        }
    }

    fn fail(&mut self, what: &str, e: &std::io::Error) {
        self.shared.degrade(what, e);
        self.retry_at = Some(Instant::now() + RETRY);
    }

    fn tick(&mut self) {
        self.sync();
        let mut idx = self.shared.lock_index();
        idx.expire(unix_ms(SystemTime::now()), 10_000);
        self.shared.publish_sizes(&idx);
        drop(idx);
        let ready = self.shared.ready.load(Ordering::Acquire);
        let took = self.shared.rebuild_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        metrics::rebuild(!ready, ready.then_some(took));
        metrics::degraded(self.shared.degraded.load(Ordering::Acquire));
        if self.retry_at.is_some_and(|t| Instant::now() >= t) {
            self.retry_at = None;
            self.active = None;
            match self.roll() {
                Ok(()) => {
                    if self.shared.degraded.swap(false, Ordering::AcqRel) {
                        tracing::info!("disk tier: writing to disk again");
                        metrics::degraded(false);
                    }
                }
                Err(e) => self.fail("creating a segment", &e),
            }
        }
    }

    fn sync(&mut self) {
        if let Some(a) = self.active.as_mut().filter(|a| a.dirty) {
            a.dirty = false;
            if let Err(e) = a.file.sync_data() {
                self.fail("syncing a segment", &e);
            }
        }
    }

    /// Seals the active segment and starts the next.
    fn roll(&mut self) -> std::io::Result<()> {
        if let Some(mut a) = self.active.take() {
            if a.dirty {
                a.file.sync_data()?;
                a.dirty = false;
            }
            self.sealed.push_back((a.id, a.len));
        }
        let id = self.next_id;
        self.next_id += 1;
        let file = segments::create(&self.shared.dir, id)?;
        self.shared.files.open(&self.shared.dir, id)?;
        self.shared.lock_index().next_seq = (id as u64) << 32;
        self.active = Some(Active {
            id,
            file,
            len: 0,
            dirty: false,
        });
        Ok(())
    }

    /// Deletes the oldest sealed segment; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some((id, len)) = self.sealed.pop_front() else {
            return false;
        };
        let mut idx = self.shared.lock_index();
        idx.drop_segments(id);
        drop(idx);
        self.shared.files.close(id);
        if let Err(e) = segments::delete(&self.shared.dir, id) {
            self.shared.counters.io_error();
            tracing::warn!(error = %e, segment = id, "disk tier: cannot delete an evicted segment");
        }
        self.shared.disk_bytes.fetch_sub(
            len.min(self.shared.disk_bytes.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.shared.counters.evicted();
        true
    }

    fn drop_all(&mut self) {
        if let Err(e) = self.roll() {
            self.fail("creating a segment", &e);
        }
        while self.evict_oldest() {}
    }

    fn write(&mut self, obj: CachedObject, epoch: u64) {
        let shared = self.shared.clone();
        if shared.degraded.load(Ordering::Acquire) || self.active.is_none() {
            shared.counters.skipped();
            return;
        }
        let Ok(head) = codec::encode_head(&obj) else {
            shared.counters.skipped();
            return;
        };
        let total = (HEADER_LEN + head.len() + obj.body.len() + TRAILER_LEN) as u64;
        if total > shared.limits.max_record {
            shared.counters.skipped();
            return;
        }
        let full = self
            .active
            .as_ref()
            .is_some_and(|a| a.len > 0 && a.len + total > shared.limits.segment_size);
        if full {
            if let Err(e) = self.roll() {
                self.fail("creating a segment", &e);
                return;
            }
        }
        while shared.disk_bytes.load(Ordering::Relaxed) + total > shared.limits.capacity {
            if !self.evict_oldest() {
                break;
            }
        }
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let mut meta = obj.meta.clone();
        meta.id = vanish_engine::object::next_object_id();
        let stored = StoredMeta {
            meta,
            vary: obj.vary.clone(),
            variant: obj.variant.clone(),
            timing: obj.timing,
            retain_until: obj.retain_until(),
        };
        let (entry, seq) = {
            let mut idx = shared.lock_index();
            if shared.log.purged_since(epoch, &obj.meta) != SincePurge::Untouched {
                return; // purged since it was admitted
            }
            if idx.holds(obj.key(), &obj.vary, &obj.variant, obj.timing.stored_at) {
                return; // already on disk
            }
            let seq = idx.next_seq;
            idx.next_seq += 1;
            let entry = Arc::new(DiskEntry::new(stored, seq, a.len, total, false));
            idx.insert(entry.clone(), shared.limits.max_variants);
            (entry, seq)
        };
        let header = record::Header {
            kind: Kind::Object,
            seq,
            head_len: head.len() as u32,
            body_len: obj.body.len() as u64,
            head_crc: crc32fast::hash(&head),
        };
        let mut prefix = Vec::with_capacity(HEADER_LEN + head.len());
        prefix.extend_from_slice(&header.encode());
        prefix.extend_from_slice(&head);
        let crc = crc32fast::hash(&obj.body).to_le_bytes();
        let written = a
            .file
            .write_all(&prefix)
            .and_then(|_| a.file.write_all(&obj.body))
            .and_then(|_| a.file.write_all(&crc));
        match written {
            Ok(()) => {
                a.len += total;
                a.dirty = true;
                shared.disk_bytes.fetch_add(total, Ordering::Relaxed);
                entry.mark_written();
                shared.counters.wrote(total, obj.body.len() as u64);
            }
            Err(e) => {
                shared.lock_index().remove(entry.meta.id);
                // Cut the partial record off, so the segment stays readable to its end.
                let _ = a.file.set_len(a.len);
                self.fail("writing a record", &e);
            }
        }
    }
}
