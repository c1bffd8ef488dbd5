//! Admission: what of an origin response an object keeps, and the one way objects are built.
//!
//! Owns the step between the verdict ([`crate::freshness`] says whether a response may be
//! stored, and for how long) and the store: the object's [`Head`] (id, variant, the metadata
//! purges match on, the headers a shared copy may keep), and what becomes of its body on the
//! way ([`BodyPlan`]: a `gzip`/`br` body is decoded once, counting, against the decode
//! limits; an identity body of a compressed type is compressed once, when stored). The
//! content coding is a dimension of every variant: a coded body's object varies on
//! `Accept-Encoding` (added when the origin did not say so), whose value in the variant is
//! the body's coding. Fill, revalidation and [`CachedObject::from_response`] all admit
//! through [`admit`]. It stores nothing itself.

use std::time::SystemTime;

use bytes::Bytes;
use http::{header, response, HeaderMap, HeaderValue, StatusCode};

use super::deliver::{strip_tags, weak_etag};
use super::range;
use crate::coding::{Accepted, Coding};
use crate::config::CacheConfig;
use crate::decode::{Inflater, Refused};
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
    let coding = Coding::of_response(&res.headers).ok_or(NotStored::Encoding)?;
    let admission = Admission {
        key,
        client,
        config,
    };
    admission.head(
        res,
        sent,
        now,
        overrides,
        coding,
        coding != Coding::Identity,
    )
}

/// What becomes of a storable response's body between the origin and the store.
pub(super) enum BodyPlan {
    /// Stored as it came.
    Keep,
    /// A `gzip`/`br` body: decoded as it arrives, counting, and refused past the limits.
    Check(Box<Inflater>),
    /// An identity body compressed in `to` when stored (if large enough), with `head`.
    Compress {
        /// The head of the compressed object.
        head: Box<Head>,
        /// The coding.
        to: Coding,
    },
}

impl BodyPlan {
    /// Checks the next piece of the body.
    pub(super) fn feed(&mut self, data: &[u8]) -> Result<(), Refused> {
        match self {
            BodyPlan::Check(i) => i.feed(data),
            _ => Ok(()),
        }
    }

    /// The head and body to store for the complete `body`, or why it is refused.
    pub(super) fn finish(
        self,
        head: Head,
        body: Bytes,
        config: &CacheConfig,
    ) -> Result<(Head, Bytes), Refused> {
        match self {
            BodyPlan::Keep => Ok((head, body)),
            BodyPlan::Check(i) => {
                let decoded = i.finish()?;
                let mut head = head;
                head.decoded_len = Some(decoded);
                Ok((head, body))
            }
            BodyPlan::Compress { .. } if !config.compression.large_enough(body.len()) => {
                Ok((head, body))
            }
            BodyPlan::Compress { head: coded, to } => match crate::compress::encode(&body, to) {
                Ok(encoded) => {
                    let mut coded = *coded;
                    coded.decoded_len = Some(body.len() as u64);
                    Ok((coded, encoded))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "compression failed; stored as it came");
                    Ok((head, body))
                }
            },
        }
    }
}

/// [`admit`] for a fill, which reads the body: also what becomes of the body (checked,
/// compressed, kept).
pub(super) fn admit_fill(
    key: &ResourceKey,
    client: &HeaderMap,
    res: &response::Parts,
    sent: SystemTime,
    now: SystemTime,
    config: &CacheConfig,
    overrides: &Overrides,
) -> Result<(Head, BodyPlan), NotStored> {
    let coding = Coding::of_response(&res.headers).ok_or(NotStored::Encoding)?;
    let length = res
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let compression = &config.compression;
    let compress = coding == Coding::Identity
        && compression.encoding != Coding::Identity
        && compression.applies(&res.headers)
        && length.is_none_or(|n| compression.large_enough(n as usize));
    let admission = Admission {
        key,
        client,
        config,
    };
    let head = admission.head(
        res,
        sent,
        now,
        overrides,
        coding,
        coding != Coding::Identity || compress,
    )?;
    let plan = match coding {
        Coding::Identity if compress => {
            let to = compression.encoding_for(&Accepted::of(client));
            BodyPlan::Compress {
                head: Box::new(admission.coded(&head, to)),
                to,
            }
        }
        Coding::Identity => BodyPlan::Keep,
        c => match Inflater::new(c, config.decode_limits, length) {
            Some(i) => BodyPlan::Check(Box::new(i)),
            None => BodyPlan::Keep,
        },
    };
    Ok((head, plan))
}

