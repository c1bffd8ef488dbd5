//! The hybrid store: the memory store as the hot tier, the disk tier beneath it.
//!
//! Owns the [`Store`] implementation that composes them: lookups try memory, then disk
//! (promoting what disk returns into memory, guarded by the memory store's purge log);
//! inserts go to memory and, when admitted, are queued for disk; purges run on both and are
//! acknowledged once the disk's part is durable. It keeps no objects of its own.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use vanish_engine::store::{Inserted, PurgeReport, Resource, Store, StoreError, StoreStats};
use vanish_engine::{CachedObject, PurgeRequest, ResourceKey};
use vanish_memory::MemoryStore;

use crate::admission::{variant_hash, Admit, Doorkeeper};
use crate::tier::{DiskConfig, DiskStats, DiskTier};

/// Variants the doorkeeper remembers.
const DOORKEEPER: usize = 1 << 20;

/// The memory store over the disk tier. Cheap to clone; clones share both tiers.
#[derive(Clone)]
pub struct HybridStore {
    memory: MemoryStore,
    disk: DiskTier,
    doorkeeper: Arc<Doorkeeper>,
}

impl HybridStore {
    /// Opens the disk tier in `config.path` beneath `memory`. The store serves at once; the
    /// disk's objects become hits once its index is rebuilt ([`HybridStore::disk_stats`]).
    pub fn open(memory: MemoryStore, config: &DiskConfig) -> std::io::Result<Self> {
        Ok(HybridStore {
            memory,
            disk: DiskTier::open(config)?,
            doorkeeper: Arc::new(Doorkeeper::new(DOORKEEPER)),
        })
    }

    /// The memory tier.
    pub fn memory(&self) -> &MemoryStore {
        &self.memory
    }

    /// The disk tier.
    pub fn disk(&self) -> &DiskTier {
        &self.disk
    }

    /// The disk tier's sizes and counters.
    pub fn disk_stats(&self) -> DiskStats {
        self.disk.stats()
    }

    /// Writes everything queued for disk and syncs it (a clean shutdown calls this).
    pub fn flush(&self, limit: Duration) -> bool {
        self.disk.flush(limit)
    }

    fn on_memory_hit(&self, r: &Resource) {
        if self.disk.admit_policy() != Admit::Second || !self.disk.accepting() {
            return;
        }
        for o in &r.variants {
            if o.is_dead() || o.soft_purged_at().is_some() {
                continue;
            }
            if self.doorkeeper.on_hit(variant_hash(o)) {
                self.disk.admit((**o).clone(), self.disk.epoch());
            }
        }
    }

    async fn lookup_both(&self, key: &ResourceKey) -> Result<Option<Arc<Resource>>, StoreError> {
        if let Some(r) = self.memory.lookup(key).await? {
            self.on_memory_hit(&r);
            return Ok(Some(r));
        }
        let epoch = self.memory.epoch();
        let objects = self.disk.read(key);
        if objects.is_empty() {
            return Ok(None);
        }
        let mut variants = Vec::with_capacity(objects.len());
        for o in objects {
            self.doorkeeper.admitted(variant_hash(&o));
            let copy = o.clone();
            // Through the memory store's purge log: a purge since the read began drops it.
            match self.memory.insert(o, epoch).await? {
                Inserted::Dropped => continue,
                Inserted::MarkedStale => copy.mark_soft_purged(SystemTime::now()),
                Inserted::Fresh => {}
            }
            variants.push(Arc::new(copy));
        }
        if variants.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Resource { variants })))
    }

    async fn insert_both(
        &self,
        object: CachedObject,
        fill_epoch: u64,
    ) -> Result<Inserted, StoreError> {
        let disk_epoch = self.disk.epoch();
        let admit = self.disk.accepting()
            && match self.disk.admit_policy() {
                Admit::First => true,
                Admit::Second => {
                    let seen = self.doorkeeper.on_fill(variant_hash(&object));
                    seen || self.disk.holds_key(object.key())
                }
            };
        let copy = admit.then(|| object.clone());
        let outcome = self.memory.insert(object, fill_epoch).await?;
        if let (Inserted::Fresh, Some(copy)) = (outcome, copy) {
            self.doorkeeper.admitted(variant_hash(&copy));
            self.disk.admit(copy, disk_epoch);
        }
        Ok(outcome)
    }

    async fn purge_both(&self, request: Arc<PurgeRequest>) -> Result<PurgeReport, StoreError> {
        // Disk first: its acknowledgement is the durable one. Objects in both tiers are
        // counted once (the memory copy of a matched disk entry is looked up: O(matched)).
        let disk = self.disk.purge(&request)?;
        let mut overlap = 0u64;
        for e in &disk.entries {
            if let Some(r) = self.memory.lookup(&e.meta.key).await? {
                if r.variants.iter().any(|o| {
                    !o.is_dead()
                        && o.timing.stored_at == e.stored_at
                        && o.vary == e.vary
                        && o.variant == e.variant
                }) {
                    overlap += 1;
                }
            }
        }
        let memory = self.memory.purge(request.clone()).await?;
        let matched = if disk.entries.is_empty() && disk.matched > 0 {
            // `all`: the tiers' counts cannot be told apart cheaply.
            memory.matched.max(disk.matched)
        } else {
            memory.matched + disk.matched - overlap.min(memory.matched)
        };
        Ok(PurgeReport { matched })
    }
}

impl Store for HybridStore {
    fn lookup(
        &self,
        key: &ResourceKey,
    ) -> impl Future<Output = Result<Option<Arc<Resource>>, StoreError>> + Send {
        self.lookup_both(key)
    }

    fn insert(
        &self,
        object: CachedObject,
        fill_epoch: u64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send {
        self.insert_both(object, fill_epoch)
    }

    fn purge(
        &self,
        request: Arc<PurgeRequest>,
    ) -> impl Future<Output = Result<PurgeReport, StoreError>> + Send {
        self.purge_both(request)
    }

    fn epoch(&self) -> u64 {
        self.memory.epoch()
    }

    fn stats(&self) -> StoreStats {
        let m = self.memory.stats();
        let d = self.disk.stats();
        StoreStats {
            objects: m.objects + d.objects,
            resources: m.resources,
            bytes: m.bytes + d.bytes,
            capacity: m.capacity + d.capacity,
        }
    }

    fn name(&self) -> &'static str {
        "memory+disk"
    }

    fn health(&self) -> Result<(), StoreError> {
        if self.disk.accepting() {
            Ok(())
        } else {
            Err(StoreError::Unavailable {
                backend: "disk",
                reason: "writes are off after an I/O error; serving from memory".into(),
            })
        }
    }
}
