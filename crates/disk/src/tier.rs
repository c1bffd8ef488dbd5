//! The disk tier as one handle: opening a folder, reading, admitting, purging, syncing.
//!
//! Owns [`DiskTier`] and [`DiskConfig`], the start-up sequence (load the purge log, list the
//! segments, start the writer and the rebuild threads) and the writer's lifetime: the last
//! handle dropped closes the writer's queue and waits for it to sync. What is live and what
//! is purged is decided in the state, index and rebuild modules; this is their front.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vanish_engine::purge::log::PurgeLog;
use vanish_engine::purge::selector::{PurgeMode, Target};
use vanish_engine::store::StoreError;
use vanish_engine::{CachedObject, PurgeRequest, ResourceKey};

use crate::admission::Admit;
use crate::index::{segment_of, DiskIndex};
use crate::metrics;
use crate::purge_log::PurgeFile;
use crate::segments::{self, Files};
use crate::state::{DiskPurge, Job, Limits, Shared};
use crate::writer::Writer;

/// Admissions waiting for the writer at most; past it they are skipped (and counted).
const QUEUE: usize = 4096;

/// Where the disk tier lives and how big it may grow.
#[derive(Debug, Clone)]
pub struct DiskConfig {
    /// The folder (created if missing): `segments/` and `purges.log` live in it.
    pub path: PathBuf,
    /// Bytes of segment files at most.
    pub capacity: u64,
    /// Which objects are written.
    pub admit: Admit,
    /// Variants kept per resource.
    pub max_variants: usize,
}

impl DiskConfig {
    /// A tier in `path` holding at most `capacity` bytes, admitting on second request.
    pub fn new(path: impl Into<PathBuf>, capacity: u64) -> Self {
        DiskConfig {
            path: path.into(),
            capacity,
            admit: Admit::Second,
            max_variants: vanish_memory::DEFAULT_MAX_VARIANTS,
        }
    }

    fn limits(&self) -> Limits {
        let segment_size = (self.capacity / 16).clamp(64 * 1024, 256 * 1024 * 1024);
        Limits {
            capacity: self.capacity,
            segment_size,
            max_variants: self.max_variants.max(1),
            max_record: (self.capacity / 4).max(64 * 1024),
        }
    }
}

/// What the tier holds and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Objects indexed.
    pub objects: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Bytes of live object records.
    pub live_bytes: u64,
    /// Configured capacity.
    pub capacity: u64,
    /// Lookups answered from disk.
    pub hits: u64,
    /// Records read.
    pub reads: u64,
    /// Records written.
    pub writes: u64,
    /// Bytes written (records and purge log).
    pub written_bytes: u64,
    /// Body bytes of the objects written.
    pub body_bytes: u64,
    /// Records dropped for a failed checksum.
    pub damaged: u64,
    /// I/O errors.
    pub io_errors: u64,
    /// Segments evicted for capacity.
    pub evicted_segments: u64,
    /// Admissions not written.
    pub skipped: u64,
    /// The index is still being rebuilt.
    pub rebuilding: bool,
    /// Milliseconds the rebuild took (0 while it runs).
    pub rebuild_ms: u64,
    /// Writes are off after an I/O error.
    pub degraded: bool,
}

struct WriterHandle {
    tx: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.tx.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self
            .thread
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = t.join();
        }
    }
}

/// The disk tier. Cheap to clone; the last clone dropped syncs and stops the writer.
#[derive(Clone)]
pub struct DiskTier {
    // Dropped first: the writer drains its queue and syncs before the state goes.
    writer: Arc<WriterHandle>,
    shared: Arc<Shared>,
    admit: Admit,
}

