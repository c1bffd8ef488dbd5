//! Vanish's embedded in-memory store: the default, bounded by bytes.
//!
//! Owns the `moka` cache of resources (TinyLFU admission, LRU eviction, a byte weigher and
//! per-entry expiry at the end of each object's stale windows) and keeps the engine's
//! [`Index`] in step with it: fills and purges update both under one lock, and evictions and
//! expiries reach the index through moka's eviction listener. Hits never take that lock.
//!
//! ```
//! use vanish_memory::MemoryStore;
//! use vanish_engine::Store;
//! let store = MemoryStore::new(64 * 1024 * 1024);
//! assert_eq!(store.stats().objects, 0);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod expiry;
mod reclaim;

use std::collections::HashMap;
use std::future::{ready, Future};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moka::notification::RemovalCause;
use moka::sync::Cache as Moka;
use vanish_engine::object::{CachedObject, ObjectId};
use vanish_engine::purge::index::{Index, IndexStats};
use vanish_engine::purge::log::{PurgeLog, SincePurge, DEFAULT_LOG_BYTES, DEFAULT_LOG_CAPACITY};
use vanish_engine::purge::selector::{PurgeMode, Target};
use vanish_engine::store::{Inserted, PurgeReport, Resource, Store, StoreError, StoreStats};
use vanish_engine::{PurgeRequest, ResourceKey};

use crate::reclaim::Removed;

/// Purged objects reclaimed per hold of the index lock (fills and purges wait at most this).
const RECLAIM_BATCH: usize = 64;

/// Most variants kept per resource; the oldest goes first.
pub const DEFAULT_MAX_VARIANTS: usize = 200;

/// The in-memory store. Cheap to clone; clones share the same cache.
#[derive(Clone)]
pub struct MemoryStore {
    // Declared before `inner`, so dropped first: the last clone stops and joins the
    // housekeeper, then frees the store itself on the dropping thread.
    _housekeeper: Arc<reclaim::Housekeeper>,
    inner: Arc<Inner>,
}

/// What moka holds per resource: the `all`-purge generation it was stored in, and its variants.
type Entry = (u64, Arc<Resource>);

struct Inner {
    cache: Moka<ResourceKey, Entry>,
    /// Bumped by each hard `all` purge; entries of older generations are never served.
    generation: AtomicU64,
    index: Mutex<Index<Arc<CachedObject>>>,
    /// Ids moka evicted or expired, waiting to leave the index.
    removed: Removed,
    /// Ids of hard-purged (dead) objects, waiting to leave moka and the index.
    dead: Removed,
    log: PurgeLog,
    capacity: u64,
    max_variants: usize,
    /// Unix ms of the latest soft purge of everything (0: none).
    soft_all_ms: AtomicU64,
    /// Wakes the housekeeper when purged objects await reclamation.
    wake_reclaimer: Arc<reclaim::Wake>,
}

impl MemoryStore {
    /// A store holding at most `capacity_bytes` of objects.
    pub fn new(capacity_bytes: u64) -> Self {
        Self::with_max_variants(capacity_bytes, DEFAULT_MAX_VARIANTS)
    }

    /// A store with a limit on variants per resource.
    ///
    /// The capacity covers the purge log too: up to an eighth of it (at most
    /// [`DEFAULT_LOG_BYTES`]) is kept for the selectors of recent purges, the rest for objects.
    pub fn with_max_variants(capacity_bytes: u64, max_variants: usize) -> Self {
        let log_bytes = (capacity_bytes / 8).min(DEFAULT_LOG_BYTES as u64);
        let removed = Removed::default();
        let listener_queue = removed.clone();
        let cache = Moka::builder()
            .max_capacity(capacity_bytes - log_bytes)
            .weigher(|_k: &ResourceKey, (_, r): &Entry| {
                r.variants
                    .iter()
                    .fold(0u32, |acc, o| acc.saturating_add(o.weight()))
            })
            .expire_after(expiry::RetainUntil)
            .eviction_listener(move |_k, (_, r): Entry, cause| {
                if cause != RemovalCause::Replaced {
                    listener_queue.push(r.variants.iter().map(|o| o.id()));
                }
            })
            .build();
        let inner = Arc::new(Inner {
            cache,
            generation: AtomicU64::new(0),
            index: Mutex::new(Index::new()),
            removed,
            dead: Removed::default(),
            log: PurgeLog::with_limits(DEFAULT_LOG_CAPACITY, log_bytes as usize),
            capacity: capacity_bytes,
            max_variants: max_variants.max(1),
            soft_all_ms: AtomicU64::new(0),
            wake_reclaimer: Arc::default(),
        });
        let housekeeper =
            reclaim::Housekeeper::spawn(Arc::downgrade(&inner), inner.wake_reclaimer.clone());
        MemoryStore {
            _housekeeper: Arc::new(housekeeper),
            inner,
        }
    }

