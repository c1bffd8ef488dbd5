//! Lookup: find the variant a request selects and judge whether it may be served.
//!
//! Owns the freshness decision for one request against one stored object. Plain requests
//! take a fast path (stored timing only); requests with `Cache-Control` or `Pragma` get the
//! full RFC 9111 evaluation from `http-cache-semantics`.

use std::sync::Arc;
use std::time::SystemTime;

use http::{request, HeaderMap, Method, Uri};
use http_cache_semantics::{BeforeRequest, RequestLike};

use super::handle::Cache;
use crate::cache_status::Fwd;
use crate::freshness::{canonical_headers, request_has_directives};
use crate::key::ResourceKey;
use crate::object::{CachedObject, State};
use crate::store::Store;

/// What may be done with a stored object for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Serve it.
    Fresh,
    /// Serve it stale and refresh it in the background.
    StaleWhileRevalidate,
    /// Ask the origin first (conditionally when it has a validator).
    Revalidate(Fwd),
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

/// Judges a stored object against a request at `now`.
pub fn judge(obj: &CachedObject, req: &request::Parts, now: SystemTime) -> Judgement {
    let directives = request_has_directives(&req.headers);
    match obj.state(now) {
        State::Fresh if !directives => Judgement::Fresh,
        State::Fresh => match obj
            .policy
            .before_request(&PolicyView::new(obj, &req.headers), now)
        {
            BeforeRequest::Fresh(_) => Judgement::Fresh,
            BeforeRequest::Stale { .. } => Judgement::Revalidate(Fwd::Request),
        },
        State::Stale(by) => {
            if by < obj.timing.stale_while_revalidate && !client_forbids_stale(&req.headers) {
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

fn client_forbids_stale(headers: &HeaderMap) -> bool {
    let has = |name: &str, needle: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|s| s.to_ascii_lowercase().contains(needle))
    };
    has("cache-control", "no-cache")
        || has("cache-control", "max-age=0")
        || has("pragma", "no-cache")
}

/// The request `http-cache-semantics` evaluates: the stored request's canonical headers (host
/// and the varied headers, already matched by the variant key) plus the client's directives.
pub(crate) struct PolicyView {
    headers: HeaderMap,
}

impl PolicyView {
    pub(crate) fn new(obj: &CachedObject, client: &HeaderMap) -> Self {
        let mut headers = canonical_headers(obj.key(), &obj.meta.vary_values);
        for name in [http::header::CACHE_CONTROL, http::header::PRAGMA] {
            for v in client.get_all(&name) {
                headers.append(name.clone(), v.clone());
            }
        }
        PolicyView { headers }
    }
}

impl RequestLike for PolicyView {
    fn uri(&self) -> Uri {
        Uri::from_static("/")
    }
    fn is_same_uri(&self, _other: &Uri) -> bool {
        true
    }
    fn method(&self) -> &Method {
        &Method::GET
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}
