//! The admin API, on its own listener: purge, explain, metrics, health.
//!
//! Owns routing, authentication, request-body limits and the JSON answers documented in
//! `docs/admin-api.md`. Purges go through the engine's `Invalidator`; nothing here touches the store
//! directly except `explain`, which only reads. `PURGE` on the proxy listener
//! (`[server] purge_on_proxy`) comes here too ([`Admin::purge_from_proxy`]): the same
//! authentication, browser rules and purge as on this listener.

pub mod auth;
pub mod browser;
pub mod explain;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use vanish_engine::{Cache, CacheBody, PurgeError, PurgeRequest, SelectorError, Store};

use self::auth::{Auth, Decision};
use self::browser::BrowserGuard;

/// The admin service.
#[derive(Clone)]
pub struct Admin<S> {
    /// The engine: purges go through its invalidator (and key policy), explain and health
    /// read its store.
    pub cache: Cache<S>,
    /// Who may call.
    pub auth: Auth,
    /// Which `Host` and `Origin` values are answered (keeps web pages out).
    pub browser: BrowserGuard,
    /// Request headers whose stored values `explain` never shows.
    pub redact: Vec<http::HeaderName>,
    /// Metrics renderer.
    pub metrics: PrometheusHandle,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Most selectors in one purge.
    pub max_selectors: usize,
}

static PURGE_SEQ: AtomicU64 = AtomicU64::new(0);

