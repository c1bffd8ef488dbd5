//! Admission: what of an origin response an object keeps, and the one way objects are built.
//!
//! Owns the step between the verdict ([`crate::freshness`] says whether a response may be
//! stored, and for how long) and the store: the object's [`Head`] (id, variant, the metadata
//! purges match on, the headers a shared copy may keep). Fill, revalidation and
//! [`CachedObject::from_response`] all admit through [`admit`]. It stores nothing itself.

use std::time::SystemTime;

use bytes::Bytes;
use http::{header, response, HeaderMap, StatusCode};

use super::deliver::strip_tags;
use super::range;
use crate::config::CacheConfig;
use crate::freshness::{canonical_request, evaluate, NotStored, Overrides, Verdict};
use crate::headers::{detach, strip_hop_by_hop};
use crate::key::ResourceKey;
use crate::object::{next_object_id, CachedObject, Head, ObjectMeta};
use crate::variant::{Vary, VaryNames};

/// Prepares origin response headers for storage: no hop-by-hop, `Age`, `Set-Cookie` (a
/// stored response is shared), and no tag headers when they are stripped from clients.
pub(super) fn clean_stored_headers(config: &CacheConfig, headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    headers.remove(header::AGE);
    headers.remove(header::SET_COOKIE);
    if config.strip_tag_headers {
        strip_tags(config, headers);
    }
}

/// Judges `res`, the origin's answer (requested at `sent`, received at `now`) to a client
/// request with headers `client` for `key`, and builds the head of the object a shared cache
/// may keep of it; the error says why it may not be stored.
pub(super) fn admit(
    key: &ResourceKey,
    client: &HeaderMap,
    res: &response::Parts,
    sent: SystemTime,
    now: SystemTime,
    config: &CacheConfig,
    overrides: &Overrides,
) -> Result<Head, NotStored> {
    // The engine owns this rule, whatever `http-cache-semantics` or a route's
    // `cacheable_status` say: an object is always a complete response.
    if res.status == http::StatusCode::PARTIAL_CONTENT {
        return Err(NotStored::Partial);
    }
    // The canonical request is built from the varied headers, so read `Vary` first.
    let vary = match VaryNames::from_response(&res.headers) {
        Vary::Names(n) => n,
        Vary::Star => return Err(NotStored::VaryStar),
    };
    let form = config.vary_values;
    let canonical = canonical_request(key, &vary.values_in(client, form), client);
    let (policy, vary, timing, tags) = match evaluate(&canonical, res, sent, now, config, overrides)
    {
        Verdict::Store {
            policy,
            vary,
            timing,
            tags,
        } => (policy, vary, timing, tags),
        Verdict::Pass(reason) => return Err(reason),
    };
    let mut headers = res.headers.clone();
    clean_stored_headers(config, &mut headers);
    if res.status == StatusCode::OK {
        // Ranges are answered from every stored 200 (`range.rs`); saying so once, here, keeps
        // the insert off every hit.
        headers.insert(header::ACCEPT_RANGES, range::ACCEPT_BYTES);
    }
    Ok(Head {
        meta: ObjectMeta {
            id: next_object_id(),
            key: key.clone(),
            vary_values: vary.values_in(client, form),
            tags,
        },
        variant: vary.variant_key_in(client, form),
        vary,
        status: res.status,
        headers,
        policy: *policy,
        timing,
    })
}

impl CachedObject {
    /// Builds an object from a client request's headers and a complete origin response, if a
    /// shared cache may store it (used by front ends that buffer, tests and benchmarks).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use vanish_engine::{CacheConfig, CachedObject, ResourceKey};
    /// let key = ResourceKey::parse_url("http://example.com/a").unwrap();
    /// let res = http::Response::builder()
    ///     .header("cache-control", "max-age=60")
    ///     .header("surrogate-key", "a-tag")
    ///     .body(bytes::Bytes::from_static(b"hello"))
    ///     .unwrap();
    /// let obj = CachedObject::from_response(key, &http::HeaderMap::new(), res,
    ///     &CacheConfig::default(), SystemTime::now()).unwrap();
    /// assert_eq!(&*obj.meta.tags[0], "a-tag");
    /// assert!(obj.headers.get("surrogate-key").is_none(), "tag headers are stripped");
    /// assert_eq!(obj.headers["content-length"], "5");
    /// ```
    pub fn from_response(
        key: ResourceKey,
        request_headers: &HeaderMap,
        response: http::Response<Bytes>,
        config: &CacheConfig,
        now: SystemTime,
    ) -> Result<CachedObject, NotStored> {
        let (mut parts, body) = response.into_parts();
        parts.headers = detach(&parts.headers);
        if body.len() > config.max_object_size {
            return Err(NotStored::TooLarge);
        }
        let head = admit(
            &key,
            request_headers,
            &parts,
            now,
            now,
            config,
            &Overrides::default(),
        )?;
        Ok(CachedObject::new(head, body))
    }
}
