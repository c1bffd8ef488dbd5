//! A cached object: one stored variant of one resource, with what freshness needs.
//!
//! Owns the object's bytes, headers, timing and the metadata purges match on, and the one
//! rule an object keeps about itself: its `Content-Length` is its body's. What may be stored
//! is decided elsewhere ([`crate::freshness`] judges, the cache's admission stage builds the
//! [`Head`]); an object is never mutated after it is stored, except for its purge marks.
//! It imports only the key, variant and content-coding types.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};
use http_cache_semantics::CachePolicy;

use crate::key::ResourceKey;
use crate::variant::{VariantKey, VaryNames};

/// Unique id of a stored object, never reused within a process.
pub type ObjectId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Allocates a fresh [`ObjectId`].
pub fn next_object_id() -> ObjectId {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What purges match on: the object's resource, variant values and tags.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    /// The object's id.
    pub id: ObjectId,
    /// The resource the object belongs to.
    pub key: ResourceKey,
    /// The request's values for the response's `Vary` names (`None`: header absent).
    pub vary_values: Vec<(HeaderName, Option<String>)>,
    /// Surrogate keys / cache groups attached to the object.
    pub tags: Vec<Arc<str>>,
}

impl ObjectMeta {
    /// The request's value for a header the object varies on, if it varies on it.
    pub fn vary_value(&self, name: &HeaderName) -> Option<Option<&str>> {
        self.vary_values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }
}

/// How long an object stays fresh and how it may be served once stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// When the object was stored.
    pub stored_at: SystemTime,
    /// Its age (RFC 9111 section 4.2.3) when it was stored.
    pub age_at_store: Duration,
    /// Freshness remaining when it was stored.
    pub ttl_at_store: Duration,
    /// May be served stale while a background refresh runs, for this long after it goes stale.
    pub stale_while_revalidate: Duration,
    /// May be served stale when the origin fails, for this long after it goes stale.
    pub stale_if_error: Duration,
    /// Kept this long past its stale windows so it can be revalidated (needs a validator).
    pub keep: Duration,
}

/// One stored response (a variant of a resource).
#[derive(Debug)]
pub struct CachedObject {
    /// Everything purges match on.
    pub meta: ObjectMeta,
    /// The variant this object answers.
    pub variant: VariantKey,
    /// The names the response varied on.
    pub vary: VaryNames,
    /// Response status.
    pub status: StatusCode,
    /// Response headers to serve (hop-by-hop and tag headers removed, no `Age`).
    pub headers: HeaderMap,
    /// The complete body.
    pub body: Bytes,
    /// The body's length once decoded, for a `gzip` or `br` body (learnt when it was checked
    /// at admission): the `Content-Length` and range bounds of a decoded delivery.
    pub decoded_len: Option<u64>,
    /// The RFC 9111 policy (from `http-cache-semantics`), used for client requests that carry
    /// cache directives and for revalidation.
    pub policy: CachePolicy,
    /// Freshness timing.
    pub timing: Timing,
    /// Unix time in milliseconds of a soft purge that matched the object (0: none).
    soft_purged_at_ms: AtomicU64,
    /// Hard-purged: never served again, awaiting reclamation by its store.
    dead: AtomicBool,
}

impl Clone for CachedObject {
    /// A copy with the same id, data and purge marks (bodies and headers share storage).
    fn clone(&self) -> Self {
        let c = CachedObject::new(self.head(), self.body.clone());
        if let Some(t) = self.soft_purged_at() {
            c.mark_soft_purged(t);
        }
        if self.is_dead() {
            c.kill();
        }
        c
    }
}

/// Everything of a stored response but its body: what a fill knows once the origin's head
/// arrived and was judged storable, while the body is still being read.
#[derive(Debug, Clone)]
pub struct Head {
    /// Everything purges match on.
    pub meta: ObjectMeta,
    /// The variant the object answers.
    pub variant: VariantKey,
    /// The names the response varied on.
    pub vary: VaryNames,
    /// Response status.
    pub status: StatusCode,
    /// Response headers to serve (hop-by-hop and tag headers removed, no `Age`).
    pub headers: HeaderMap,
    /// The body's length once decoded (`gzip` and `br` bodies; see
    /// [`CachedObject::decoded_len`]).
    pub decoded_len: Option<u64>,
    /// The RFC 9111 policy.
    pub policy: CachePolicy,
    /// Freshness timing.
    pub timing: Timing,
}

/// Where an object stands at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Fresh: may be served without contacting the origin.
    Fresh,
    /// Stale for this long.
    Stale(Duration),
}

