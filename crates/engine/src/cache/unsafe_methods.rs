//! Invalidation after unsafe methods (RFC 9111 section 4.4) and RFC 9875
//! `Cache-Group-Invalidation`.
//!
//! Owns which URLs and groups a successful `POST`/`PUT`/`DELETE`/`PATCH` invalidates: the
//! request URL, and `Location` / `Content-Location` when they name the same origin, plus the
//! groups the response lists. Purging itself goes through the store.

use http::{header, request, HeaderMap, Method, StatusCode};

use super::handle::Cache;
use crate::key::ResourceKey;
use crate::purge::selector::{PurgeRequest, Selector};
use crate::purge::tags::{read_tags, TagHeader, TagSyntax};
use crate::store::{PurgeReport, Store};

/// True for methods a cache must treat as unsafe.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl<S: Store + Clone> Cache<S> {
    /// After an unsafe request was forwarded and answered: invalidates what it changed.
    ///
    /// Does nothing for safe methods or error responses. Returns the purge's report when a
    /// purge ran.
    pub async fn after_unsafe(
        &self,
        req: &request::Parts,
        status: StatusCode,
        res_headers: &HeaderMap,
    ) -> Option<PurgeReport> {
        if !is_unsafe(&req.method) || !(status.is_success() || status.is_redirection()) {
            return None;
        }
        let mut prepared_req = req.clone();
        let key = self.prepare(&mut prepared_req).ok()?.key;
        let mut selectors = vec![Selector::for_key(&key)];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(loc) = res_headers.get(&name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            if let Some(s) = same_origin_selector(&key, loc) {
                selectors.push(s);
            }
        }
        let groups = read_tags(
            res_headers,
            &[TagHeader::new(
                "cache-group-invalidation",
                TagSyntax::StructuredStrings,
            )],
        );
        selectors.extend(groups.iter().map(|g| Selector::tag(g)));
        match self.invalidator().run(PurgeRequest::new(selectors)).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, %key, "invalidation after unsafe method failed");
                None
            }
        }
    }
}

/// A `url` selector for `location` resolved against the request, when it is same-origin.
fn same_origin_selector(base: &ResourceKey, location: &str) -> Option<Selector> {
    if location.starts_with('/') && !location.starts_with("//") {
        let url = format!("{}://{}{}", base.scheme().as_str(), base.host(), location);
        return Selector::url(&url).ok();
    }
    let target = ResourceKey::parse_url(location).ok()?;
    (target.host() == base.host()).then(|| Selector::url(&target.to_string()).ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_only_on_the_same_origin() {
        let base = ResourceKey::parse_url("http://site.example/posts").unwrap();
        assert!(same_origin_selector(&base, "/posts/1").is_some());
        assert!(same_origin_selector(&base, "http://site.example/posts/1").is_some());
        assert!(same_origin_selector(&base, "http://evil.example/posts/1").is_none());
        assert!(same_origin_selector(&base, "//evil.example/x").is_none());
        assert!(!is_unsafe(&Method::GET));
        assert!(is_unsafe(&Method::PATCH));
    }
}
