//! The upstream: pooled keep-alive connections to the origin, over plain TCP or TLS.
//!
//! Owns the hyper client, the forwarding headers (`Via`, `X-Forwarded-For`, `Forwarded`), the
//! origin's interim (`1xx`) answers (counted, not relayed), and the connect and response
//! timeouts (502 and 504). An `https://` origin is reached through `hyper-rustls` with the
//! trust of [`OriginTls`] (`origin_tls.rs`), pooled exactly like a plain one; a failed
//! handshake is a 502 whose reason names it, counted in `vanish_origin_tls_errors_total`. It
//! implements the engine's [`Origin`] for fills, and forwards unsafe methods with their
//! bodies.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use vanish_engine::headers::strip_hop_by_hop;
use vanish_engine::{BoxError, Origin, OriginError, Scheme};

pub use vanish_engine::forwarding::ClientAddr;

use super::origin_tls::{self, OriginTls};

/// Body type sent upstream.
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

/// A pooled client for one origin.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, UpstreamBody>,
    scheme_authority: (http::uri::Scheme, http::uri::Authority),
    response_timeout: Duration,
    /// The scheme the cache's clients speak (`X-Forwarded-Proto`, `Forwarded: proto=`).
    client_scheme: Scheme,
    /// Requests in flight to the origin at most.
    slots: Arc<Semaphore>,
}

impl Upstream {
    /// A client for `base` (`http://host:port`, or `https://host:port` with `tls`: the
    /// configuration gives both or neither).
    pub fn new(
        base: &Uri,
        connect_timeout: Duration,
        response_timeout: Duration,
        max_connections: usize,
        client_scheme: Scheme,
        tls: Option<&OriginTls>,
    ) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(Duration::from_secs(60)));
        // `https://` URIs pass through the TCP connector to the TLS one.
        tcp.enforce_http(false);
        let connector = match tls {
            Some(tls) => {
                match tls.source() {
                    origin_tls::RootsSource::Bundled { .. } => {
                        tracing::warn!(origin = %base, "origin TLS: {}", tls.describe())
                    }
                    _ => tracing::info!(origin = %base, "origin TLS: {}", tls.describe()),
                }
                HttpsConnectorBuilder::new()
                    .with_tls_config(tls.client_config())
                    .https_only()
                    .with_server_name_resolver(FixedServerNameResolver::new(
                        tls.server_name().clone(),
                    ))
                    .enable_http1()
                    .wrap_connector(tcp)
            }
            // A plain origin: the TLS side is never used (the URI is always `http://`), so
            // it trusts nothing.
            None => HttpsConnectorBuilder::new()
                .with_tls_config(origin_tls::client_config(Arc::new(
                    rustls::RootCertStore::empty(),
                )))
                .https_or_http()
                .enable_http1()
                .wrap_connector(tcp),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        Upstream {
            client,
            scheme_authority: (
                base.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP),
                base.authority()
                    .cloned()
                    .expect("validated upstream has an authority"),
            ),
            response_timeout,
            client_scheme,
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }

    /// The same client (pool and origin connection limit shared) for clients speaking
    /// `scheme`: the TLS listener's requests say `https` in `X-Forwarded-Proto`.
    pub fn for_client_scheme(&self, scheme: Scheme) -> Upstream {
        Upstream {
            client_scheme: scheme,
            ..self.clone()
        }
    }

    /// Sends a request (any method, any body) with forwarding headers added.
    pub async fn send(
        &self,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, OriginError> {
        let pq = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme(self.scheme_authority.0.clone())
            .authority(self.scheme_authority.1.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| OriginError::Unreachable(format!("bad upstream URI: {e}")))?;
        *req.uri_mut() = uri;
        *req.version_mut() = http::Version::HTTP_11;
        let client_addr = req.extensions().get::<ClientAddr>().copied();
        add_forwarding_headers(req.headers_mut(), client_addr, self.client_scheme);
        // Interim (1xx) answers before the final one: hyper's server side cannot send them on
        // to our client over HTTP/1.1 (`docs/conformance.md`), so they are counted and
        // dropped; they are never stored, nor merged into the final response.
        hyper::ext::on_informational(&mut req, |res| {
            metrics::counter!(
                "vanish_origin_interim_responses_total",
                "status" => res.status().as_str().to_owned()
            )
            .increment(1);
        });
        let slots = self.slots.clone();
        let attempt = async move {
            // The permit is held until the response headers arrive (bodies stream after).
            let _permit = match slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    metrics::counter!("vanish_limit_hits_total", "limit" => "origin_connections")
                        .increment(1);
                    slots
                        .acquire_owned()
                        .await
                        .map_err(|_| OriginError::Unreachable("upstream closed".into()))?
                }
            };
            self.client.request(req).await.map_err(|e| {
                // The engine logs the failure (once, with this reason) and answers 502.
                match origin_tls::find_failure(&e) {
                    Some(tls) => {
                        metrics::counter!("vanish_origin_tls_errors_total", "reason" => tls.reason)
                            .increment(1);
                        OriginError::Unreachable(tls.message)
                    }
                    None => OriginError::Unreachable(describe(&e)),
                }
            })
        };
        match tokio::time::timeout(self.response_timeout, attempt).await {
            Err(_) => Err(OriginError::Timeout),
            Ok(r) => r,
        }
    }
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Sets the forwarding headers from what the proxy knows: `Via`, `X-Forwarded-For`,
/// `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` (RFC 7239).
///
/// A client's own forwarding headers never get here (`forwarding::admit` drops them); what is
/// present came from a trusted proxy in front (or the pass-list) and is kept: its
/// `X-Forwarded-For` and `Forwarded` are appended to, its `-Proto` and `-Host` stay.
pub fn add_forwarding_headers(h: &mut http::HeaderMap, client: Option<ClientAddr>, scheme: Scheme) {
    strip_hop_by_hop(h);
    h.append(header::VIA, HeaderValue::from_static("1.1 vanish"));
    let proto = scheme.as_str();
    if !h.contains_key("x-forwarded-proto") {
        h.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    }
    let host = h.get(header::HOST).cloned();
    if let Some(host) = &host {
        if !h.contains_key("x-forwarded-host") {
            h.insert("x-forwarded-host", host.clone());
        }
    }
    let Some(ClientAddr(addr)) = client else {
        return;
    };
    let ip = addr.ip().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    let node = if addr.is_ipv6() {
        format!("\"[{ip}]\"")
    } else {
        ip
    };
    let mut fwd = format!("for={node};proto={proto}");
    if let Some(host) = host.as_ref().and_then(|v| v.to_str().ok()) {
        if host.bytes().all(|b| b.is_ascii_graphic()) && !host.contains('"') {
            fwd.push_str(&format!(";host=\"{host}\""));
        }
    }
    if let Ok(v) = HeaderValue::from_str(&fwd) {
        h.append(header::FORWARDED, v);
    }
}

impl Origin for Upstream {
    type Body = Incoming;

    async fn fetch(&self, req: Request<()>) -> Result<Response<Incoming>, OriginError> {
        let (parts, ()) = req.into_parts();
        let body = Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed();
        self.send(Request::from_parts(parts, body)).await
    }
}
