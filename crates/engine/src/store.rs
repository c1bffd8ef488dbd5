//! The `Store` trait: where objects live, and what every store must guarantee.
//!
//! Owns the contract between the engine and a storage backend (the memory store, Redis):
//! lookup by resource, insert honouring read-after-purge, purge by selectors in O(matched).
//! It holds no data itself.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::HeaderMap;

use crate::coding::{Accepted, Coding, Rank};
use crate::key::ResourceKey;
use crate::object::CachedObject;
use crate::purge::selector::PurgeRequest;
use crate::variant::{VariantKey, VaryNames};
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
    /// them), so the most recent matching response wins; among the content codings stored,
    /// the one the client is best served in wins ([`Accepted::rank`]).
    pub fn select(&self, headers: &HeaderMap) -> Option<&Arc<CachedObject>> {
        self.select_in(headers, ValueForm::Normal)
    }

    /// [`Resource::select`] with the request's values compared in `form` (the one the
    /// variants were stored with: [`crate::CacheConfig::vary_values`]).
    pub fn select_in(&self, headers: &HeaderMap, form: ValueForm) -> Option<&Arc<CachedObject>> {
        self.select_for(headers, form, &Accepted::of(headers))
    }

    /// [`Resource::select_in`] for a client that accepts `accepted`.
    ///
    /// One pass, newest first: an object is considered only when its coding serves the client
    /// better than the best match found so far, and the search stops at a best-ranked match,
    /// so the common hit (one object, in the first coding tried, without `Vary`) computes no
    /// variant key and allocates nothing. Each variant key computed is reused for the next
    /// objects with the same names and coding.
    pub fn select_for(
        &self,
        headers: &HeaderMap,
        form: ValueForm,
        accepted: &Accepted,
    ) -> Option<&Arc<CachedObject>> {
        let mut best: Option<(Rank, &Arc<CachedObject>)> = None;
        let mut last: Option<(&VaryNames, Coding, VariantKey)> = None;
        for obj in self.variants.iter().rev() {
            if obj.is_dead() {
                continue;
            }
            let Some(coding) = obj.coding() else {
                continue;
            };
            let Some(rank) = accepted.rank(coding) else {
                continue;
            };
            if best.is_some_and(|(b, _)| b <= rank) {
                continue;
            }
            let matches = if obj.vary.is_empty() {
                obj.variant.as_bytes().is_empty()
            } else {
                let key = match &last {
                    Some((names, c, key)) if *names == &obj.vary && *c == coding => key,
                    _ => {
                        let k = obj.vary.variant_key_coded(headers, form, coding);
                        &last.insert((&obj.vary, coding, k)).2
                    }
                };
                *key == obj.variant
            };
            if matches {
                if rank.is_best() {
                    return Some(obj);
                }
                best = Some((rank, obj));
            }
        }
        best.map(|(_, obj)| obj)
    }
}

/// A store failure (the memory store never fails; a network store can).
///
/// Every variant names the backend (`"redis"`) and says why in words; [`fmt::Display`] starts
/// with `store error: ` and is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The backend cannot be reached now: not connected, the connection was lost, a command
    /// timed out, the subscription could not be made. Retrying later may succeed.
    Unavailable {
        /// The backend, e.g. `"redis"`.
        backend: &'static str,
        /// What failed.
        reason: String,
    },
    /// The backend refused or failed a command.
    Command {
        /// The backend, e.g. `"redis"`.
        backend: &'static str,
        /// What it answered.
        reason: String,
    },
    /// The store's settings do not fit: a bad address, or a layout other nodes disagree with.
    Misconfigured {
        /// The backend, e.g. `"redis"`.
        backend: &'static str,
        /// What is wrong, naming the setting.
        reason: String,
    },
    /// Data that does not encode or decode: an object that cannot be serialised, or a value
    /// the backend returned that does not parse.
    Corrupt {
        /// The backend, e.g. `"redis"`.
        backend: &'static str,
        /// What did not parse.
        reason: String,
    },
    /// A purge that was not applied, or not wholly: nothing may be assumed purged.
    NotApplied {
        /// Why.
        cause: Box<StoreError>,
        /// What became of the purge, and what to do (e.g. "the purge was not applied (retry
        /// when Redis is back)").
        outcome: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable { backend, reason } => {
                write!(f, "store error: {backend} unreachable: {reason}")
            }
            StoreError::Command { backend, reason }
            | StoreError::Misconfigured { backend, reason }
            | StoreError::Corrupt { backend, reason } => {
                write!(f, "store error: {backend}: {reason}")
            }
            StoreError::NotApplied { cause, outcome } => write!(f, "{cause}; {outcome}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::NotApplied { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

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
