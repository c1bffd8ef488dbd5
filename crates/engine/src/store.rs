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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CacheConfig;
    use std::time::SystemTime;

    /// An object of `/p` stored for a request with `request` headers, its body in `coding`,
    /// the response varying on `vary` (if any).
    fn object(request: &[(&str, &str)], coding: Coding, vary: Option<&str>) -> Arc<CachedObject> {
        let body = crate::compress::encode(b"<p>the page</p>", coding).unwrap();
        let mut res = http::Response::builder().header("cache-control", "max-age=60");
        if let Some(v) = coding.header_value() {
            res = res.header("content-encoding", v);
        }
        if let Some(v) = vary {
            res = res.header("vary", v);
        }
        let key = ResourceKey::parse_url("http://h/p").unwrap();
        let req = crate::headers::from_pairs(request);
        let res = res.body(body).unwrap();
        Arc::new(
            CachedObject::from_response(key, &req, res, &CacheConfig::default(), SystemTime::now())
                .unwrap(),
        )
    }

    fn chosen(r: &Resource, request: &[(&str, &str)]) -> Option<Coding> {
        r.select(&crate::headers::from_pairs(request))
            .map(|o| o.coding().unwrap())
    }

    #[test]
    fn the_best_stored_coding_the_client_accepts_is_chosen() {
        use Coding::*;
        let all = Resource {
            variants: vec![
                object(&[("accept-encoding", "br")], Br, None),
                object(
                    &[("accept-encoding", "gzip")],
                    Gzip,
                    Some("Accept-Encoding"),
                ),
                object(&[], Identity, Some("accept-encoding")),
            ],
        };
        let gzip_and_identity = Resource {
            variants: vec![all.variants[1].clone(), all.variants[2].clone()],
        };
        let br_only = Resource {
            variants: vec![all.variants[0].clone()],
        };
        let ae = |v: &'static str| [("accept-encoding", v)];
        // (resource, Accept-Encoding, the coding served)
        let cases: &[(&Resource, Option<&'static str>, Option<Coding>)] = &[
            (&all, Some("gzip, deflate, br"), Some(Br)),
            (&all, Some("gzip, deflate, br, zstd"), Some(Br)),
            (&all, Some("br;q=1.0, gzip;q=0.8, *;q=0.1"), Some(Br)),
            (&all, Some("gzip;q=1, br;q=0.5"), Some(Gzip)),
            (&all, Some("gzip, deflate"), Some(Gzip)),
            (&all, None, Some(Identity)),
            (&all, Some("identity;q=0, gzip"), Some(Gzip)),
            (&gzip_and_identity, Some("br"), Some(Identity)),
            (&br_only, Some("gzip"), None),
            (&br_only, Some("br, gzip"), Some(Br)),
            (&br_only, None, Some(Br)),
            (&br_only, Some("deflate"), Some(Br)),
        ];
        for (r, v, want) in cases {
            let got = match v {
                Some(v) => chosen(r, &ae(v)),
                None => chosen(r, &[]),
            };
            assert_eq!(got, *want, "{v:?}");
        }
    }

    #[test]
    fn a_coded_object_varies_on_accept_encoding_and_other_fields_still_count() {
        let fr = object(
            &[("accept-encoding", "gzip"), ("accept-language", "fr")],
            Coding::Gzip,
            Some("Accept-Language"),
        );
        assert!(
            fr.vary.has_accept_encoding(),
            "added: the cache negotiated it"
        );
        assert!(fr
            .headers
            .get_all("vary")
            .iter()
            .any(|v| v == "Accept-Encoding"));
        assert_eq!(
            fr.meta.vary_value(&http::header::ACCEPT_ENCODING),
            Some(Some("gzip")),
            "the variant records the body's coding, not the request's header"
        );
        let plain = object(&[("accept-encoding", "gzip")], Coding::Identity, None);
        assert!(
            plain.vary.is_empty(),
            "an identity body that does not vary does not"
        );
        let r = Resource {
            variants: vec![plain.clone(), fr.clone()],
        };
        let fr_gzip = [("accept-encoding", "br, gzip"), ("accept-language", "fr")];
        assert_eq!(
            r.select(&crate::headers::from_pairs(&fr_gzip))
                .unwrap()
                .id(),
            fr.id()
        );
        let de_gzip = [("accept-encoding", "br, gzip"), ("accept-language", "de")];
        assert_eq!(
            r.select(&crate::headers::from_pairs(&de_gzip))
                .unwrap()
                .id(),
            plain.id(),
            "another language: the identity object"
        );
        assert_eq!(fr.decoded_len, Some(b"<p>the page</p>".len() as u64));
    }
}
