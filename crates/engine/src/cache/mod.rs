//! The cache: one request's path through lookup, fill, store and delivery.
//!
//! Owns the orchestration of a `GET`/`HEAD` ([`Cache::serve`]) and of the invalidations an
//! unsafe method triggers ([`Cache::after_unsafe`]). Each stage of an object's life has its own
//! file: [`lookup`] (find and judge), [`fill`] (fetch, tee and store), [`revalidate`]
//! (conditional requests and background refresh), [`deliver`] (build the client's response),
//! [`unsafe_methods`] (RFC 9111 section 4.4). The stages never talk to a socket: the front end
//! passes an [`Origin`] and writes the returned response.

mod deliver;
mod fill;
mod lookup;
mod revalidate;
mod unsafe_methods;

use std::sync::Arc;
use std::time::SystemTime;

use http::{request, Method, Response, StatusCode};

use crate::body::CacheBody;
use crate::cache_status::{CacheStatus, Fwd};
use crate::coalesce::{self, Coalescer, Join, Outcome};
use crate::config::CacheConfig;
use crate::invalidator::Invalidator;
use crate::key::KeyError;
use crate::origin::Origin;
use crate::policy::{DefaultPolicy, KeyPolicy, Prepared};
use crate::store::Store;

pub use lookup::Judgement;

/// How many times a request follows other fills before it fills on its own.
const MAX_FOLLOW_ROUNDS: usize = 3;

/// The cache engine over a store. Cheap to clone; clones share everything.
///
/// ```
/// # async fn demo<S: vanish_engine::Store + Clone, O: vanish_engine::Origin>(store: S, origin: O) {
/// use vanish_engine::{Cache, CacheConfig};
/// let cache = Cache::new(store, CacheConfig::default());
/// let (parts, ()) = http::Request::get("/").header("host", "example.com").body(()).unwrap().into_parts();
/// let response = cache.serve(parts, &origin).await;
/// println!("{:?}", response.headers().get("cache-status"));
/// # }
/// ```
pub struct Cache<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Cache<S> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<S> {
    store: S,
    config: CacheConfig,
    policy: Arc<dyn KeyPolicy>,
    coalescer: Arc<Coalescer>,
}

impl<S: Store + Clone> Cache<S> {
    /// A cache over `store` with the default key policy (the URL, verbatim).
    pub fn new(store: S, config: CacheConfig) -> Self {
        Self::with_policy(store, config, Arc::new(DefaultPolicy))
    }

    /// A cache over `store` with a key policy (e.g. a [`crate::RulesPolicy`] from config).
    pub fn with_policy(store: S, config: CacheConfig, policy: Arc<dyn KeyPolicy>) -> Self {
        Cache {
            inner: Arc::new(Inner {
                store,
                config,
                policy,
                coalescer: Arc::new(Coalescer::default()),
            }),
        }
    }

    /// The key policy.
    pub fn policy(&self) -> &Arc<dyn KeyPolicy> {
        &self.inner.policy
    }

    /// What the key policy makes of a request (for `explain`): its key, rule and bypass.
    pub fn prepare(&self, req: &mut request::Parts) -> Result<Prepared, KeyError> {
        self.inner.policy.prepare(req, self.inner.config.scheme)
    }