/// One admission's inputs.
struct Admission<'a> {
    key: &'a ResourceKey,
    client: &'a HeaderMap,
    config: &'a CacheConfig,
}

impl Admission<'_> {
    /// The head of an object whose body is in `coding`; `negotiated`: the cache chose the
    /// coding, so the object varies on `Accept-Encoding` whatever the origin said.
    fn head(
        &self,
        res: &response::Parts,
        sent: SystemTime,
        now: SystemTime,
        overrides: &Overrides,
        coding: Coding,
        negotiated: bool,
    ) -> Result<Head, NotStored> {
        let (key, client, config) = (self.key, self.client, self.config);
        // The engine owns this rule, whatever `http-cache-semantics` or a route's
        // `cacheable_status` say: an object is always a complete response.
        if res.status == http::StatusCode::PARTIAL_CONTENT {
            return Err(NotStored::Partial);
        }
        // The canonical request is built from the varied headers, so read `Vary` first.
        let origin_vary = match VaryNames::from_response(&res.headers) {
            Vary::Names(n) => n,
            Vary::Star => return Err(NotStored::VaryStar),
        };
        let vary = match negotiated {
            true => origin_vary.with_accept_encoding(),
            false => origin_vary,
        };
        let form = config.vary_values;
        let values = vary.values_coded(client, form, coding);
        let canonical = canonical_request(key, &values, client);
        let (policy, timing, tags) = match evaluate(&canonical, res, sent, now, config, overrides) {
            Verdict::Store {
                policy,
                timing,
                tags,
                ..
            } => (policy, timing, tags),
            Verdict::Pass(reason) => return Err(reason),
        };
        let mut headers = res.headers.clone();
        clean_stored_headers(config, &mut headers);
        if res.status == StatusCode::OK {
            // Ranges are answered from every stored 200 (`range.rs`); saying so once, here,
            // keeps the insert off every hit.
            headers.insert(header::ACCEPT_RANGES, range::ACCEPT_BYTES);
        }
        if vary.has_accept_encoding() && !varies_on_accept_encoding(&headers) {
            // Every response of an object whose coding was negotiated says so, once, here.
            headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        Ok(Head {
            meta: ObjectMeta {
                id: next_object_id(),
                key: key.clone(),
                vary_values: values,
                tags,
            },
            variant: vary.variant_key_coded(client, form, coding),
            vary,
            status: res.status,
            headers,
            decoded_len: None,
            policy: *policy,
            timing,
        })
    }

    /// `head` (of an identity body) as the head of the same response compressed in `coding`
    /// at store time: its variant and values name the coding, `Content-Encoding` says it,
    /// and its `ETag` is weak (the bytes are the cache's, not the origin's).
    fn coded(&self, head: &Head, coding: Coding) -> Head {
        let form = self.config.vary_values;
        let mut coded = head.clone();
        coded.variant = head.vary.variant_key_coded(self.client, form, coding);
        coded.meta.vary_values = head.vary.values_coded(self.client, form, coding);
        if let Some(v) = coding.header_value() {
            coded.headers.insert(header::CONTENT_ENCODING, v);
        }
        weak_etag(&mut coded.headers);
        coded
    }
}

/// True when a response's `Vary` names `Accept-Encoding`.
fn varies_on_accept_encoding(headers: &HeaderMap) -> bool {
    match VaryNames::from_response(headers) {
        Vary::Names(n) => n.has_accept_encoding(),
        Vary::Star => true,
    }
}

impl CachedObject {
    /// Builds an object from a client request's headers and a complete origin response, if a
    /// shared cache may store it (used by front ends that buffer, tests and benchmarks). A
    /// `gzip`/`br` body is checked against the decode limits, and an identity one compressed
    /// when `config.compression` says so, as a fill would.
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
        let (head, mut plan) = admit_fill(
            &key,
            request_headers,
            &parts,
            now,
            now,
            config,
            &Overrides::default(),
        )?;
        plan.feed(&body).map_err(|_| NotStored::Encoding)?;
        let (head, body) = plan
            .finish(head, body, config)
            .map_err(|_| NotStored::Encoding)?;
        Ok(CachedObject::new(head, body))
    }
}
