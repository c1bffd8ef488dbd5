//! Lookup: find the variant a request selects and judge whether it may be served.
//!
//! Owns the reuse decision for one request against one stored object (RFC 9111 section 4 and
//! the request directives of section 5.2.1: `no-cache`, `max-age`, `min-fresh`, `max-stale`,
//! `only-if-cached`), in place of `http-cache-semantics`' `before_request` (which matches
//! names case-sensitively and ignores soft purges). Plain requests take a fast path (stored
//! timing only). It stores nothing and builds no response.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{header, HeaderMap};

use super::handle::Cache;
use crate::cache_status::Fwd;
use crate::config::CacheConfig;
use crate::directives::{Delta, Directives};
use crate::freshness::request_has_directives;
use crate::key::ResourceKey;
use crate::lifetime::InForce;
use crate::object::{CachedObject, State};
use crate::store::Store;

/// What may be done with a stored object for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Serve it.
    Fresh,
    /// Serve it stale and refresh it in the background.
    StaleWhileRevalidate,
    /// Serve it stale: the client's `max-stale` accepts it and the response allows it.
    StaleAccepted,
    /// Ask the origin first (conditionally when it has a validator).
    Revalidate(Fwd),
}

/// A client's request directives (RFC 9111 section 5.2.1), read once per request that has
/// any. Names are case-insensitive; a directive with an invalid value is ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asks {
    /// `no-cache`, or `Pragma: no-cache` without `Cache-Control` (section 5.4).
    pub no_cache: bool,
    /// `max-age`: the oldest response the client accepts.
    pub max_age: Option<Duration>,
    /// `min-fresh`: the freshness the response must have left.
    pub min_fresh: Option<Duration>,
    /// `max-stale`: how stale a response may be (`Some(None)`: any staleness).
    pub max_stale: Option<Option<Duration>>,
    /// `only-if-cached`: never contact the origin; `504` when nothing usable is stored.
    pub only_if_cached: bool,
}