    /// Runs the entrance rules on a request (forwarding headers, `Connection`, `Host`; see
    /// [`crate::forwarding`]). [`Cache::serve`] does it itself; front ends call it for the
    /// requests they forward on their own (unsafe methods). Returns what the key must add
    /// for the forwarding headers that were kept.
    pub fn admit(&self, req: &mut request::Parts) -> Option<String> {
        crate::forwarding::admit(req, self.inner.config.scheme, &self.inner.config.forwarding)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// A handle that purges this cache's store, through its key policy.
    pub fn invalidator(&self) -> Invalidator<S> {
        Invalidator::with_policy(self.inner.store.clone(), self.inner.policy.clone())
    }

    /// Fills in flight right now.
    pub fn fills_in_flight(&self) -> usize {
        self.inner.coalescer.in_flight()
    }

    /// Serves a `GET` or `HEAD` from cache or through the origin.
    ///
    /// Any other method is forwarded without a body and not cached: front ends forward
    /// unsafe methods themselves and then call [`Cache::after_unsafe`].
    pub async fn serve<O: Origin>(&self, req: request::Parts, origin: &O) -> Response<CacheBody> {
        if req.method != Method::GET && req.method != Method::HEAD {
            return self.pass(req, origin, Fwd::Method).await;
        }
        let mut req = req;
        let forwarded = self.admit(&mut req);
        let Prepared {
            mut key,
            bypass,
            rule,
        } = match self.prepare(&mut req) {
            Ok(p) => p,
            Err(e) => return deliver::error(&self.inner.config, StatusCode::BAD_REQUEST, &e.0),
        };
        if let Some(f) = forwarded {
            let extra = match key.extra() {
                Some(e) => format!("{e}{f}"),
                None => f,
            };
            key = key.with_extra(Some(extra));
        }

        if bypass {
            metrics::counter!("vanish_requests_total", "result" => "bypass").increment(1);
            return self.pass(req, origin, Fwd::Bypass).await;
        }
        let mut rounds = 0;
        loop {
            rounds += 1;
            let now = SystemTime::now();
            let found = self.lookup(&key, &req.headers, now).await;
            let (stale, fwd) = match &found {
                None => (None, Fwd::Miss),
                Some(obj) => match lookup::judge(obj, &req, now) {
                    Judgement::Fresh => {
                        metrics::counter!("vanish_requests_total", "result" => "hit").increment(1);
                        return deliver::hit(&self.inner.config, obj, &req, now, None);
                    }
                    Judgement::StaleWhileRevalidate => {
                        metrics::counter!("vanish_requests_total", "result" => "stale")
                            .increment(1);
                        self.spawn_refresh(
                            key.clone(),
                            rule.clone(),
                            req.clone(),
                            obj.clone(),
                            origin.clone(),
                        );
                        return deliver::hit(
                            &self.inner.config,
                            obj,
                            &req,
                            now,
                            Some("stale-while-revalidate"),
                        );
                    }
                    Judgement::Revalidate(f) => (found.clone(), f),
                },
            };
            if rounds > MAX_FOLLOW_ROUNDS {
                return self.fill(key, rule, req, stale, None, fwd, origin).await;
            }
            let epoch = self.inner.store.epoch();
            match self.inner.coalescer.join(&key, epoch) {
                Join::Lead(leader) => {
                    // A fill that ended between our lookup and our join has stored its object
                    // (stores happen before flights end): look once more before filling again.
                    let now = SystemTime::now();
                    if let Some(obj) = self.lookup(&key, &req.headers, now).await {
                        if lookup::judge(&obj, &req, now) == Judgement::Fresh {
                            leader.finish(Outcome::Stored);
                            metrics::counter!("vanish_requests_total", "result" => "hit")
                                .increment(1);
                            return deliver::hit(&self.inner.config, &obj, &req, now, None);
                        }
                    }
                    return self
                        .fill(key, rule, req, stale, Some(leader), fwd, origin)
                        .await;
                }
                Join::Follow(rx) => match coalesce::wait(rx).await {
                    Outcome::Stored | Outcome::Abandoned => continue,
                    Outcome::NotStored => {
                        return self.fill(key, rule, req, stale, None, fwd, origin).await;
                    }
                    Outcome::Failed(status) => {
                        if let Some(obj) = stale
                            .as_ref()
                            .filter(|o| lookup::may_serve_stale_on_error(o, SystemTime::now()))
                        {
                            return deliver::stale_on_error(
                                &self.inner.config,
                                obj,
                                &req,
                                Some(status.as_u16()),
                            );
                        }
                        return deliver::error(
                            &self.inner.config,
                            status,
                            "origin failed for a coalesced request",
                        );
                    }
                },
            }
        }
    }

    /// Forwards a request without caching it (body-less; see [`Cache::serve`]).
    async fn pass<O: Origin>(
        &self,
        req: request::Parts,
        origin: &O,
        fwd: Fwd,
    ) -> Response<CacheBody> {
        let head = req.method == Method::HEAD;
        let origin_req = fill::origin_request(&req, None, false);
        match origin
            .fetch(origin_req)
            .await
            .and_then(crate::origin::check_framing)
        {
            Ok(res) => {
                let (parts, body) = res.into_parts();
                let mut status = CacheStatus::forward(fwd);
                status.fwd_status = Some(parts.status.as_u16());
                deliver::passed(
                    &self.inner.config,
                    parts,
                    CacheBody::boxed(body),
                    status,
                    head,
                )
            }
            Err(e) => deliver::origin_error(&self.inner.config, &e),
        }
    }
}

pub use deliver::{clean_stored_headers, CACHE_STATUS};

/// The cache's `502`/`504` response for an origin that gave no response (for front ends that
/// forward requests themselves).
pub fn origin_error_response(
    config: &CacheConfig,
    e: &crate::origin::OriginError,
) -> Response<CacheBody> {
    deliver::origin_error(config, e)
}
