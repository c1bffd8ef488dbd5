//! Serve: one `GET`/`HEAD` from entrance to response, through lookup, coalescing and fill.
//!
//! Owns the order of the stages and the follow-the-leader loop of coalesced misses; each
//! stage's work is in its own file. Requests the cache does not store are passed through
//! (`Cache::pass`, in `fill.rs`).

use std::time::SystemTime;

use http::{request, Method, Response, StatusCode};

use super::deliver;
use super::handle::Cache;
use super::lookup::{self, Judgement};
use crate::body::CacheBody;
use crate::cache_status::Fwd;
use crate::coalesce::{self, Join, Outcome};
use crate::origin::Origin;
use crate::policy::Prepared;
use crate::store::Store;

/// How many times a request follows other fills before it fills on its own.
const MAX_FOLLOW_ROUNDS: usize = 3;

impl<S: Store + Clone> Cache<S> {
    /// Serves a `GET` or `HEAD` from cache or through the origin.
    ///
    /// Any other method is forwarded without a body and not cached: front ends forward
    /// unsafe methods themselves and then call [`Cache::after_unsafe`].
    pub async fn serve<O: Origin>(&self, req: request::Parts, origin: &O) -> Response<CacheBody> {
        if req.method != Method::GET && req.method != Method::HEAD {
            return self.pass(req, origin, Fwd::Method, None).await;
        }
        let mut req = req;
        let forwarded = self.admit(&mut req);
        let Prepared {
            mut key,
            bypass,
            rule,
        } = match self.prepare(&mut req) {
            Ok(p) => p,
            Err(e) => {
                return deliver::error(&self.inner.config, StatusCode::BAD_REQUEST, &e.to_string())
            }
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
            return self.pass(req, origin, Fwd::Bypass, None).await;
        }
        let asks = lookup::Asks::of(&req.headers);
        let config = &self.inner.config;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let now = SystemTime::now();
            let found = self.lookup(&key, &req.headers, now).await;
            let (stale, fwd) = match &found {
                None if asks.only_if_cached => return deliver::only_if_cached(config),
                None => (None, Fwd::Miss),
                Some(obj) => match lookup::judge(obj, &asks, now, config) {
                    Judgement::Fresh => {
                        metrics::counter!("vanish_requests_total", "result" => "hit").increment(1);
                        return deliver::hit(config, obj, &req, now, None);
                    }
                    Judgement::StaleAccepted => {
                        metrics::counter!("vanish_requests_total", "result" => "stale")
                            .increment(1);
                        return deliver::hit(config, obj, &req, now, Some("max-stale"));
                    }
                    Judgement::Revalidate(_) if asks.only_if_cached => {
                        return deliver::only_if_cached(config)
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
                        if lookup::judge(&obj, &asks, now, config) == Judgement::Fresh {
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
}
