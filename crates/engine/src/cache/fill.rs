//! Fill: fetch from the origin, stream to the client, and store what may be stored.
//!
//! Owns the leader's side of a miss or revalidation: the origin request, the verdict on the
//! response (including whether a `304` selects the stale object, else it asks again
//! unconditionally, and that a `HEAD`'s answer is never stored as a `GET`'s), and the tee
//! task that streams the body to the client while keeping a copy (up to the maximum object
//! size) to store when the body completes. A body that fails or ends early
//! is never stored. The tee runs in its own task so a client that goes away does not cancel
//! the fill other waiters depend on. A `Range` request's miss waits for the stored copy and is
//! answered from it; when nothing can be stored, the origin answers the range
//! ([`Cache::pass`], which also forwards what the cache does not store at all).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::{header, request, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};

use super::admission::{self, BodyPlan};
use super::handle::Cache;
use super::{deliver, lookup, range};
use crate::body::{BoxError, CacheBody};
use crate::cache_status::{CacheStatus, Fwd};
use crate::coalesce::{Leader, Outcome};
use crate::coding::Accepted;
use crate::decode::Refused;
use crate::freshness::NotStored;
use crate::headers::{detach, strip_hop_by_hop};
use crate::key::ResourceKey;
use crate::object::{CachedObject, Head};
use crate::origin::{Origin, OriginError};
use crate::policy::RuleInfo;
use crate::preconditions;
use crate::store::{Inserted, Store};
use crate::validators::{head_agrees, selects};

/// Body bytes a miss reads before it answers: a body that ends within them is stored first,
/// so its `Cache-Status` can say `stored` truthfully; a longer one streams, and its
/// `Cache-Status` says nothing of storing (it is not known yet).
const READ_BEFORE_ANSWER: usize = 64 * 1024;

/// What a fill's response may say of storing, decided by the tee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decided {
    /// The copy is in the store.
    Stored,
    /// Too large to store.
    TooLarge,
    /// The origin body failed before anything was sent: answer 502.
    Failed,
    /// Its coded body was refused (too large decoded, or corrupt): not stored.
    Refused(&'static str),
    /// Not known before the body streams (or not stored for a reason not worth saying).
    Streaming,
}

/// Tells the fill what its response may say, once.
fn tell(decided: &mut Option<oneshot::Sender<Decided>>, d: Decided) {
    if let Some(tx) = decided.take() {
        let _ = tx.send(d);
    }
}

/// Request headers never sent on a fill: the cache wants a complete `200` to store, and
/// answers the client's own conditionals and ranges itself.
const NOT_FORWARDED_ON_FILL: [header::HeaderName; 6] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

/// Builds the body-less request sent to the origin (a `GET` for a fill, but a `HEAD` that
/// revalidates stays a `HEAD`); with `stale`, adds its validators.
pub(super) fn origin_request(
    req: &request::Parts,
    stale: Option<&CachedObject>,
    fill: bool,
) -> Request<()> {
    let mut headers = req.headers.clone();
    // Forwarding headers were settled at the entrance (`forwarding::admit`).
    strip_hop_by_hop(&mut headers);
    // The engine's requests have no body: a client's body on GET is never forwarded.
    headers.remove(header::CONTENT_LENGTH);
    // A fill is a `GET`, but a `HEAD` revalidating a stored `GET` stays a `HEAD` (RFC 9110
    // section 9.3.2): its answer updates the stored response (RFC 9111 section 4.3.5).
    let method = if fill && !(req.method == Method::HEAD && stale.is_some()) {
        Method::GET
    } else {
        req.method.clone()
    };
    if fill {
        for h in NOT_FORWARDED_ON_FILL.iter() {
            headers.remove(h);
        }
        // What the cache can store and serve to every client, normalised (`coding.rs`).
        let ask = Accepted::of(&headers).ask();
        headers.insert(header::ACCEPT_ENCODING, ask);
    }
    if let Some(obj) = stale {
        if let Some(etag) = obj.headers.get(header::ETAG) {
            headers.insert(header::IF_NONE_MATCH, etag.clone());
        }
        if let Some(lm) = obj.headers.get(header::LAST_MODIFIED) {
            headers.insert(header::IF_MODIFIED_SINCE, lm.clone());
        }
    }
    let mut out = Request::new(());
    *out.method_mut() = method;
    *out.uri_mut() = req
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    *out.headers_mut() = headers;
    *out.extensions_mut() = req.extensions.clone();
    out
}

