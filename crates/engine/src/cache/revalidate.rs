//! Revalidation: refreshing a stale object with the origin.
//!
//! Owns what happens when the origin's answer selects a stale object (a `304 Not Modified`,
//! or a `HEAD`'s `200` that agrees with it): the stored headers are updated by the engine's
//! own rules ([`crate::validators`]), the body is kept, and the result is stored again; a
//! `HEAD`'s `200` that disagrees makes the object stale. Also the background refresh behind
//! `stale-while-revalidate` (at most one per resource, via the coalescer). Whether a `304`
//! selects the object is decided by fill, before it hands the `304` over.

use std::sync::Arc;
use std::time::SystemTime;

use http::{header, request, response, Response};

use super::fill::drain;
use super::handle::Cache;
use super::{admission, deliver};
use crate::body::CacheBody;
use crate::cache_status::{CacheStatus, Fwd};
use crate::coalesce::{Join, Leader, Outcome};
use crate::key::ResourceKey;
use crate::object::{next_object_id, CachedObject, State};
use crate::origin::Origin;
use crate::policy::RuleInfo;
use crate::store::{Inserted, Store};
use crate::validators::updated_headers;

impl<S: Store + Clone> Cache<S> {
    /// Updates a stale object from an origin response that selected it (a `304` to a
    /// conditional fill, or a `200` to a `HEAD` that agrees with it; see
    /// [`crate::validators`]): the stored header section is updated, the body kept, and the
    /// result judged and stored again.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn refreshed(
        &self,
        key: ResourceKey,
        rule: &RuleInfo,
        req: request::Parts,
        old: Arc<CachedObject>,
        update: response::Parts,
        leader: Option<Leader>,
        epoch: u64,
    ) -> Response<CacheBody> {
        let config = &self.inner.config;
        let now = SystemTime::now();
        // What the cache keeps of these headers must not pin hyper's read buffer.
        let new_headers = crate::headers::detach(&update.headers);
        // A cookie the origin set on this update is meant for the client whose request this
        // is: it reaches that client, and is never stored.
        let set_cookies: Vec<_> = new_headers
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        let with_cookies = |mut res: Response<CacheBody>| {
            for c in &set_cookies {
                res.headers_mut().append(header::SET_COOKIE, c.clone());
            }
            res
        };
        let mut status = CacheStatus::forward(Fwd::Stale);
        status.fwd_status = Some(update.status.as_u16());
        let mut headers = updated_headers(&old.headers, &new_headers, now);
        admission::clean_stored_headers(config, &mut headers);
        // An `ETag` the cache made weak (it compressed the body) stays weak when the update
        // repeats the origin's strong one.
        if let (Some(kept), Some(new)) = (old.headers.get(header::ETAG), headers.get(header::ETAG))
        {
            if kept.as_bytes().strip_prefix(b"W/") == Some(new.as_bytes()) {
                headers.insert(header::ETAG, kept.clone());
            }
        }
        // The update's `Age` (from a cache behind us) counts in the refreshed response's age.
        if let Some(age) = new_headers.get(header::AGE) {
            headers.insert(header::AGE, age.clone());
        }
        let mut res_parts = Response::new(()).into_parts().0;
        res_parts.status = old.status;
        res_parts.headers = headers;
        let new_obj = match admission::admit(
            &key,
            &req.headers,
            &res_parts,
            now,
            now,
            config,
            &rule.overrides,
        ) {
            Ok(mut object_head) => {
                // The same variant of the same resource, with its tags: only the head changed.
                object_head.meta.vary_values = old.meta.vary_values.clone();
                object_head.meta.tags = old.meta.tags.clone();
                object_head.variant = old.variant.clone();
                object_head.vary = old.vary.clone();
                object_head.decoded_len = old.decoded_len;
                Some(CachedObject::new(object_head, old.body.clone()))
            }
            Err(reason) => {
                status.detail = Some(reason.as_str());
                None
            }
        };
        let Some(new_obj) = new_obj else {
            if let Some(l) = leader {
                l.finish(Outcome::NotStored);
            }
            let mut parts = res_parts;
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::AGE);
            return with_cookies(deliver::from_parts_and_body(
                config,
                &req,
                parts,
                (old.body.clone(), old.decoded_len),
                status,
            ));
        };
        metrics::counter!("vanish_requests_total", "result" => "revalidated").increment(1);
        let new_obj = Arc::new(new_obj);
        let stored = match self
            .inner
            .store
            .insert(CachedObject::clone(&new_obj), epoch)
            .await
        {
            Ok(Inserted::Fresh) | Ok(Inserted::MarkedStale) => true,
            Ok(Inserted::Dropped) => false,
            Err(e) => {
                tracing::warn!(error = %e, %key, "store insert failed");
                false
            }
        };
        if let Some(l) = leader {
            l.finish(if stored {
                Outcome::Stored
            } else {
                Outcome::NotStored
            });
        }
        status.stored = stored;
        status.ttl = Some(new_obj.ttl_secs(now));
        with_cookies(deliver::object(config, &new_obj, &req, now, status))
    }

    /// RFC 9111 section 4.3.5: a `HEAD`'s `200` that disagrees with a stored response makes
    /// it stale. A fresh one (a client's `no-cache` sent the `HEAD` forward) is stored again
    /// as stale from now; a stale one already is.
    pub(super) async fn consider_stale(&self, obj: &CachedObject, epoch: u64) {
        let now = SystemTime::now();
        if obj.state(now) != State::Fresh {
            return;
        }
        let mut head = obj.head();
        head.meta.id = next_object_id();
        head.timing.ttl_at_store = now
            .duration_since(head.timing.stored_at)
            .unwrap_or_default();
        let copy = CachedObject::new(head, obj.body.clone());
        if let Err(e) = self.inner.store.insert(copy, epoch).await {
            tracing::warn!(error = %e, key = %obj.key(), "store insert failed");
        }
    }

    /// Refreshes a stale object in the background (stale-while-revalidate), once per
    /// resource at a time.
    pub(super) fn spawn_refresh<O: Origin>(
        &self,
        key: ResourceKey,
        rule: Arc<RuleInfo>,
        req: request::Parts,
        obj: Arc<CachedObject>,
        origin: O,
    ) {
        let epoch = self.inner.store.epoch();
        let Join::Lead(leader) = self.inner.coalescer.join(&key, epoch) else {
            return; // a fill is already under way
        };
        let cache = self.clone();
        tokio::spawn(async move {
            let mut req = req;
            req.method = http::Method::GET;
            // Nobody reads the answer: a range would only delay the refresh.
            req.headers.remove(header::RANGE);
            req.headers.remove(header::IF_RANGE);
            let res = cache
                .fill(key, rule, req, Some(obj), Some(leader), Fwd::Stale, &origin)
                .await;
            drain(res.into_body()).await;
        });
    }
}
