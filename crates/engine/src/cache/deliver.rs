//! Deliver: build the response a client receives.
//!
//! Owns the headers the cache adds or removes on the way out (`Age`, `Cache-Status`,
//! hop-by-hop and tag headers), `304` answers to clients' conditional requests, `HEAD`
//! bodies, and the cache's own error responses; ranges of stored `200`s are answered with
//! `super::range`. A `gzip`/`br` body goes to a client that accepts neither decoded on the
//! fly ([`crate::decode`]): no `Content-Encoding`, a weak `ETag`, the decoded length (when
//! known) and ranges over the decoded bytes. It decides nothing about freshness.

use std::time::SystemTime;

use bytes::Bytes;
use http::{header, request, response, HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::range::{self, Selection};
use crate::body::CacheBody;
use crate::cache_status::{CacheStatus, Fwd, CACHE_STATUS};
use crate::coding::{Accepted, Coding};
use crate::config::CacheConfig;
use crate::decode::{self, Window};
use crate::headers::{strip_hop_by_hop, NOT_MODIFIED_HEADERS};
use crate::object::CachedObject;
use crate::origin::OriginError;
use crate::preconditions::{self, Outcome};

/// Removes the configured tag headers (they are for the cache, not for clients).
pub(super) fn strip_tags(config: &CacheConfig, headers: &mut HeaderMap) {
    for th in &config.tag_headers {
        headers.remove(&th.name);
    }
}

/// Removes what is for this cache only: its targeted field (RFC 9213; `CDN-Cache-Control`
/// travels on for the CDNs in front) and, when configured, the tag headers.
fn strip_cache_only(config: &CacheConfig, headers: &mut HeaderMap) {
    headers.remove(&config.targeted_field);
    if config.strip_tag_headers {
        strip_tags(config, headers);
    }
}

/// A fresh (or stale-while-revalidate) hit.
pub fn hit(
    config: &CacheConfig,
    obj: &CachedObject,
    req: &request::Parts,
    now: SystemTime,
    detail: Option<&'static str>,
) -> Response<CacheBody> {
    let mut status = CacheStatus::hit(obj.ttl_secs(now));
    status.detail = detail;
    object(config, obj, req, now, status)
}

/// A stale object served because the origin failed (stale-if-error).
pub fn stale_on_error(
    config: &CacheConfig,
    obj: &CachedObject,
    req: &request::Parts,
    fwd_status: Option<u16>,
) -> Response<CacheBody> {
    metrics::counter!("vanish_requests_total", "result" => "stale-if-error").increment(1);
    let now = SystemTime::now();
    let mut status = CacheStatus::forward(Fwd::Stale);
    status.fwd_status = fwd_status;
    status.ttl = Some(obj.ttl_secs(now));
    status.detail = Some("stale-if-error");
    object(config, obj, req, now, status)
}

/// Serves a stored object, answering the client's conditionals with `304`.
pub fn object(
    config: &CacheConfig,
    obj: &CachedObject,
    req: &request::Parts,
    now: SystemTime,
    status: CacheStatus,
) -> Response<CacheBody> {
    let age = HeaderValue::from(obj.age(now).as_secs());
    if let Some(coding) = decodes_for(&obj.headers, &req.headers) {
        return decoded(config, obj, req, age, status, coding);
    }
    let received = obj.timing.stored_at;
    if let Some(res) = conditional(
        config,
        req,
        obj.status,
        &obj.headers,
        received,
        Some(age.clone()),
        &status,
    ) {
        return res;
    }
    let mut headers = obj.headers.clone();
    headers.remove(&config.targeted_field);
    // A stored 200 carries `Accept-Ranges: bytes` (admission adds it).
    let (code, body) = if obj.status == StatusCode::OK {
        let len = obj.body.len() as u64;
        match range::choose(&req.headers, &obj.headers, len, config.max_ranges) {
            Selection::Whole => (obj.status, obj.body.clone()),
            Selection::Ranges(ranges) => {
                let part =
                    range::partial(&obj.body, &ranges, obj.headers.get(header::CONTENT_TYPE));
                for (name, value) in part.headers {
                    headers.insert(name.expect("one value per name"), value);
                }
                (StatusCode::PARTIAL_CONTENT, part.body)
            }
            Selection::Unsatisfiable => {
                headers = unsatisfiable(len, &headers);
                (StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new())
            }
        }
    } else {
        (obj.status, obj.body.clone())
    };
    let body = if req.method == Method::HEAD {
        CacheBody::empty()
    } else {
        CacheBody::full(body)
    };
    let mut res = Response::new(body);
    *res.status_mut() = code;
    headers.insert(header::AGE, age);
    headers.insert(CACHE_STATUS, status.to_header(&config.name));
    *res.headers_mut() = headers;
    res
}

/// The answer to a request whose preconditions do not hold for a `2xx` response with these
/// headers (RFC 9110 section 13.2.2): a `304` with the fields section 15.4.5 lists, or an empty
/// `412`, each with `Age` (when given) and `Cache-Status`; `None` when the response itself is
/// to be sent.
pub(super) fn conditional(
    config: &CacheConfig,
    req: &request::Parts,
    code: StatusCode,
    headers: &HeaderMap,
    received: SystemTime,
    age: Option<HeaderValue>,
    status: &CacheStatus,
) -> Option<Response<CacheBody>> {
    if !code.is_success() {
        return None;
    }
    let answer = match preconditions::evaluate(&req.method, &req.headers, headers, received) {
        Outcome::Proceed => return None,
        Outcome::NotModified => StatusCode::NOT_MODIFIED,
        Outcome::Failed => StatusCode::PRECONDITION_FAILED,
    };
    metrics::counter!("vanish_conditional_answers_total", "status" => answer.as_str().to_owned())
        .increment(1);
    let mut res = Response::new(CacheBody::empty());
    *res.status_mut() = answer;
    // A 304 carries what section 15.4.5 lists; a 412 only the validators (it is about this
    // request, not a representation to keep).
    let names: &[header::HeaderName] = if answer == StatusCode::NOT_MODIFIED {
        &NOT_MODIFIED_HEADERS
    } else {
        &[header::ETAG, header::LAST_MODIFIED]
    };
    let h = res.headers_mut();
    for name in names {
        for v in headers.get_all(name) {
            h.append(name.clone(), v.clone());
        }
    }
    strip_cache_only(config, h);
    if let Some(age) = age {
        h.insert(header::AGE, age);
    }
    h.insert(CACHE_STATUS, status.to_header(&config.name));
    Some(res)
}

/// The coding a body with these response headers must be decoded from for a client whose
/// request had `request` headers: the body's, when that is `gzip` or `br` and the client
/// accepts it not.
pub(super) fn decodes_for(response: &HeaderMap, request: &HeaderMap) -> Option<Coding> {
    match Coding::of_response(response) {
        Some(c @ (Coding::Gzip | Coding::Br)) if !Accepted::of(request).accepts(c) => Some(c),
        _ => None,
    }
}

/// Makes a strong `ETag` weak (`"x"` becomes `W/"x"`): what it names is no longer the bytes
/// sent (RFC 9110 section 8.8.1).
pub(super) fn weak_etag(headers: &mut HeaderMap) {
    let Some(tag) = headers.get(header::ETAG) else {
        return;
    };
    if tag.as_bytes().starts_with(b"W/") {
        return;
    }
    let mut weak = Vec::with_capacity(tag.len() + 2);
    weak.extend_from_slice(b"W/");
    weak.extend_from_slice(tag.as_bytes());
    if let Ok(v) = HeaderValue::from_bytes(&weak) {
        headers.insert(header::ETAG, v);
    }
}

/// The headers of a body sent decoded: no `Content-Encoding` (nor `Content-Length`, which
/// the caller sets when it knows the decoded length), a weak `ETag`, and `Vary:
/// Accept-Encoding` (another client gets other bytes).
fn as_decoded(headers: &mut HeaderMap) {
    headers.remove(header::CONTENT_ENCODING);
    headers.remove(header::CONTENT_LENGTH);
    weak_etag(headers);
    let varies = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|n| {
            let n = n.trim();
            n == "*" || n.eq_ignore_ascii_case("accept-encoding")
        });
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// A stored object served decoded from `coding`: conditionals against the weak `ETag`,
/// ranges over the decoded bytes (one range; several get the whole body, as RFC 9110 section
/// 14.2 allows), and the decoded length when admission learnt it (else the body is sent
/// without a length and ranges are not answered).
fn decoded(
    config: &CacheConfig,
    obj: &CachedObject,
    req: &request::Parts,
    age: HeaderValue,
    status: CacheStatus,
    coding: Coding,
) -> Response<CacheBody> {
    let mut headers = obj.headers.clone();
    headers.remove(&config.targeted_field);
    as_decoded(&mut headers);
    let received = obj.timing.stored_at;
    if let Some(res) = conditional(
        config,
        req,
        obj.status,
        &headers,
        received,
        Some(age.clone()),
        &status,
    ) {
        return res;
    }
    let len = obj.decoded_len;
    if let Some(n) = len {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    let mut code = obj.status;
    let mut window = Window::default();
    if let (StatusCode::OK, Some(len)) = (obj.status, len) {
        match range::choose(&req.headers, &headers, len, config.max_ranges) {
            Selection::Ranges(ranges) if ranges.len() == 1 => {
                let (first, last) = ranges[0];
                for (name, value) in range::part_headers(first, last, len) {
                    headers.insert(name.expect("one value per name"), value);
                }
                code = StatusCode::PARTIAL_CONTENT;
                window = Window {
                    skip: first,
                    take: Some(last - first + 1),
                };
            }
            Selection::Unsatisfiable => {
                headers = unsatisfiable(len, &headers);
                code = StatusCode::RANGE_NOT_SATISFIABLE;
                window.take = Some(0);
            }
            Selection::Whole | Selection::Ranges(_) => {}
        }
    }
    let body = if req.method == Method::HEAD || window.take == Some(0) {
        CacheBody::empty()
    } else {
        decode::decoded(obj.body.clone(), coding, window, len)
    };
    let mut res = Response::new(body);
    *res.status_mut() = code;
    headers.insert(header::AGE, age);
    headers.insert(CACHE_STATUS, status.to_header(&config.name));
    *res.headers_mut() = headers;
    res
}

/// The headers of a `416` for a representation of `len` bytes, with the validators and
/// `Accept-Ranges` of its `stored` headers.
fn unsatisfiable(len: u64, stored: &HeaderMap) -> HeaderMap {
    let mut h = range::unsatisfiable(len);
    for name in [header::ETAG, header::LAST_MODIFIED, header::ACCEPT_RANGES] {
        if let Some(v) = stored.get(&name) {
            h.insert(name, v.clone());
        }
    }
    h
}

/// A response built from refreshed headers and a kept body (with its decoded length, for a
/// coded one), not stored; decoded for a client that accepts not its coding.
pub fn from_parts_and_body(
    config: &CacheConfig,
    req: &request::Parts,
    mut parts: response::Parts,
    (body, decoded_len): (Bytes, Option<u64>),
    status: CacheStatus,
) -> Response<CacheBody> {
    let decode = decodes_for(&parts.headers, &req.headers);
    if decode.is_some() {
        as_decoded(&mut parts.headers);
    }
    // Preconditions apply to what this client receives (a decoded body has a weak `ETag`).
    let age = parts.headers.get(header::AGE).cloned();
    let now = SystemTime::now();
    if let Some(res) = conditional(config, req, parts.status, &parts.headers, now, age, &status) {
        return res;
    }
    strip_cache_only(config, &mut parts.headers);
    parts
        .headers
        .insert(CACHE_STATUS, status.to_header(&config.name));
    if decode.is_some() {
        if let Some(n) = decoded_len {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
    } else {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let body = match (req.method == Method::HEAD, decode) {
        (true, _) => CacheBody::empty(),
        (false, Some(c)) => decode::decoded(body, c, Window::default(), decoded_len),
        (false, None) => CacheBody::full(body),
    };
    Response::from_parts(parts, body)
}

/// [`passed`] for the client's request `req`: a `gzip`/`br` body it accepts not is decoded
/// on the way (and the client's connection ends early past the decode limits' absolute
/// bound: its head is already sent), and its preconditions are answered (`304`/`412`, the
/// body dropped) against what it would receive, since a fill never forwards them.
pub(super) fn passed_to(
    config: &CacheConfig,
    req: &request::Parts,
    mut parts: response::Parts,
    body: CacheBody,
    status: CacheStatus,
    head: bool,
) -> Response<CacheBody> {
    let coding = decodes_for(&parts.headers, &req.headers);
    if coding.is_some() {
        as_decoded(&mut parts.headers);
    }
    let age = parts.headers.get(header::AGE).cloned();
    let now = SystemTime::now();
    if let Some(res) = conditional(config, req, parts.status, &parts.headers, now, age, &status) {
        return res;
    }
    let body = match (head, coding) {
        (true, _) => CacheBody::empty(),
        (false, Some(coding)) => decode::decoded_stream(body, coding, config.decode_limits),
        (false, None) => body,
    };
    passed(config, parts, body, status, head)
}

/// An origin response passed to the client (stored or not).
pub fn passed(
    config: &CacheConfig,
    mut parts: response::Parts,
    body: CacheBody,
    status: CacheStatus,
    head: bool,
) -> Response<CacheBody> {
    strip_hop_by_hop(&mut parts.headers);
    strip_cache_only(config, &mut parts.headers);
    parts
        .headers
        .insert(CACHE_STATUS, status.to_header(&config.name));
    let body = if head { CacheBody::empty() } else { body };
    Response::from_parts(parts, body)
}

/// The cache's own error response (plain text, never stored).
pub fn error(config: &CacheConfig, status: StatusCode, message: &str) -> Response<CacheBody> {
    let text = format!(
        "{} {}: {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        message
    );
    let mut res = Response::new(CacheBody::full(Bytes::from(text)));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let detail = match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::GATEWAY_TIMEOUT => "origin-timeout",
        _ => "origin-error",
    };
    let mut cs = CacheStatus::forward(Fwd::Miss);
    if status == StatusCode::BAD_REQUEST {
        cs.fwd = None;
    }
    cs.detail = Some(detail);
    h.insert(CACHE_STATUS, cs.to_header(&config.name));
    res
}

/// `504` to an `only-if-cached` request that nothing stored may answer (RFC 9111 section
/// 5.2.1.7); the origin was not contacted.
pub fn only_if_cached(config: &CacheConfig) -> Response<CacheBody> {
    metrics::counter!("vanish_requests_total", "result" => "only-if-cached").increment(1);
    let mut res = error(
        config,
        StatusCode::GATEWAY_TIMEOUT,
        "only-if-cached and no stored response may be used",
    );
    let mut cs = CacheStatus::forward(Fwd::Miss);
    cs.fwd = None;
    cs.detail = Some("only-if-cached");
    res.headers_mut()
        .insert(CACHE_STATUS, cs.to_header(&config.name));
    res
}

/// `502` or `504` for an origin that gave no response.
pub fn origin_error(config: &CacheConfig, e: &OriginError) -> Response<CacheBody> {
    let status = match e {
        OriginError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        OriginError::Unreachable(_) => StatusCode::BAD_GATEWAY,
    };
    error(config, status, &e.to_string())
}