impl<S: Store + Clone> Cache<S> {
    /// Fetches from the origin as the leader of a fill (or alone with `leader: None`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fill<O: Origin>(
        &self,
        key: ResourceKey,
        rule: Arc<RuleInfo>,
        req: request::Parts,
        stale: Option<Arc<CachedObject>>,
        leader: Option<Leader>,
        fwd: Fwd,
        origin: &O,
    ) -> Response<CacheBody> {
        let config = &self.inner.config;
        let head = req.method == Method::HEAD;
        let epoch = self.inner.store.epoch();
        let origin_req = origin_request(&req, stale.as_deref(), true);
        let sent = SystemTime::now();
        let result = origin
            .fetch(origin_req)
            .await
            .and_then(crate::origin::check_framing);
        let (parts, body) = match result {
            Ok(res) => res.into_parts(),
            Err(e) => {
                let status = match e {
                    OriginError::Timeout => StatusCode::GATEWAY_TIMEOUT,
                    OriginError::Unreachable(_) => StatusCode::BAD_GATEWAY,
                };
                finish(leader, Outcome::Failed(status));
                metrics::counter!("vanish_origin_errors_total").increment(1);
                if let Some(obj) = stale
                    .as_ref()
                    .filter(|o| lookup::may_serve_stale_on_error(o, SystemTime::now()))
                {
                    tracing::warn!(error = %e, %key, "origin failed; serving stale (stale-if-error)");
                    return deliver::stale_on_error(config, obj, &req, None);
                }
                tracing::warn!(error = %e, %key, "origin failed");
                return deliver::origin_error(config, &e);
            }
        };
        if parts.status.is_server_error() {
            if let Some(obj) = stale
                .as_ref()
                .filter(|o| lookup::may_serve_stale_on_error(o, SystemTime::now()))
            {
                finish(leader, Outcome::Failed(parts.status));
                return deliver::stale_on_error(config, obj, &req, Some(parts.status.as_u16()));
            }
        }
        if parts.status == StatusCode::NOT_MODIFIED {
            if let Some(obj) = stale {
                if selects(&obj.headers, &parts.headers) {
                    return self
                        .refreshed(key, &rule, req, obj, parts, leader, epoch)
                        .await;
                }
                // A 304 that selects no stored response (RFC 9111 section 4.3.4) says
                // nothing usable about it: ask again, unconditionally.
                tracing::debug!(%key, "304 with other validators than stored; refetching");
                drop(body);
                return Box::pin(self.fill(key, rule, req, None, leader, fwd, origin)).await;
            }
        }
        if let Some(obj) = stale.filter(|_| head) {
            // The origin answered a `HEAD`: that never becomes a stored `GET` response.
            if parts.status == StatusCode::OK
                && head_agrees(&obj.headers, obj.body.len(), &parts.headers)
            {
                return self
                    .refreshed(key, &rule, req, obj, parts, leader, epoch)
                    .await;
            }
            if parts.status == StatusCode::OK {
                self.consider_stale(&obj, epoch).await;
            }
            finish(leader, Outcome::NotStored);
            let mut status = CacheStatus::forward(fwd);
            status.fwd_status = Some(parts.status.as_u16());
            let body = CacheBody::boxed(body);
            return deliver::passed_to(config, &req, parts, body, status, true);
        }
        metrics::counter!("vanish_requests_total", "result" => "miss").increment(1);
        // What the cache keeps of these headers must not pin hyper's read buffer.
        let mut parts = parts;
        parts.headers = detach(&parts.headers);
        let now = SystemTime::now();
        let admitted = admission::admit_fill(
            &key,
            &req.headers,
            &parts,
            sent,
            now,
            config,
            &rule.overrides,
        );
        let too_large = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|len| len > config.max_object_size as u64);
        let mut status = CacheStatus::forward(fwd);
        status.fwd_status = Some(parts.status.as_u16());
        // A range is answered from a stored 200; another status is served as it came.
        let wants_range = range::asks(&req.headers, config.max_ranges)
            && matches!(parts.status, StatusCode::OK | StatusCode::PARTIAL_CONTENT);
        let admitted = match admitted {
            Ok(_) if too_large => Err(NotStored::TooLarge),
            Err(reason) => Err(reason),
            Ok(admitted) => Ok(admitted),
        };
        let (object_head, plan) = match admitted {
            Err(reason) if wants_range => {
                // Nothing will be stored to answer the range from: the origin answers it
                // (for a 206, the origin's part of something else is not the client's part).
                finish(leader, Outcome::NotStored);
                drop(body);
                return self.pass(req, origin, fwd, Some(reason.as_str())).await;
            }
            Err(reason) => {
                finish(leader, Outcome::NotStored);
                status.detail = Some(reason.as_str());
                // The client's preconditions were not sent: `passed_to` answers them.
                let body = CacheBody::boxed(body);
                return deliver::passed_to(config, &req, parts, body, status, head);
            }
            Ok(admitted) => admitted,
        };
        // The corrected initial age (RFC 9111 section 4.2.3): a delayed or aged response says so.
        let age = object_head.timing.age_at_store.as_secs();
        if age > 0 || parts.headers.contains_key(header::AGE) {
            parts.headers.insert(header::AGE, age.into());
        }
        // A client that accepts not the body's coding gets it decoded from the stored copy,
        // once the copy is checked: a body refused then is answered 502, not half-sent.
        let needs_decode = deliver::decodes_for(&object_head.headers, &req.headers).is_some();
        if wants_range || needs_decode {
            let fill = Fill {
                head: object_head,
                plan,
                leader,
                epoch,
            };
            return self
                .fill_then_answer(req, body, fill, status, needs_decode, origin)
                .await;
        }
        // The object's `Vary` (with `Accept-Encoding` when the cache negotiates the coding).
        parts.headers.remove(header::VARY);
        for v in object_head.headers.get_all(header::VARY) {
            parts.headers.append(header::VARY, v.clone());
        }
        // The client's preconditions were not sent: the cache answers them from what it
        // stores (the body is read into the store all the same).
        let answered = parts.status.is_success()
            && preconditions::evaluate(&req.method, &req.headers, &parts.headers, now)
                != preconditions::Outcome::Proceed;
        let (tx, rx) = if head || answered {
            (None, CacheBody::empty())
        } else {
            let (tx, rx) = mpsc::channel(16);
            (Some(tx), CacheBody::channel(rx))
        };
        let (decided_tx, decided_rx) = oneshot::channel();
        let fill = Fill {
            head: object_head,
            plan,
            leader,
            epoch,
        };
        tokio::spawn(tee(self.clone(), body, tx, fill, decided_tx, false));
        match decided_rx.await.unwrap_or(Decided::Streaming) {
            Decided::Stored => status.stored = true,
            Decided::TooLarge => status.detail = Some(NotStored::TooLarge.as_str()),
            Decided::Refused(why) => status.detail = Some(why),
            Decided::Failed => {
                return deliver::error(config, StatusCode::BAD_GATEWAY, "origin body failed")
            }
            Decided::Streaming => {}
        }
        if answered {
            let age = parts.headers.get(header::AGE).cloned();
            if let Some(res) = deliver::conditional(
                config,
                &req,
                parts.status,
                &parts.headers,
                now,
                age,
                &status,
            ) {
                return res;
            }
        }
        deliver::passed(config, parts, rx, status, head)
    }
}

