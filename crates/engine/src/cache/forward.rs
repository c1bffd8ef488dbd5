//! Forward: requests a front end sends to the origin itself, with their bodies.
//!
//! Owns the engine's side of an uncached request that is not a `GET`/`HEAD` (the proxy's
//! and the `tower` Layer's unsafe methods): the entrance rules before it leaves, and after
//! the origin's answer the RFC 9111 section 4.4 invalidation, the framing check and the
//! response's `Cache-Status`. Sending the request (and its body) is the front end's.

use bytes::Bytes;
use http::{request, Response};

use super::deliver;
use super::handle::Cache;
use crate::body::{BoxError, CacheBody};
use crate::cache_status::{CacheStatus, Fwd};
use crate::origin::{check_framing, OriginError};
use crate::store::Store;

/// A request a front end forwards itself, between [`Cache::begin_forward`] and
/// [`Cache::finish_forward`]: what the engine remembers of it (its head).
#[derive(Debug)]
pub struct Forward {
    head: request::Parts,
}

impl Forward {
    /// The request's head as it was sent on.
    pub fn request(&self) -> &request::Parts {
        &self.head
    }
}

impl<S: Store + Clone> Cache<S> {
    /// Readies a request the front end forwards itself (any method the cache does not
    /// serve): runs the entrance rules on it (forwarding headers, `Connection`, `Host`; see
    /// [`crate::forwarding`]) and remembers its head for [`Cache::finish_forward`].
    pub fn begin_forward(&self, req: &mut request::Parts) -> Forward {
        // Nothing is stored for these, so what the key would add is not needed.
        let _ = self.admit(req);
        Forward { head: req.clone() }
    }

    /// The client's response to a forwarded request, from the origin's answer: after a
    /// success, invalidates what an unsafe method changed ([`Cache::after_unsafe`]); strips
    /// hop-by-hop (and configured tag) headers and adds `Cache-Status` (`fwd=method`). An
    /// origin that gave no valid response is answered `502`/`504`.
    ///
    /// ```
    /// # async fn demo<S: vanish_engine::Store + Clone>(cache: vanish_engine::Cache<S>) {
    /// let (mut parts, ()) = http::Request::post("/items").header("host", "example.com")
    ///     .body(()).unwrap().into_parts();
    /// let forward = cache.begin_forward(&mut parts);
    /// // ... send `parts` and the body to the origin ...
    /// let answer = http::Response::builder().status(201).body(http_body_util::Empty::<bytes::Bytes>::new());
    /// let res = cache.finish_forward(forward, Ok(answer.unwrap())).await;
    /// assert!(res.headers().contains_key("cache-status"));
    /// # }
    /// ```
    pub async fn finish_forward<B>(
        &self,
        forward: Forward,
        answer: Result<Response<B>, OriginError>,
    ) -> Response<CacheBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let config = &self.inner.config;
        match answer.and_then(check_framing) {
            Ok(res) => {
                let (parts, body) = res.into_parts();
                if let Some(report) = self
                    .after_unsafe(&forward.head, parts.status, &parts.headers)
                    .await
                {
                    tracing::debug!(matched = report.matched, method = %forward.head.method, uri = %forward.head.uri, "invalidated after unsafe method");
                }
                let mut status = CacheStatus::forward(Fwd::Method);
                status.fwd_status = Some(parts.status.as_u16());
                deliver::passed(config, parts, CacheBody::boxed(body), status, false)
            }
            Err(e) => {
                tracing::warn!(error = %e, "forwarding failed");
                deliver::origin_error(config, &e)
            }
        }
    }
}