impl Asks {
    /// Reads the directives; the default (nothing asked) for requests without any.
    pub fn of(headers: &HeaderMap) -> Asks {
        if !request_has_directives(headers) {
            return Asks::default();
        }
        let cc = Directives::parse(
            headers
                .get_all(header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let pragma_no_cache = !headers.contains_key(header::CACHE_CONTROL)
            && Directives::parse(
                headers
                    .get_all(header::PRAGMA)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            )
            .has("no-cache");
        let secs = |name: &str| match cc.delta(name) {
            Some(Delta::Secs(s)) => Some(Duration::from_secs(s)),
            _ => None,
        };
        let max_stale = match cc.value("max-stale") {
            None => None,
            Some(None) => Some(None),
            Some(Some(_)) => secs("max-stale").map(Some),
        };
        Asks {
            no_cache: cc.has("no-cache") || pragma_no_cache,
            max_age: secs("max-age"),
            min_fresh: secs("min-fresh"),
            max_stale,
            only_if_cached: cc.has("only-if-cached"),
        }
    }

    /// True when nothing was asked (the common request).
    pub fn is_plain(&self) -> bool {
        *self == Asks::default()
    }

    /// The client wants a fresh stored response revalidated first, and the cache honours it
    /// (`client_revalidation`).
    fn forces_revalidation(
        &self,
        obj: &CachedObject,
        now: SystemTime,
        config: &CacheConfig,
    ) -> bool {
        if !config.client_revalidation {
            return false;
        }
        let too_old = self.max_age.is_some_and(|m| obj.age(now) > m);
        let left = obj.fresh_until().duration_since(now).unwrap_or_default();
        let too_close = self.min_fresh.is_some_and(|m| left < m);
        self.no_cache || too_old || too_close
    }

    /// The client forbids a stale response (`no-cache`, `max-age=0`), when honoured.
    fn forbids_stale(&self, config: &CacheConfig) -> bool {
        config.client_revalidation && (self.no_cache || self.max_age == Some(Duration::ZERO))
    }

    /// The client's `max-stale` accepts this much staleness.
    fn accepts_stale(&self, by: Duration) -> bool {
        match self.max_stale {
            Some(None) => true,
            Some(Some(limit)) => by <= limit,
            None => false,
        }
    }
}

impl<S: Store + Clone> Cache<S> {
    /// The stored variant this request selects, if any. Store errors count as misses.
    pub(super) async fn lookup(
        &self,
        key: &ResourceKey,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Option<Arc<CachedObject>> {
        match self.inner.store.lookup(key).await {
            Ok(Some(resource)) => resource
                .select_in(headers, self.inner.config.vary_values)
                .filter(|o| o.retain_until() > now)
                .cloned(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, %key, "store lookup failed; treating as a miss");
                None
            }
        }
    }
}

/// Judges a stored object against a request's directives at `now`.
///
/// A request without directives takes the fast path: the stored timing alone decides.
pub fn judge(obj: &CachedObject, asks: &Asks, now: SystemTime, config: &CacheConfig) -> Judgement {
    match obj.state(now) {
        State::Fresh if asks.is_plain() => Judgement::Fresh,
        State::Fresh if asks.forces_revalidation(obj, now, config) => {
            Judgement::Revalidate(Fwd::Request)
        }
        State::Fresh => Judgement::Fresh,
        State::Stale(by) => {
            let no_stale = asks.forbids_stale(config);
            if !no_stale
                && asks.accepts_stale(by)
                && !InForce::of(&obj.headers, config).forbids_stale()
            {
                Judgement::StaleAccepted
            } else if by < obj.timing.stale_while_revalidate && !no_stale {
                Judgement::StaleWhileRevalidate
            } else {
                Judgement::Revalidate(Fwd::Stale)
            }
        }
    }
}

/// True when the object is stale but within its `stale-if-error` window.
pub fn may_serve_stale_on_error(obj: &CachedObject, now: SystemTime) -> bool {
    match obj.state(now) {
        State::Fresh => true,
        State::Stale(by) => by < obj.timing.stale_if_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_directives_table() {
        let s = |n| Some(Duration::from_secs(n));
        // (Cache-Control, Pragma, what is asked)
        let cases = [
            ("", "", Asks::default()),
            (
                "NO-CACHE",
                "",
                Asks {
                    no_cache: true,
                    ..Asks::default()
                },
            ),
            (
                "",
                "no-cache",
                Asks {
                    no_cache: true,
                    ..Asks::default()
                },
            ),
            (
                "max-age=60",
                "no-cache",
                Asks {
                    max_age: s(60),
                    ..Asks::default()
                },
            ),
            (
                "Max-Age=\"60\"",
                "",
                Asks {
                    max_age: s(60),
                    ..Asks::default()
                },
            ),
            ("max-age=abc, min-fresh=-1", "", Asks::default()),
            (
                "min-fresh=30",
                "",
                Asks {
                    min_fresh: s(30),
                    ..Asks::default()
                },
            ),
            (
                "max-stale",
                "",
                Asks {
                    max_stale: Some(None),
                    ..Asks::default()
                },
            ),
            (
                "max-stale=10",
                "",
                Asks {
                    max_stale: Some(s(10)),
                    ..Asks::default()
                },
            ),
            ("max-stale=ten", "", Asks::default()),
            (
                "Only-If-Cached",
                "",
                Asks {
                    only_if_cached: true,
                    ..Asks::default()
                },
            ),
        ];
        for (cc, pragma, want) in cases {
            let mut h = HeaderMap::new();
            if !cc.is_empty() {
                h.insert(header::CACHE_CONTROL, cc.parse().unwrap());
            }
            if !pragma.is_empty() {
                h.insert(header::PRAGMA, pragma.parse().unwrap());
            }
            assert_eq!(Asks::of(&h), want, "{cc:?} {pragma:?}");
        }
    }
}
