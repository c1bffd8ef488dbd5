//! The proxy front end: HTTP in, engine, HTTP out.
//!
//! Owns the client-facing service: `GET`/`HEAD` go through the engine's [`Cache`]; other
//! methods are forwarded with their bodies, then trigger the engine's invalidation
//! (RFC 9111 section 4.4). `PURGE` is never forwarded: with `[server] purge_on_proxy` the
//! admin API handles it ([`Admin::purge_from_proxy`]), else it is answered 405. Caching
//! decisions live in the engine, never here.

pub mod guard;
pub mod origin_tls;
pub mod slow_body;
pub mod upstream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use vanish_engine::{Cache, CacheBody, Store};

use self::upstream::{ClientAddr, Upstream};
use crate::admin::Admin;

/// Everything the proxy service needs, shared by all connections.
#[derive(Clone)]
pub struct Proxy<S> {
    /// The engine.
    pub cache: Cache<S>,
    /// The origin.
    pub upstream: Upstream,
    /// Longest request target accepted.
    pub max_url_bytes: usize,
    /// Longest wait for the next piece of a request body (answered 408 past it).
    pub body_read_timeout: std::time::Duration,
    /// The admin API that handles `PURGE` here (`[server] purge_on_proxy`); `None`: `PURGE`
    /// is answered 405.
    pub purge: Option<Arc<Admin<S>>>,
}

/// The methods the proxy listener passes to the origin (`Allow` of its 405 to `PURGE`).
const FORWARDED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// The cache's own refusal: plain text, never stored, connection closed.
fn refuse(status: http::StatusCode, reason: &str) -> Response<CacheBody> {
    metrics::counter!("vanish_refused_requests_total", "status" => status.as_str().to_owned())
        .increment(1);
    let mut res = Response::new(CacheBody::full(bytes::Bytes::from(format!(
        "{} {}: {reason}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ))));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

impl<S: Store + Clone> Proxy<S> {
    /// Serves one client request.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        remote: SocketAddr,
    ) -> Result<Response<CacheBody>, Infallible> {
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ClientAddr(remote));
        if let Err((status, reason)) = guard::check(&mut parts, self.max_url_bytes) {
            tracing::debug!(%remote, %status, reason, "request refused");
            return Ok(refuse(status, reason));
        }
        let mut res = if parts.method.as_str() == "PURGE" {
            // Never the origin's business (it would answer with its own page, or act on it).
            drop(body);
            self.purge(&parts, remote).await
        } else if parts.method == Method::GET || parts.method == Method::HEAD {
            // A body on GET/HEAD is never forwarded (it is not part of the key).
            drop(body);
            self.cache.serve(parts, &self.upstream).await
        } else {
            self.forward(parts, body).await
        };
        res.headers_mut()
            .append(header::VIA, HeaderValue::from_static("1.1 vanish"));
        Ok(res)
    }

    /// `PURGE`: the admin API's, when `purge_on_proxy` is on; else 405, naming where it goes.
    async fn purge(&self, parts: &http::request::Parts, remote: SocketAddr) -> Response<CacheBody> {
        let Some(admin) = &self.purge else {
            let mut res = refuse(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "PURGE is not accepted on the proxy listener: send it to the admin listener, \
                 or set [server] purge_on_proxy = true",
            );
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(FORWARDED_METHODS));
            return res;
        };
        let rules = &self.cache.config().forwarding;
        let relayed = vanish_engine::forwarding::peer_in(&rules.trusted_proxies, remote.ip())
            || ["x-forwarded-for", "forwarded", "x-real-ip"]
                .iter()
                .any(|h| parts.headers.contains_key(*h));
        admin.purge_from_proxy(parts, remote, relayed).await
    }

    /// Forwards a request with its body, uncached, then invalidates what it changed.
    async fn forward(
        &self,
        mut parts: http::request::Parts,
        body: Incoming,
    ) -> Response<CacheBody> {
        let forward = self.cache.begin_forward(&mut parts);
        // Remember whether a failure came from the client's body (malformed chunks, early
        // end: 400; too slow: 408): that is the client's fault, not the origin's (502).
        let client_body_failed = Arc::new(AtomicBool::new(false));
        let client_body_slow = Arc::new(AtomicBool::new(false));
        let (flag, slow) = (client_body_failed.clone(), client_body_slow.clone());
        let body = slow_body::SlowBody::new(body, self.body_read_timeout)
            .map_err(move |e| {
                if e.is::<slow_body::BodyTimedOut>() {
                    slow.store(true, Ordering::Release);
                }
                flag.store(true, Ordering::Release);
                e
            })
            .boxed();
        let sent = self.upstream.send(Request::from_parts(parts, body)).await;
        if sent.is_err() && client_body_slow.load(Ordering::Acquire) {
            return refuse(http::StatusCode::REQUEST_TIMEOUT, "request body too slow");
        }
        if sent.is_err() && client_body_failed.load(Ordering::Acquire) {
            return refuse(http::StatusCode::BAD_REQUEST, "malformed request body");
        }
        self.cache.finish_forward(forward, sent).await
    }
}
