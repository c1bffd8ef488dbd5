//! [`AnyStore`]: the store an embedded cache runs on, chosen by the `STORE` setting at start.
//!
//! Owns only the delegation to the memory store or the Redis store (each keeps its own
//! guarantees: `crates/memory`, `crates/redis`); it adds no behaviour of its own.

use std::sync::Arc;

use vanish_engine::store::{Inserted, PurgeReport, Resource, StoreError, StoreStats};
use vanish_engine::{CachedObject, PurgeRequest, ResourceKey, Store};
use vanish_memory::MemoryStore;
use vanish_redis::RedisStore;

/// The memory store (this process only) or the Redis store (shared by processes and proxies).
#[derive(Clone)]
pub enum AnyStore {
    /// `STORE: "memory"`.
    Memory(MemoryStore),
    /// `STORE: "redis://..."`.
    Redis(RedisStore),
}

impl Store for AnyStore {
    async fn lookup(&self, key: &ResourceKey) -> Result<Option<Arc<Resource>>, StoreError> {
        match self {
            AnyStore::Memory(s) => s.lookup(key).await,
            AnyStore::Redis(s) => s.lookup(key).await,
        }
    }

    async fn insert(&self, object: CachedObject, fill_epoch: u64) -> Result<Inserted, StoreError> {
        match self {
            AnyStore::Memory(s) => s.insert(object, fill_epoch).await,
            AnyStore::Redis(s) => s.insert(object, fill_epoch).await,
        }
    }

    async fn purge(&self, request: Arc<PurgeRequest>) -> Result<PurgeReport, StoreError> {
        match self {
            AnyStore::Memory(s) => s.purge(request).await,
            AnyStore::Redis(s) => s.purge(request).await,
        }
    }

    fn epoch(&self) -> u64 {
        match self {
            AnyStore::Memory(s) => s.epoch(),
            AnyStore::Redis(s) => s.epoch(),
        }
    }

    fn stats(&self) -> StoreStats {
        match self {
            AnyStore::Memory(s) => s.stats(),
            AnyStore::Redis(s) => s.stats(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            AnyStore::Memory(s) => s.name(),
            AnyStore::Redis(s) => s.name(),
        }
    }

    fn health(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(s) => s.health(),
            AnyStore::Redis(s) => s.health(),
        }
    }
}