impl<S: Store + Clone> Cache<S> {
    /// A miss answered from the stored copy: a range request's (ranges are answered from
    /// stored objects) or one whose client needs the body decoded. Reads the whole body into
    /// the store (the client waits), then answers from the copy. When nothing was stored
    /// (too large once read, a purge overlapped, the body failed) the origin answers; when
    /// the coded body was refused, a client that cannot take it as it is gets a 502.
    async fn fill_then_answer<O: Origin, B>(
        &self,
        req: request::Parts,
        body: B,
        fill: Fill,
        mut status: CacheStatus,
        needs_decode: bool,
        origin: &O,
    ) -> Response<CacheBody>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let (decided_tx, _decided) = oneshot::channel();
        let copy = tee(self.clone(), body, None, fill, decided_tx, true);
        // In its own task, as every fill's copy: other waiters depend on it.
        let ended = tokio::spawn(copy).await.unwrap_or(Ended::NotStored);
        let now = SystemTime::now();
        let fwd = status.fwd.unwrap_or(Fwd::Miss);
        match ended {
            Ended::Stored(obj) => {
                status.stored = true;
                deliver::object(&self.inner.config, &obj, &req, now, status)
            }
            Ended::Refused(why) if needs_decode => deliver::error(
                &self.inner.config,
                StatusCode::BAD_GATEWAY,
                &why.to_string(),
            ),
            Ended::Refused(why) => self.pass(req, origin, fwd, Some(why.as_str())).await,
            Ended::NotStored => self.pass(req, origin, fwd, Some("not-stored")).await,
        }
    }

    /// Forwards a request without caching it (body-less; see [`Cache::serve`]), `Range` and
    /// conditionals included; `detail` says why in `Cache-Status`.
    pub(super) async fn pass<O: Origin>(
        &self,
        req: request::Parts,
        origin: &O,
        fwd: Fwd,
        detail: Option<&'static str>,
    ) -> Response<CacheBody> {
        let head = req.method == Method::HEAD;
        let origin_req = origin_request(&req, None, false);
        match origin
            .fetch(origin_req)
            .await
            .and_then(crate::origin::check_framing)
        {
            Ok(res) => {
                let (parts, body) = res.into_parts();
                let mut status = CacheStatus::forward(fwd);
                status.fwd_status = Some(parts.status.as_u16());
                status.detail = detail;
                let body = CacheBody::boxed(body);
                deliver::passed_to(&self.inner.config, &req, parts, body, status, head)
            }
            Err(e) => deliver::origin_error(&self.inner.config, &e),
        }
    }
}

