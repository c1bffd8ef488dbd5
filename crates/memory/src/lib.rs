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
use vanish_engine::index::{Index, IndexStats};
use vanish_engine::object::{CachedObject, ObjectId};
use vanish_engine::purge_log::{PurgeLog, SincePurge};
use vanish_engine::selector::{PurgeMode, Target};
use vanish_engine::store::{Inserted, PurgeReport, Resource, Store, StoreError, StoreStats};
use vanish_engine::{PurgeRequest, ResourceKey};

use crate::reclaim::Removed;

/// Most variants kept per resource; the oldest goes first.
pub const DEFAULT_MAX_VARIANTS: usize = 200;

/// The in-memory store. Cheap to clone; clones share the same cache.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// What moka holds per resource: the `all`-purge generation it was stored in, and its variants.
type Entry = (u64, Arc<Resource>);

struct Inner {
    cache: Moka<ResourceKey, Entry>,
    /// Bumped by each hard `all` purge; entries of older generations are never served.
    generation: AtomicU64,
    index: Mutex<Index>,
    removed: Removed,
    log: PurgeLog,
    capacity: u64,
    max_variants: usize,
    /// Unix ms of the latest soft purge of everything (0: none).
    soft_all_ms: AtomicU64,
}

impl MemoryStore {
    /// A store holding at most `capacity_bytes` of objects.
    pub fn new(capacity_bytes: u64) -> Self {
        Self::with_max_variants(capacity_bytes, DEFAULT_MAX_VARIANTS)
    }

    /// A store with a limit on variants per resource.
    pub fn with_max_variants(capacity_bytes: u64, max_variants: usize) -> Self {
        let removed = Removed::default();
        let listener_queue = removed.clone();
        let cache = Moka::builder()
            .max_capacity(capacity_bytes)
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
            log: PurgeLog::default(),
            capacity: capacity_bytes,
            max_variants: max_variants.max(1),
            soft_all_ms: AtomicU64::new(0),
        });
        reclaim::spawn_housekeeper(Arc::downgrade(&inner));
        MemoryStore { inner }
    }

    /// Runs pending evictions and expiries now and brings the index in step (tests, benches).
    pub fn sync(&self) {
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
    fn lock_index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes from the index the objects moka evicted or expired, unless they are still
    /// stored (a resource evicted and re-inserted between our read and write).
    fn reclaim(&self, idx: &mut Index) {
        for id in self.removed.drain() {
            let Some(meta) = idx.get(id) else { continue };
            let still_stored = self
                .get_current(&meta.key)
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
        let meta = Arc::new(object.meta.clone());
        variants.push(Arc::new(object));
        let generation = self.generation.load(Ordering::Acquire);
        self.cache
            .insert(key, (generation, Arc::new(Resource { variants })));
        for id in dropped {
            idx.remove(id);
        }
        idx.insert(meta);
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
                idx.len()
            } else {
                idx.select(&req).len()
            };
            return PurgeReport {
                matched: matched as u64,
            };
        }
        self.log.record(req.clone());
        if is_all {
            let matched = idx.len() as u64;
            match req.mode {
                PurgeMode::Hard => {
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
        let matches = idx.select(&req);
        let mut by_key: HashMap<ResourceKey, Vec<ObjectId>> = HashMap::new();
        for m in &matches {
            by_key.entry(m.key.clone()).or_default().push(m.id);
        }
        for (key, ids) in by_key {
            let Some(res) = self.get_current(&key) else {
                for id in ids {
                    idx.remove(id);
                }
                continue;
            };
            match req.mode {
                PurgeMode::Soft => {
                    for o in res.variants.iter().filter(|o| ids.contains(&o.id())) {
                        o.mark_soft_purged(now);
                    }
                }
                PurgeMode::Hard => {
                    let keep: Vec<_> = res
                        .variants
                        .iter()
                        .filter(|o| !ids.contains(&o.id()))
                        .cloned()
                        .collect();
                    if keep.is_empty() {
                        self.cache.invalidate(&key);
                    } else {
                        let generation = self.generation.load(Ordering::Acquire);
                        self.cache
                            .insert(key, (generation, Arc::new(Resource { variants: keep })));
                    }
                    for id in ids {
                        idx.remove(id);
                    }
                }
            }
        }
        PurgeReport {
            matched: matches.len() as u64,
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
        StoreStats {
            objects: self.inner.lock_index().len() as u64,
            resources: self.inner.cache.entry_count(),
            bytes: self.inner.cache.weighted_size(),
            capacity: self.inner.capacity,
        }
    }
}