    /// Runs pending evictions, expiries and reclamations of purged objects now, and brings
    /// the index in step (tests, benches).
    pub fn sync(&self) {
        self.inner.reclaim_dead(usize::MAX);
        self.inner.cache.run_pending_tasks();
        let mut idx = self.inner.lock_index();
        self.inner.reclaim(&mut idx);
    }

    /// Entry counts of the invalidation index.
    pub fn index_stats(&self) -> IndexStats {
        self.inner.lock_index().stats()
    }

    /// Resources the underlying cache holds (after pending tasks run).
    pub fn resource_count(&self) -> u64 {
        self.inner.cache.entry_count()
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl Inner {
    fn lock_index(&self) -> MutexGuard<'_, Index<Arc<CachedObject>>> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes hard-purged objects out of moka and the index, `batch` at a time under the index
    /// lock (so fills wait at most one batch). Returns how many were reclaimed.
    fn reclaim_dead(&self, batch: usize) -> usize {
        let mut done = 0;
        loop {
            // Taken under the index lock: `sync` (which waits for this lock) then never finds
            // the queue empty while killed objects are still on their way out of the index.
            let mut idx = self.lock_index();
            let ids = self.dead.take(batch.min(RECLAIM_BATCH));
            if ids.is_empty() {
                return done;
            }
            done += ids.len();
            let mut keys: HashMap<ResourceKey, ()> = HashMap::new();
            for id in ids {
                if let Some(o) = idx.remove(id) {
                    keys.insert(o.key().clone(), ());
                }
            }
            for key in keys.into_keys() {
                let Some(r) = self.get_current(&key) else {
                    continue;
                };
                let live: Vec<_> = r
                    .variants
                    .iter()
                    .filter(|o| !o.is_dead())
                    .cloned()
                    .collect();
                if live.len() == r.variants.len() {
                    continue;
                }
                if live.is_empty() {
                    self.cache.invalidate(&key);
                } else {
                    let generation = self.generation.load(Ordering::Acquire);
                    self.cache
                        .insert(key, (generation, Arc::new(Resource { variants: live })));
                }
            }
            drop(idx);
            if done >= batch {
                return done;
            }
            // Let fills and purges waiting on the lock go first.
            std::thread::yield_now();
        }
    }

    /// Removes from the index the objects moka evicted or expired, unless they are still
    /// stored (a resource evicted and re-inserted between our read and write).
    fn reclaim(&self, idx: &mut Index<Arc<CachedObject>>) {
        for id in self.removed.drain() {
            let Some(obj) = idx.get(id) else { continue };
            let still_stored = self
                .get_current(obj.key())
                .is_some_and(|r| r.variants.iter().any(|o| o.id() == id));
            if !still_stored {
                idx.remove(id);
            }
        }
    }

    /// The resource stored for `key`, unless a later `all` purge removed it.
    fn get_current(&self, key: &ResourceKey) -> Option<Arc<Resource>> {
        let (generation, r) = self.cache.get(key)?;
        (generation == self.generation.load(Ordering::Acquire)).then_some(r)
    }

    fn lookup(&self, key: &ResourceKey) -> Option<Arc<Resource>> {
        let r = self.get_current(key)?;
        let soft_all = self.soft_all_ms.load(Ordering::Acquire);
        if soft_all != 0 {
            let at = UNIX_EPOCH + Duration::from_millis(soft_all);
            for o in &r.variants {
                if o.timing.stored_at < at {
                    o.mark_soft_purged(at);
                }
            }
        }
        Some(r)
    }

    fn insert(&self, object: CachedObject, fill_epoch: u64) -> Inserted {
        let now = SystemTime::now();
        let mut idx = self.lock_index();
        self.reclaim(&mut idx);
        let outcome = match self.log.purged_since(fill_epoch, &object.meta) {
            SincePurge::Hard => return Inserted::Dropped,
            SincePurge::Soft => {
                object.mark_soft_purged(now);
                Inserted::MarkedStale
            }
            SincePurge::Untouched => Inserted::Fresh,
        };
        let key = object.key().clone();
        let mut variants: Vec<Arc<CachedObject>> = Vec::new();
        let mut dropped: Vec<ObjectId> = Vec::new();
        if let Some(existing) = self.get_current(&key) {
            for o in &existing.variants {
                let same_variant = o.vary == object.vary && o.variant == object.variant;
                if o.is_dead() {
                    continue; // its reclamation is queued
                }
                if same_variant || o.retain_until() <= now {
                    dropped.push(o.id());
                } else {
                    variants.push(o.clone());
                }
            }
        }
        while variants.len() >= self.max_variants {
            dropped.push(variants.remove(0).id());
        }
        let object = Arc::new(object);
        variants.push(object.clone());
        let generation = self.generation.load(Ordering::Acquire);
        self.cache
            .insert(key, (generation, Arc::new(Resource { variants })));
        for id in dropped {
            idx.remove(id);
        }
        idx.insert(object);
        outcome
    }

    fn purge(&self, req: Arc<PurgeRequest>) -> PurgeReport {
        let now = SystemTime::now();
        let is_all = req
            .selectors
            .iter()
            .any(|s| matches!(s.target, Target::All) && s.headers.is_empty());
        let mut idx = self.lock_index();
        self.reclaim(&mut idx);
        if req.dry_run {
            let matched = if is_all {
                idx.len().saturating_sub(self.dead.len())
            } else {
                idx.count(&req)
            };
            return PurgeReport {
                matched: matched as u64,
            };
        }
        self.log.record(req.clone());
        if is_all {
            let matched = idx.len().saturating_sub(self.dead.len()) as u64;
            match req.mode {
                PurgeMode::Hard => {
                    self.dead.drain(); // their index and moka entries go with the swap
                                       // O(1): older generations are never served again (checked under the
                                       // index lock that inserts hold); moka reclaims their memory lazily.
                    self.generation.fetch_add(1, Ordering::AcqRel);
                    let old = std::mem::take(&mut *idx);
                    self.cache.invalidate_all();
                    drop(idx);
                    // Dropping a large index takes time: do it off the request path.
                    std::thread::spawn(move || drop(old));
                }
                PurgeMode::Soft => self
                    .soft_all_ms
                    .store(unix_ms(now).max(1), Ordering::Release),
            }
            return PurgeReport { matched };
        }
        let matched = match req.mode {
            PurgeMode::Soft => idx.for_each_match(&req, |o| o.mark_soft_purged(now)),
            PurgeMode::Hard => {
                // O(matched) atomic marks: no lookup sees these objects after this returns.
                // Unlinking them from moka and the index happens off the request's path.
                let mut ids = Vec::new();
                let n = idx.for_each_match(&req, |o| {
                    o.kill();
                    ids.push(o.id());
                });
                drop(idx);
                if n > 0 {
                    self.dead.push(ids.into_iter());
                    self.wake_reclaimer.notify_one();
                }
                n
            }
        };
        PurgeReport {
            matched: matched as u64,
        }
    }
}

impl Store for MemoryStore {
    fn lookup(
        &self,
        key: &ResourceKey,
    ) -> impl Future<Output = Result<Option<Arc<Resource>>, StoreError>> + Send {
        ready(Ok(self.inner.lookup(key)))
    }

    fn insert(
        &self,
        object: CachedObject,
        fill_epoch: u64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send {
        ready(Ok(self.inner.insert(object, fill_epoch)))
    }

    fn purge(
        &self,
        request: Arc<PurgeRequest>,
    ) -> impl Future<Output = Result<PurgeReport, StoreError>> + Send {
        ready(Ok(self.inner.purge(request)))
    }

    fn epoch(&self) -> u64 {
        self.inner.log.epoch()
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn stats(&self) -> StoreStats {
        let pending = self.inner.dead.len() as u64;
        StoreStats {
            objects: (self.inner.lock_index().len() as u64).saturating_sub(pending),
            resources: self.inner.cache.entry_count(),
            bytes: self.inner.cache.weighted_size() + self.inner.log.bytes() as u64,
            capacity: self.inner.capacity,
        }
    }
}
