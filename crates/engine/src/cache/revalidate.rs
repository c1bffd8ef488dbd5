//! Revalidation: refreshing a stale object with the origin.
//!
//! Owns what happens on a `304 Not Modified` (the stored headers are updated with
//! `http-cache-semantics`' `after_response` and the body is kept) and the background refresh
//! behind `stale-while-revalidate` (at most one per resource, via the coalescer).

use std::sync::Arc;
use std::time::SystemTime;

use http::{header, request, response, Response, StatusCode};
use http_cache_semantics::AfterResponse;

use super::fill::drain;
use super::handle::Cache;
use super::lookup::PolicyView;
use super::{admission, deliver};
use crate::body::CacheBody;
use crate::cache_status::{CacheStatus, Fwd};
use crate::coalesce::{Join, Leader, Outcome};
use crate::key::ResourceKey;
use crate::object::CachedObject;
use crate::origin::Origin;
use crate::policy::RuleInfo;
use crate::store::{Inserted, Store};

impl<S: Store + Clone> Cache<S> {
    /// Handles a `304` to a conditional fill: refresh the stored headers, keep the body.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn refreshed(
        &self,
        key: ResourceKey,
        rule: &RuleInfo,
        req: request::Parts,
        old: Arc<CachedObject>,
        not_modified: response::Parts,
        leader: Option<Leader>,
        epoch: u64,
    ) -> Response<CacheBody> {
        let config = &self.inner.config;
        let now = SystemTime::now();
        let view = PolicyView::new(&old, &req.headers);
        // Many origins answer 304 without repeating the validator we sent; the 304 answers
        // our conditional for this very object, so lend it the stored validators.
        let mut not_modified = not_modified;
        // What the cache keeps of these headers must not pin hyper's read buffer.
        not_modified.headers = crate::headers::detach(&not_modified.headers);
        // A cookie the origin set on this 304 is meant for the client whose request this is:
        // it reaches that client, and is never stored.
        let set_cookies: Vec<_> = not_modified
            .headers
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
        if !not_modified.headers.contains_key(header::ETAG)
            && !not_modified.headers.contains_key(header::LAST_MODIFIED)
        {
            for name in [header::ETAG, header::LAST_MODIFIED] {
                if let Some(v) = old.headers.get(&name) {
                    not_modified.headers.insert(name, v.clone());
                }
            }
        }
        let mut status = CacheStatus::forward(Fwd::Stale);
        status.fwd_status = Some(304);
        let merged = match old.policy.after_response(&view, &not_modified, now) {
            AfterResponse::NotModified(_, parts) => parts,
            AfterResponse::Modified(..) => {
                // The 304's validators do not match what we hold: the body cannot be reused.
                if let Some(l) = leader {
                    l.finish(Outcome::NotStored);
                }
                return deliver::error(
                    config,
                    StatusCode::BAD_GATEWAY,
                    "origin answered 304 with validators that do not match the stored response",
                );
            }
        };
        let mut headers = merged.headers;
        headers.remove(header::AGE);
        // The crate stamps its own Date; keep the origin's if the 304 had none.
        if let Some(d) = not_modified
            .headers
            .get(header::DATE)
            .or(old.headers.get(header::DATE))
        {
            headers.insert(header::DATE, d.clone());
        }
        admission::clean_stored_headers(config, &mut headers);
        let mut res_parts = Response::new(()).into_parts().0;
        res_parts.status = old.status;
        res_parts.headers = headers;
        let new_obj =
            match admission::admit(&key, &req.headers, &res_parts, now, config, &rule.overrides) {
                Ok(mut object_head) => {
                    // The same variant of the same resource, with its tags: only the head changed.
                    object_head.meta.vary_values = old.meta.vary_values.clone();
                    object_head.meta.tags = old.meta.tags.clone();
                    object_head.variant = old.variant.clone();
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
            return with_cookies(deliver::from_parts_and_body(
                config,
                &req,
                parts,
                old.body.clone(),
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