fn finish(leader: Option<Leader>, outcome: Outcome) {
    if let Some(l) = leader {
        l.finish(outcome);
    }
}

/// Streams the origin body to the client (while it listens) and stores a complete copy.
///
/// The copy is stored before the client gets the body's last byte (with a `Content-Length`) or
/// its end (chunked): once a client has a complete miss response, its object is in the store,
/// so a purge sent after it matches it. `decided` learns what the response's head may say of
/// storing: after the store when the body ends within [`READ_BEFORE_ANSWER`] bytes, else
/// "streaming" as soon as more was read (or the client's channel is full).
async fn tee<S: Store + Clone, B>(
    cache: Cache<S>,
    mut body: B,
    mut tx: Option<mpsc::Sender<Result<Bytes, BoxError>>>,
    fill: Fill,
    decided: oneshot::Sender<Decided>,
    keep: bool,
) -> Ended
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let config = &cache.inner.config;
    let max = config.max_object_size;
    let Fill {
        head: object_head,
        mut plan,
        mut leader,
        epoch,
    } = fill;
    // Sized from Content-Length when the origin gives one, so the stored body holds no slack.
    let expected = object_head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut buf = BytesMut::with_capacity(expected.unwrap_or(0).min(max));
    // `Some` until the copy is stored (or given up).
    let mut to_store = Some(object_head);
    let mut decided = Some(decided);
    let mut ended = Ended::NotStored;
    let mut read = 0usize;
    loop {
        let frame = match tokio::time::timeout(config.origin_body_timeout, body.frame()).await {
            Err(_) => Err::<_, BoxError>("origin body timed out".into()),
            Ok(None) => break,
            Ok(Some(Err(e))) => Err(e.into()),
            Ok(Some(Ok(f))) => Ok(f),
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let key = to_store.as_ref().map(|t| t.meta.key.to_string());
                tracing::warn!(error = %e, key = key.as_deref().unwrap_or("-"), "origin body failed; not stored");
                metrics::counter!("vanish_origin_errors_total").increment(1);
                finish(leader.take(), Outcome::Failed(StatusCode::BAD_GATEWAY));
                tell(&mut decided, Decided::Failed);
                if let Some(tx) = tx {
                    let _ = tx.send(Err(e)).await;
                }
                return Ended::NotStored;
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read += data.len();
        if let Some(t) = &to_store {
            if buf.len() + data.len() > max {
                to_store = None;
                buf = BytesMut::new();
                finish(leader.take(), Outcome::NotStored);
                tell(&mut decided, Decided::TooLarge);
            } else if let Err(why) = plan.feed(&data) {
                refuse(&t.meta.key, &why, &mut decided, leader.take());
                to_store = None;
                buf = BytesMut::new();
                ended = Ended::Refused(why);
            } else {
                buf.extend_from_slice(&data);
                if expected == Some(buf.len()) {
                    // The last byte: store before the client sees it.
                    if let Some(t) = to_store.take() {
                        let plan = std::mem::replace(&mut plan, BodyPlan::Keep);
                        let copy = Copy {
                            head: t,
                            buf: std::mem::take(&mut buf),
                            plan,
                            epoch,
                            keep,
                        };
                        ended = store_copy(&cache, copy, &mut decided, leader.take()).await;
                    }
                }
            }
        }
        if read > READ_BEFORE_ANSWER || tx.as_ref().is_some_and(|t| t.capacity() == 0) {
            tell(&mut decided, Decided::Streaming);
        }
        if let Some(t) = &tx {
            if t.send(Ok(data)).await.is_err() {
                tx = None;
            }
        }
        if to_store.is_none() && tx.is_none() {
            return ended; // stored or given up, and nobody wants the rest
        }
    }
    if let Some(t) = to_store {
        let copy = Copy {
            head: t,
            buf,
            plan,
            epoch,
            keep,
        };
        ended = store_copy(&cache, copy, &mut decided, leader).await;
    }
    tell(&mut decided, Decided::Streaming);
    // Only now does a chunked body end for the client.
    drop(tx);
    ended
}