impl CachedObject {
    /// Builds an object from its head and complete body.
    ///
    /// The framing hits are served with is the body's own length, whatever the origin's
    /// headers said: `Content-Length` is set to it (and removed for `204` and `304`, which
    /// have no body).
    pub fn new(head: Head, body: Bytes) -> Self {
        let Head {
            meta,
            variant,
            vary,
            status,
            mut headers,
            decoded_len,
            policy,
            timing,
        } = head;
        if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            headers.remove(http::header::CONTENT_LENGTH);
        } else {
            headers.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(body.len()),
            );
        }
        CachedObject {
            meta,
            variant,
            vary,
            status,
            headers,
            body,
            decoded_len,
            policy,
            timing,
            soft_purged_at_ms: AtomicU64::new(0),
            dead: AtomicBool::new(false),
        }
    }

    /// A copy of everything but the body.
    pub fn head(&self) -> Head {
        Head {
            meta: self.meta.clone(),
            variant: self.variant.clone(),
            vary: self.vary.clone(),
            status: self.status,
            headers: self.headers.clone(),
            decoded_len: self.decoded_len,
            policy: self.policy.clone(),
            timing: self.timing,
        }
    }

    /// The content coding of the stored body (`None` for one the cache cannot decode, which
    /// it never stores itself).
    pub fn coding(&self) -> Option<crate::coding::Coding> {
        crate::coding::Coding::of_response(&self.headers)
    }

    /// Marks the object hard-purged: from now on no lookup returns it (stores reclaim its
    /// memory later, off the purge's path).
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Release);
    }

    /// True once [`CachedObject::kill`] ran.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.meta.id
    }

    /// The object's resource key.
    pub fn key(&self) -> &ResourceKey {
        &self.meta.key
    }

    /// Age (seconds precision is applied by the caller) at `now`.
    pub fn age(&self, now: SystemTime) -> Duration {
        self.timing.age_at_store
            + now
                .duration_since(self.timing.stored_at)
                .unwrap_or_default()
    }

    /// When the object stops being fresh (earlier if it was soft-purged).
    pub fn fresh_until(&self) -> SystemTime {
        let natural = self.timing.stored_at + self.timing.ttl_at_store;
        match self.soft_purged_at() {
            Some(t) if t < natural => t,
            _ => natural,
        }
    }

    /// Fresh or stale, at `now`.
    pub fn state(&self, now: SystemTime) -> State {
        let until = self.fresh_until();
        match now.duration_since(until) {
            Ok(d) => State::Stale(d),
            Err(_) if self.soft_purged_at().is_some_and(|t| t <= now) => {
                State::Stale(Duration::ZERO)
            }
            Err(_) => State::Fresh,
        }
    }

    /// Seconds of freshness left (negative when stale), as `Cache-Status` `ttl` shows it.
    pub fn ttl_secs(&self, now: SystemTime) -> i64 {
        match self.state(now) {
            State::Fresh => self
                .fresh_until()
                .duration_since(now)
                .unwrap_or_default()
                .as_secs() as i64,
            State::Stale(d) => -(d.as_secs() as i64),
        }
    }

    /// When the store may forget the object: end of its stale windows and keep period.
    pub fn retain_until(&self) -> SystemTime {
        let t = &self.timing;
        let stale_window = t.stale_while_revalidate.max(t.stale_if_error);
        let keep = if self.has_validator() {
            t.keep
        } else {
            Duration::ZERO
        };
        self.timing.stored_at + t.ttl_at_store + stale_window.max(keep)
    }

    /// True when the response carries an `ETag` or `Last-Modified` usable for revalidation.
    pub fn has_validator(&self) -> bool {
        self.headers.contains_key(http::header::ETAG)
            || self.headers.contains_key(http::header::LAST_MODIFIED)
    }

    /// Marks the object stale from `at` on (soft purge).
    pub fn mark_soft_purged(&self, at: SystemTime) {
        let ms = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            .max(1) as u64;
        let _ = self
            .soft_purged_at_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur == 0 || ms < cur).then_some(ms)
            });
    }

    /// When the object was soft-purged, if it was.
    pub fn soft_purged_at(&self) -> Option<SystemTime> {
        match self.soft_purged_at_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// Bytes this object holds in the heap once stored: the memory store's weight, so that a
    /// store bounded by bytes holds no more than its capacity in the process's memory.
    ///
    /// Counts the body as the allocator rounds it (jemalloc's size classes), each header twice
    /// (the served map and the copy the RFC 9111 policy keeps, with their entries, index slots
    /// and value storage), the policy's request headers, the key, variant, tags and `Vary`
    /// values, the object itself and its entries in the store's index and moka.
    /// `crates/memory/tests/weight.rs` checks it against a counting allocator.
    pub fn weight(&self) -> u32 {
        /// One header in a `HeaderMap`: its entry (name, value, hash, links) and index slots.
        const HEADER_ENTRY: usize = 112;
        /// The shared-storage record a value gets when the policy's copy clones it.
        const SHARED_VALUE: usize = 32;
        /// The object's `Arc`, its index entries (ordered set, host and tag members) and its
        /// share of a moka entry.
        const STORE_ENTRIES: usize = 320;
        let headers: usize = self
            .headers
            .iter()
            // Standard names are static; counting every name's length covers custom ones.
            .map(|(k, v)| {
                2 * HEADER_ENTRY + SHARED_VALUE + allocation_size(v.len()) + k.as_str().len()
            })
            .sum();
        // The policy's request headers, and its parsed `Cache-Control` maps.
        let policy_extra = 4 * HEADER_ENTRY + 64 + self.meta.key.host().len() + 512;
        let vary_values: usize = self
            .meta
            .vary_values
            .iter()
            .map(|(_, v)| 48 + v.as_ref().map_or(0, |v| allocation_size(v.len())))
            .sum();
        let tags: usize = self
            .meta
            .tags
            .iter()
            .map(|t| 16 + allocation_size(t.len() + 16))
            .sum();
        let size = allocation_size(self.body.len())
            + headers
            + policy_extra
            + self.meta.key.heap_size()
            + allocation_size(self.variant.as_bytes().len())
            + vary_values
            + tags
            + std::mem::size_of::<CachedObject>()
            + STORE_ENTRIES;
        size.min(u32::MAX as usize) as u32
    }
}

/// The bytes an allocation of `n` takes: rounded up to the allocator's size class (jemalloc
/// spaces classes four to a doubling, so a 25,000-byte body takes 28,672).
fn allocation_size(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    if n <= 16 {
        return 16;
    }
    let top = usize::BITS - 1 - (n - 1).leading_zeros();
    let spacing = 1usize << top.saturating_sub(2).max(3);
    n.div_ceil(spacing) * spacing
}