impl DiskTier {
    /// Opens (or creates) the tier in `config.path` and starts rebuilding its index in the
    /// background. Fails only when the folder cannot be used at all.
    pub fn open(config: &DiskConfig) -> io::Result<DiskTier> {
        let dir = config.path.clone();
        fs::create_dir_all(segments::folder(&dir))
            .map_err(|e| io::Error::new(e.kind(), format!("disk tier {}: {e}", dir.display())))?;
        let (purges, mut loaded) = PurgeFile::open(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("disk tier {}: purge log: {e}", dir.display()),
            )
        })?;
        let listed = segments::list(&dir)?;
        let max_old = listed.last().map_or(0, |(id, _)| *id);
        let first_new = max_old.max(segment_of(loaded.max_seq)) + 1;
        let files = Files::default();
        let mut old = Vec::with_capacity(listed.len());
        for (id, len) in listed {
            match files.open(&dir, id) {
                Ok(()) => old.push((id, len)),
                Err(e) => {
                    tracing::warn!(error = %e, segment = id, "disk tier: cannot open a segment; skipped")
                }
            }
        }
        if loaded.distrust {
            tracing::warn!(dir = %dir.display(), "disk tier: the purge log is damaged; every object stored before this start is treated as purged");
            loaded.all_boundary = (first_new as u64) << 32;
        }
        let mut idx = DiskIndex::default();
        idx.next_seq = (first_new as u64) << 32;
        idx.all_boundary = loaded.all_boundary;
        idx.soft_all = loaded.soft_all;
        let counters = crate::metrics::Counters::default();
        counters.damaged(loaded.damaged);
        let shared = Arc::new(Shared {
            dir,
            limits: config.limits(),
            index: Mutex::new(idx),
            log: PurgeLog::default(),
            files,
            purges: Mutex::new(purges),
            appended: Mutex::new(Vec::new()),
            ready: AtomicBool::new(false),
            degraded: AtomicBool::new(false),
            disk_bytes: AtomicU64::new(old.iter().map(|(_, l)| l).sum()),
            counters,
            rebuild_ms: AtomicU64::new(0),
            first_new,
        });
        metrics::degraded(false);
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let writer = Writer::new(shared.clone(), old.clone());
        let thread = std::thread::Builder::new()
            .name("vanish-disk-writer".into())
            .spawn(move || writer.run(rx))?;
        let s = shared.clone();
        std::thread::Builder::new()
            .name("vanish-disk-rebuild".into())
            .spawn(move || crate::rebuild::run(s, old, loaded))?;
        Ok(DiskTier {
            writer: Arc::new(WriterHandle {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            }),
            shared,
            admit: config.admit,
        })
    }

    /// The admission policy.
    pub fn admit_policy(&self) -> Admit {
        self.admit
    }

    fn send(&self, job: Job, wait: bool) -> bool {
        let tx = self
            .writer
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(tx) = tx else { return false };
        if wait {
            return tx.send(job).is_ok();
        }
        match tx.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// The stored variants of a resource, read back and checked (none while rebuilding).
    pub fn read(&self, key: &ResourceKey) -> Vec<CachedObject> {
        let out = self.shared.read(key);
        if !out.is_empty() {
            self.shared.counters.hit();
        }
        out
    }

    /// The epoch to stamp an admission with before it is handed to [`DiskTier::admit`].
    pub fn epoch(&self) -> u64 {
        self.shared.log.epoch()
    }

    /// True when writing is on.
    pub fn accepting(&self) -> bool {
        !self.shared.degraded.load(Ordering::Acquire)
    }

    /// Queues an object for writing, unless a purge since `epoch` matches it by then.
    pub fn admit(&self, object: CachedObject, epoch: u64) {
        if !self.send(Job::Write(Box::new(object), epoch), false) {
            self.shared.counters.skipped();
        }
    }

    /// True when a variant of the resource is on disk (a refill should replace it).
    pub fn holds_key(&self, key: &ResourceKey) -> bool {
        self.shared.lock_index().get(key).is_some()
    }

    /// Purges (or counts) on disk; returns once the purge is durable.
    pub fn purge(&self, req: &Arc<PurgeRequest>) -> Result<DiskPurge, StoreError> {
        let out = self.shared.purge(req)?;
        let hard_all = !req.dry_run
            && req.mode == PurgeMode::Hard
            && req
                .selectors
                .iter()
                .any(|s| matches!(s.target, Target::All) && s.headers.is_empty());
        if hard_all {
            self.send(Job::DropAll, true);
        }
        Ok(out)
    }

    /// Waits (up to `limit`) until everything queued is written and synced.
    pub fn flush(&self, limit: Duration) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Job::Flush(tx), true) && rx.recv_timeout(limit).is_ok()
    }

    /// True once the index is rebuilt.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// Sizes and counters.
    pub fn stats(&self) -> DiskStats {
        let (objects, live_bytes) = {
            let idx = self.shared.lock_index();
            (idx.len() as u64, idx.live_bytes())
        };
        let c = &self.shared.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DiskStats {
            objects,
            bytes: n(&self.shared.disk_bytes),
            live_bytes,
            capacity: self.shared.limits.capacity,
            hits: n(&c.hits),
            reads: n(&c.reads),
            writes: n(&c.writes),
            written_bytes: n(&c.written_bytes),
            body_bytes: n(&c.body_bytes),
            damaged: n(&c.damaged),
            io_errors: n(&c.io_errors),
            evicted_segments: n(&c.evicted_segments),
            skipped: n(&c.skipped),
            rebuilding: !self.is_ready(),
            rebuild_ms: n(&self.shared.rebuild_ms),
            degraded: self.shared.degraded.load(Ordering::Acquire),
        }
    }
}