/// A fill's copy in the making: the head it will be stored with, what becomes of its body,
/// the coalesced waiters to tell, and the epoch the fill started at.
struct Fill {
    head: Head,
    plan: BodyPlan,
    leader: Option<Leader>,
    epoch: u64,
}

/// How a fill's copy ended.
enum Ended {
    /// Stored (the copy is kept only when the fill answers from it).
    Stored(Box<CachedObject>),
    /// Its coded body was refused.
    Refused(Refused),
    /// Not stored for another reason (too large, a purge overlapped, the body failed, or
    /// stored but not kept).
    NotStored,
}

/// A complete body to store.
struct Copy {
    head: Head,
    buf: BytesMut,
    plan: BodyPlan,
    epoch: u64,
    /// Keep a copy of the stored object for the caller.
    keep: bool,
}

/// A coded body refused at admission: not stored; counted and logged.
fn refuse(
    key: &ResourceKey,
    why: &Refused,
    decided: &mut Option<oneshot::Sender<Decided>>,
    leader: Option<Leader>,
) {
    metrics::counter!("vanish_decode_refused_total", "reason" => why.as_str()).increment(1);
    tracing::debug!(%key, reason = %why, "coded body refused; not stored");
    finish(leader, Outcome::NotStored);
    tell(decided, Decided::Refused(why.as_str()));
}

fn decision(outcome: Outcome) -> Decided {
    match outcome {
        Outcome::Stored => Decided::Stored,
        _ => Decided::Streaming,
    }
}

/// Stores the complete copy of a fill (checked, or compressed, as its plan says) and tells
/// the response and the coalesced waiters what became of it.
async fn store_copy<S: Store + Clone>(
    cache: &Cache<S>,
    copy: Copy,
    decided: &mut Option<oneshot::Sender<Decided>>,
    leader: Option<Leader>,
) -> Ended {
    let key = copy.head.meta.key.clone();
    let (head, body) = match copy
        .plan
        .finish(copy.head, exact(copy.buf), &cache.inner.config)
    {
        Ok(ready) => ready,
        Err(why) => {
            refuse(&key, &why, decided, leader);
            return Ended::Refused(why);
        }
    };
    let obj = CachedObject::new(head, body);
    let kept = copy.keep.then(|| Box::new(obj.clone()));
    let outcome = match cache.inner.store.insert(obj, copy.epoch).await {
        Ok(Inserted::Fresh) | Ok(Inserted::MarkedStale) => Outcome::Stored,
        Ok(Inserted::Dropped) => {
            tracing::debug!(%key, "fill overlapped a matching purge; not stored");
            Outcome::NotStored
        }
        Err(e) => {
            tracing::warn!(error = %e, %key, "store insert failed");
            Outcome::NotStored
        }
    };
    tell(decided, decision(outcome));
    finish(leader, outcome);
    match (outcome, kept) {
        (Outcome::Stored, Some(obj)) => Ended::Stored(obj),
        _ => Ended::NotStored,
    }
}

/// The body as stored: a grown buffer (chunked bodies) is copied to its exact size, so the
/// memory an object holds is what the store's weigher counts.
fn exact(buf: BytesMut) -> Bytes {
    if buf.capacity() > buf.len() + buf.len() / 8 + 64 {
        Bytes::copy_from_slice(&buf)
    } else {
        buf.freeze()
    }
}

/// Reads a whole response body (used for background refreshes, whose client is nobody).
pub(super) async fn drain(body: CacheBody) {
    let _ = body.collect().await;
}
