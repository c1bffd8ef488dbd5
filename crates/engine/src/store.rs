//! The `Store` trait: where objects live, and what every store must guarantee.
//!
//! Owns the contract between the engine and a storage backend (the memory store, Redis):
//! lookup by resource, insert honouring read-after-purge, purge by selectors in O(matched).
//! It holds no data itself.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::HeaderMap;

use crate::key::ResourceKey;
use crate::object::CachedObject;
use crate::purge::selector::PurgeRequest;
use crate::variant::VaryNames;
use crate::vary_normalize::ValueForm;

/// The variants currently stored for one resource, newest last.
#[derive(Debug, Default, Clone)]
pub struct Resource {
    /// The stored variants.
    pub variants: Vec<Arc<CachedObject>>,
}

impl Resource {
    /// The variant a request with these headers selects, if stored.
    ///
    /// Variants are tried newest first, each with its own `Vary` names (an origin may change
    /// them), so the most recent matching response wins.
    pub fn select(&self, headers: &HeaderMap) -> Option<&Arc<CachedObject>> {
        self.select_in(headers, ValueForm::Normal)
    }

    /// [`Resource::select`] with the request's values compared in `form` (the one the
    /// variants were stored with: [`crate::CacheConfig::vary_values`]).
    pub fn select_in(&self, headers: &HeaderMap, form: ValueForm) -> Option<&Arc<CachedObject>> {
        let mut last: Option<(&VaryNames, crate::variant::VariantKey)> = None;
        for obj in self.variants.iter().rev() {
            if obj.is_dead() {
                continue;
            }
            if obj.vary.is_empty() {
                if obj.variant.as_bytes().is_empty() {
                    return Some(obj);
                }
                continue;
            }
            let key = match &last {
                Some((names, key)) if *names == &obj.vary => key.clone(),
                _ => {
                    let k = obj.vary.variant_key_in(headers, form);
                    last = Some((&obj.vary, k.clone()));
                    k
                }
            };
            if key == obj.variant {
                return Some(obj);
            }
        }
        None
    }
}

/// A store failure (the memory store never fails; a network store can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// What became of an insert, given the purges that ran during its fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored fresh.
    Fresh,
    /// A soft purge matched while the fill ran: stored, marked stale.
    MarkedStale,
    /// A hard purge matched while the fill ran: not stored.
    Dropped,
}

/// The answer to a purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeReport {
    /// Objects (variants) matched: removed, marked stale, or counted in a dry run.
    pub matched: u64,
}

/// Sizes a store reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Objects (variants) indexed.
    pub objects: u64,
    /// Resources held.
    pub resources: u64,
    /// Bytes the objects weigh (the memory store adds what its purge log holds).
    pub bytes: u64,
    /// Configured capacity in bytes.
    pub capacity: u64,
}

/// A place to keep cached objects, with the invalidation index beside them.
///
/// Every implementation guarantees (`docs/architecture.md`, "Guarantees every store keeps"):
/// - a purge costs O(objects matched) plus a logarithm of the cache size;
/// - an insert stamped with `fill_epoch` is dropped (or marked stale) if a purge acknowledged
///   after that epoch matches it;
/// - index entries go with their objects on eviction and expiry.
pub trait Store: Send + Sync + 'static {
    /// The variants stored for a resource.
    fn lookup(
        &self,
        key: &ResourceKey,
    ) -> impl Future<Output = Result<Option<Arc<Resource>>, StoreError>> + Send;

    /// Stores an object (replacing the same variant) unless a purge since `fill_epoch`
    /// matches it.
    fn insert(
        &self,
        object: CachedObject,
        fill_epoch: u64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send;

    /// Purges (or, in a dry run, counts) what the request's selectors match.
    fn purge(
        &self,
        request: Arc<PurgeRequest>,
    ) -> impl Future<Output = Result<PurgeReport, StoreError>> + Send;

    /// The current invalidation epoch; stamp a fill with it when the fill starts.
    fn epoch(&self) -> u64;

    /// Current sizes.
    fn stats(&self) -> StoreStats;

    /// A short name for health checks and logs (`memory`, `redis`).
    fn name(&self) -> &'static str {
        "store"
    }

    /// Whether the store can serve and purge right now (`Err` says why not).
    fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