fn purge_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{ms:x}-{}", PURGE_SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A JSON response.
pub fn json_response(status: StatusCode, v: &Value) -> Response<CacheBody> {
    let mut res = Response::new(CacheBody::full(Bytes::from(v.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn error(status: StatusCode, field: &str, message: &str) -> Response<CacheBody> {
    let mut v = json!({"error": message});
    if !field.is_empty() {
        v["field"] = json!(field);
    }
    json_response(status, &v)
}

fn selector_error(e: &SelectorError) -> Response<CacheBody> {
    error(StatusCode::BAD_REQUEST, &e.field, &e.message)
}

impl<S: Store + Clone> Admin<S> {
    /// Serves one admin request.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        remote: SocketAddr,
    ) -> Result<Response<CacheBody>, std::convert::Infallible> {
        if let Some(refused) = self.refusal(req.method(), req.headers(), Some(remote.ip())) {
            return Ok(refused);
        }
        let path = req.uri().path().to_owned();
        let res = match (req.method().clone(), path.as_str()) {
            (m, _) if m.as_str() == "PURGE" => {
                self.purge_varnish_style(req.uri(), req.headers()).await
            }
            (Method::POST, "/invalidate") => self.invalidate(req).await,
            (Method::GET, "/explain") => self.explain(req).await,
            (Method::GET, "/metrics") => self.render_metrics(),
            (Method::GET, "/healthz") => self.health(),
            (_, "/invalidate") | (_, "/explain") | (_, "/metrics") | (_, "/healthz") => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "",
                &format!("{} is not allowed on {path}", req.method()),
            ),
            _ => error(StatusCode::NOT_FOUND, "", &format!("no admin route {path}")),
        };
        Ok(res)
    }

    /// A `PURGE` received on the proxy listener (`[server] purge_on_proxy`): authenticated
    /// and run exactly as on this listener, with one more rule: a request relayed by a proxy
    /// in front (`relayed`: it came from a trusted proxy, or carries `X-Forwarded-For` /
    /// `Forwarded`) is never let in by its address, as the address is the relay's, not the
    /// sender's; it needs a token.
    pub async fn purge_from_proxy(
        &self,
        parts: &http::request::Parts,
        remote: SocketAddr,
        relayed: bool,
    ) -> Response<CacheBody> {
        let address = (!relayed).then_some(remote.ip());
        if let Some(refused) = self.refusal(&parts.method, &parts.headers, address) {
            return refused;
        }
        self.purge_varnish_style(&parts.uri, &parts.headers).await
    }

    /// Authentication, then the browser rules: the answer to a request they refuse, `None`
    /// for one they let in. `address` is the source address the allow-list is checked against
    /// (`None`: only a token lets in).
    fn refusal(
        &self,
        method: &Method,
        headers: &http::HeaderMap,
        address: Option<IpAddr>,
    ) -> Option<Response<CacheBody>> {
        let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        let decision = match address {
            Some(ip) => self.auth.check(ip, auth),
            None => self.auth.check_token(auth),
        };
        let forbidden = |why: &str| Some(error(StatusCode::FORBIDDEN, "", why));
        let by_address =
            match decision {
                Decision::AllowedByAddress => true,
                Decision::AllowedByToken => false,
                Decision::BadToken => {
                    let mut r = error(
                        StatusCode::UNAUTHORIZED,
                        "authorization",
                        "a valid 'Authorization: Bearer <token>' header is required",
                    );
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return Some(r);
                }
                Decision::Forbidden if address.is_none() => return forbidden(
                    "a PURGE relayed by a proxy in front needs a token (configure [admin] tokens)",
                ),
                Decision::Forbidden => return forbidden(
                    "this address may not use the admin API (configure [admin] tokens or allow)",
                ),
            };
        let refused = self.browser.check(method, headers, by_address).err()?;
        Some(error(refused.0, refused.1, &refused.2))
    }

    async fn run_purge(&self, request: PurgeRequest) -> Response<CacheBody> {
        if request.selectors.len() > self.max_selectors {
            metrics::counter!("vanish_limit_hits_total", "limit" => "selectors").increment(1);
            return error(
                StatusCode::BAD_REQUEST,
                "selectors",
                &format!(
                    "{} selectors; at most {} per request (split the purge)",
                    request.selectors.len(),
                    self.max_selectors
                ),
            );
        }
        let started = Instant::now();
        let dry_run = request.dry_run;
        let mode = request.mode;
        match self.cache.invalidator().run(request).await {
            Ok(report) => json_response(
                StatusCode::OK,
                &json!({
                    "id": purge_id(),
                    "matched": report.matched,
                    "duration_us": started.elapsed().as_micros() as u64,
                    "mode": mode.as_str(),
                    "dry_run": dry_run,
                }),
            ),
            Err(PurgeError::Invalid(e)) => selector_error(&e),
            Err(PurgeError::Store(e)) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "",
                &format!("purge not applied: {e}"),
            ),
        }
    }

    async fn invalidate(&self, req: Request<Incoming>) -> Response<CacheBody> {
        if !browser::is_json(req.headers()) {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-type",
                "send the purge as JSON with 'Content-Type: application/json'",
            );
        }
        let body = match Limited::new(req.into_body(), self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                metrics::counter!("vanish_limit_hits_total", "limit" => "admin_body").increment(1);
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "",
                    &format!("request body larger than {} bytes", self.max_body),
                );
            }
        };
        match PurgeRequest::from_json(&body) {
            Ok(r) => self.run_purge(r).await,
            Err(e) => selector_error(&e),
        }
    }

    /// Varnish's `PURGE` method (see [`PurgeRequest::from_purge_method`]), on either listener.
    async fn purge_varnish_style(
        &self,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Response<CacheBody> {
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        match PurgeRequest::from_purge_method(headers, pq) {
            Ok(request) => self.run_purge(request).await,
            Err(e) => selector_error(&e),
        }
    }

    async fn explain(&self, req: Request<Incoming>) -> Response<CacheBody> {
        let query = req.uri().query().unwrap_or("");
        let mut url = None;
        let mut headers = Vec::new();
        for (k, v) in form_pairs(query) {
            match k.as_str() {
                "url" => url = Some(v),
                "header" => match v.split_once(':') {
                    Some((n, val)) => headers.push((n.trim().to_owned(), val.trim().to_owned())),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "header",
                            "expected header=Name:Value",
                        )
                    }
                },
                other => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        other,
                        "unknown parameter (expected url, header)",
                    )
                }
            }
        }
        let Some(url) = url else {
            return error(
                StatusCode::BAD_REQUEST,
                "url",
                "is required: /explain?url=http://host/path",
            );
        };
        match explain::explain(&self.cache, &url, &headers, &self.redact).await {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err((field, msg)) => error(StatusCode::BAD_REQUEST, &field, &msg),
        }
    }

    fn render_metrics(&self) -> Response<CacheBody> {
        let stats = self.cache.store().stats();
        let mut text = self.metrics.render();
        text.push_str(&format!(
            "# TYPE vanish_store_objects gauge\nvanish_store_objects {}\n# TYPE vanish_store_bytes gauge\nvanish_store_bytes {}\n# TYPE vanish_store_capacity_bytes gauge\nvanish_store_capacity_bytes {}\n",
            stats.objects, stats.bytes, stats.capacity
        ));
        text.push_str(&crate::allocator::render_metrics());
        let mut res = Response::new(CacheBody::full(Bytes::from(text)));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        res
    }

    fn health(&self) -> Response<CacheBody> {
        let s = self.cache.store().stats();
        // A degraded store still serves (L1 hits, misses from the origin): answer 200 so load
        // balancers keep the node, and say what is wrong for monitoring.
        let (state, problem) = match self.cache.store().health() {
            Ok(()) => ("ok", None),
            Err(e) => ("degraded", Some(e.to_string())),
        };
        json_response(
            StatusCode::OK,
            &json!({"status": state, "store": self.cache.store().name(), "problem": problem,
                    "objects": s.objects, "bytes": s.bytes, "capacity": s.capacity}),
        )
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs.
fn form_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        assert_eq!(
            form_pairs("url=http%3A%2F%2Fh%2Fp%3Fa%3D1&header=Accept-Language%3A+fr&x=%"),
            vec![
                ("url".to_owned(), "http://h/p?a=1".to_owned()),
                ("header".to_owned(), "Accept-Language: fr".to_owned()),
                ("x".to_owned(), "%".to_owned()),
            ]
        );
    }
}
