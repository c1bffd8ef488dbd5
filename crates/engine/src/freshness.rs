//! Storability and freshness: may a response be stored, and for how long is it fresh.
//!
//! Owns the verdict on an origin response: RFC 9111 section 3 storability (with the lifetime,
//! age and status rules of [`crate::lifetime`]) plus the rules a shared page cache adds on
//! top: no heuristic freshness by default, `Set-Cookie` not stored unless configured, `Vary: *`
//! never stored, and the stale windows of RFC 5861. It still builds the `http-cache-semantics`
//! policy an object keeps for revalidation, but no longer asks it for decisions. It neither
//! stores nor serves anything.

use std::time::{Duration, SystemTime};

use http::{request, response, HeaderMap, HeaderName, HeaderValue};
use http_cache_semantics::{CacheOptions, CachePolicy};

use crate::config::CacheConfig;
use crate::directives::Directives;
use crate::key::ResourceKey;
use crate::lifetime::{corrected_initial_age, lifetime, status_and_no_store_allow, InForce};
use crate::object::Timing;
use crate::variant::{Vary, VaryNames};

/// What a route's rule changes in how its responses are stored (a key policy hands them
/// over with the key; see [`crate::policy`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Freshness lifetime to use instead of the response's (responses that may not be stored
    /// at all, e.g. `private` or `no-store`, still are not; error statuses keep their own
    /// lifetime, see `ROUTE_TTL_STATUSES`).
    pub ttl: Option<Duration>,
    /// Statuses that may be stored (others are not).
    pub cacheable_status: Option<Vec<u16>>,
    /// `stale-while-revalidate` for responses that give none.
    pub grace: Option<Duration>,
}

/// Why a response was not stored (shown in logs, `Cache-Status` `detail` and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// RFC 9111 forbids it (`no-store`, `private`, `Authorization` without permission, status).
    Forbidden,
    /// No `max-age`, `s-maxage` or `Expires` (and heuristic freshness is off).
    NoExplicitFreshness,
    /// Already stale with nothing to revalidate or serve stale.
    ExpiresImmediately,
    /// `Set-Cookie` and the cache is not configured to store it.
    SetCookie,
    /// `Vary: *`.
    VaryStar,
    /// The body is larger than the maximum object size.
    TooLarge,
    /// The route's `cacheable_status` does not list the status.
    Status,
    /// The route bypasses the cache (e.g. a session cookie).
    Bypass,
    /// More tags, or a longer tag, than the limits allow.
    TagLimit,
    /// A `206 Partial Content`: part of a representation is never stored as the whole.
    Partial,
    /// A `Content-Encoding` the cache cannot decode (anything but `gzip`, `br`, identity), or
    /// a `gzip`/`br` body that does not decode within the decode limits.
    Encoding,
}

impl NotStored {
    /// Short token for headers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStored::Forbidden => "forbidden",
            NotStored::NoExplicitFreshness => "no-freshness",
            NotStored::ExpiresImmediately => "expired",
            NotStored::SetCookie => "set-cookie",
            NotStored::VaryStar => "vary-star",
            NotStored::TooLarge => "too-large",
            NotStored::Status => "status",
            NotStored::Bypass => "bypass",
            NotStored::TagLimit => "tag-limit",
            NotStored::Partial => "partial",
            NotStored::Encoding => "encoding",
        }
    }
}

/// The verdict on a response from the origin.
#[derive(Debug)]
pub enum Verdict {
    /// Store it with this policy, vary names and timing.
    Store {
        /// The RFC 9111 policy.
        policy: Box<CachePolicy>,
        /// The names it varies on.
        vary: VaryNames,
        /// Freshness timing.
        timing: Timing,
        /// Tags read from the configured headers.
        tags: Vec<std::sync::Arc<str>>,
    },
    /// Do not store it.
    Pass(NotStored),
}

/// Options for the `http-cache-semantics` policy of a shared cache.
pub fn cache_options(config: &CacheConfig) -> CacheOptions {
    CacheOptions {
        shared: true,
        cache_heuristic: config.heuristic_fraction,
        ignore_cargo_cult: false,
        ..CacheOptions::default()
    }
}

/// Decides whether a response to a request may be stored, and computes its timing, with a
/// route's [`Overrides`]. `sent` is when the request went to the origin and `now` when the
/// response arrived (their difference counts in the response's age).
///
/// The rules are the engine's own ([`crate::lifetime`]): the directives in force (targeted
/// fields first), storability by status, the freshness lifetime and the corrected age; the
/// `http-cache-semantics` policy is still built, for revalidation's header merging.
pub fn evaluate(
    req: &request::Parts,
    res: &response::Parts,
    sent: SystemTime,
    now: SystemTime,
    config: &CacheConfig,
    overrides: &Overrides,
) -> Verdict {
    let vary = match VaryNames::from_response(&res.headers) {
        Vary::Star => return Verdict::Pass(NotStored::VaryStar),
        Vary::Names(n) => n,
    };
    if let Some(list) = &overrides.cacheable_status {
        if !list.contains(&res.status.as_u16()) {
            return Verdict::Pass(NotStored::Status);
        }
    }
    let tags = crate::purge::tags::read_tags(&res.headers, &config.tag_headers);
    if tags.len() > config.max_tags || tags.iter().any(|t| t.len() > config.max_tag_bytes) {
        tracing::warn!(
            tags = tags.len(),
            "response exceeds the tag limits; not stored"
        );
        metrics::counter!("vanish_limit_hits_total", "limit" => "tags").increment(1);
        return Verdict::Pass(NotStored::TagLimit);
    }
    let set_cookie = res.headers.contains_key(http::header::SET_COOKIE);
    if set_cookie && !config.store_set_cookie {
        return Verdict::Pass(NotStored::SetCookie);
    }
    let rules = InForce::of(&res.headers, config);
    if !may_store(req, res, &rules) {
        return Verdict::Pass(NotStored::Forbidden);
    }
    let found = lifetime(&res.headers, res.status, &rules, now, config);
    let has_validator = res.headers.contains_key(http::header::ETAG)
        || res.headers.contains_key(http::header::LAST_MODIFIED);
    let no_cache = rules.has("no-cache");
    // `no-cache` with a validator is worth storing: every use revalidates cheaply.
    let revalidate_always = no_cache && has_validator;
    // A route's TTL applies to the statuses a cache stores without being told to (error
    // statuses keep the lifetime their origin gave them, if any).
    let route_ttl = overrides
        .ttl
        .filter(|_| ROUTE_TTL_STATUSES.contains(&res.status.as_u16()));
    if found.is_none() && !revalidate_always && route_ttl.is_none() {
        return Verdict::Pass(NotStored::NoExplicitFreshness);
    }
    let age = corrected_initial_age(&res.headers, sent, now);
    let ttl = match route_ttl {
        Some(t) if !no_cache => t,
        _ => found
            .map(|l| l.lifetime.saturating_sub(age))
            .unwrap_or_default(),
    };
    let (swr, sie) = stale_windows(&rules, config, overrides);
    if ttl.is_zero() && swr.is_zero() && sie.is_zero() && !has_validator {
        return Verdict::Pass(NotStored::ExpiresImmediately);
    }
    let policy = crate_policy(req, res, set_cookie, now, config);
    let timing = Timing {
        stored_at: now,
        age_at_store: age,
        ttl_at_store: ttl,
        stale_while_revalidate: swr,
        stale_if_error: sie,
        keep: config.keep,
    };
    Verdict::Store {
        policy: Box::new(policy),
        vary,
        timing,
        tags,
    }
}

/// Statuses a route's TTL applies to: those `http-cache-semantics` stored before the engine
/// owned the rules (the heuristically cacheable ones and the redirects), so a route's TTL never
/// turns an error into a long-lived object.
const ROUTE_TTL_STATUSES: [u16; 14] = [
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];

/// RFC 9111 section 3 for a shared cache: the request's `no-store`, the status, `no-store`,
/// `private`, and `Authorization` (stored only with `public`, `s-maxage` or
/// `must-revalidate`). Directive names are case-insensitive.
fn may_store(req: &request::Parts, res: &response::Parts, rules: &InForce) -> bool {
    let asked = Directives::parse(
        req.headers
            .get_all(http::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let authorized = !req.headers.contains_key(http::header::AUTHORIZATION)
        || ["public", "s-maxage", "must-revalidate"]
            .iter()
            .any(|d| rules.has(d));
    !asked.has("no-store")
        && status_and_no_store_allow(res.status, rules)
        && !rules.has("private")
        && authorized
}

/// `stale-while-revalidate` and `stale-if-error` (RFC 5861), or the route's and the
/// configuration's defaults; none when the response forbids serving it stale (an explicit
/// `stale-*` directive next to `s-maxage` is the origin's own permission and holds).
fn stale_windows(
    rules: &InForce,
    config: &CacheConfig,
    overrides: &Overrides,
) -> (Duration, Duration) {
    let hard_no = ["must-revalidate", "proxy-revalidate", "no-cache"]
        .iter()
        .any(|d| rules.has(d));
    if hard_no {
        return (Duration::ZERO, Duration::ZERO);
    }
    let swr = rules.secs("stale-while-revalidate", 0);
    let sie = rules.secs("stale-if-error", 0);
    if rules.has("s-maxage") {
        return (swr.unwrap_or_default(), sie.unwrap_or_default());
    }
    (
        swr.or(overrides.grace)
            .unwrap_or(config.default_stale_while_revalidate),
        sie.unwrap_or(config.default_stale_if_error),
    )
}

/// The `http-cache-semantics` policy kept with an object (revalidation merges a `304`'s
/// headers with it), built from the response without `Set-Cookie` when one is stored.
fn crate_policy(
    req: &request::Parts,
    res: &response::Parts,
    set_cookie: bool,
    now: SystemTime,
    config: &CacheConfig,
) -> CachePolicy {
    if !set_cookie {
        return CachePolicy::new_options(req, res, now, cache_options(config));
    }
    let mut copy = response::Builder::new()
        .status(res.status)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    copy.headers = res.headers.clone();
    copy.headers.remove(http::header::SET_COOKIE);
    CachePolicy::new_options(req, &copy, now, cache_options(config))
}

/// The canonical request a stored object's policy is built from: the host, the varied
/// headers (`vary_values`, in the form the object records them), and the request headers that decide storability (`Authorization`,
/// `Cache-Control`, `Pragma`). Lookups evaluate clients' directives against the same shape,
/// so key-policy normalisation never trips the policy's own URL and `Vary` checks.
pub fn canonical_request(
    key: &ResourceKey,
    vary_values: &[(HeaderName, Option<String>)],
    client: &HeaderMap,
) -> request::Parts {
    let mut headers = canonical_headers(key, vary_values);
    for name in [
        http::header::AUTHORIZATION,
        http::header::CACHE_CONTROL,
        http::header::PRAGMA,
    ] {
        for v in client.get_all(&name) {
            headers.append(name.clone(), v.clone());
        }
    }
    // The policy keeps this request: its values must not pin the client's read buffer.
    let headers = crate::headers::detach(&headers);
    let mut r = http::Request::new(());
    *r.headers_mut() = headers;
    r.into_parts().0
}

/// The host and varied headers of the canonical request.
pub fn canonical_headers(
    key: &ResourceKey,
    vary_values: &[(HeaderName, Option<String>)],
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(h) = HeaderValue::from_str(key.host()) {
        headers.insert(http::header::HOST, h);
    }
    for (name, value) in vary_values {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name.clone(), v);
        }
    }
    headers
}

/// True when a client request carries directives that need the full RFC 9111 evaluation
/// (`Cache-Control` or `Pragma`), rather than the plain freshness check.
pub fn request_has_directives(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::CACHE_CONTROL) || headers.contains_key(http::header::PRAGMA)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(req_headers: &[(&str, &str)], res_headers: &[(&str, &str)]) -> Verdict {
        judge_with(req_headers, res_headers, &CacheConfig::default())
    }

    fn judge_with(
        req_headers: &[(&str, &str)],
        res_headers: &[(&str, &str)],
        cfg: &CacheConfig,
    ) -> Verdict {
        let mut req = http::Request::get("http://h/p");
        for (k, v) in req_headers {
            req = req.header(*k, *v);
        }
        let mut res = http::Response::builder().status(200);
        for (k, v) in res_headers {
            res = res.header(*k, *v);
        }
        let now = SystemTime::now();
        evaluate(
            &req.body(()).unwrap().into_parts().0,
            &res.body(()).unwrap().into_parts().0,
            now,
            now,
            cfg,
            &Overrides::default(),
        )
    }

    fn reason(v: Verdict) -> Option<NotStored> {
        match v {
            Verdict::Pass(r) => Some(r),
            Verdict::Store { .. } => None,
        }
    }

    #[test]
    fn table() {
        use NotStored::*;
        type Headers<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Headers, Headers, Option<NotStored>)] = &[
            (&[], &[("cache-control", "max-age=60")], None),
            (&[], &[("cache-control", "s-maxage=60")], None),
            (&[], &[("expires", "Wed, 21 Oct 2099 07:28:00 GMT")], None),
            (&[], &[], Some(NoExplicitFreshness)),
            (
                &[],
                &[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")],
                Some(NoExplicitFreshness),
            ),
            (
                &[],
                &[("cache-control", "no-store, max-age=60")],
                Some(Forbidden),
            ),
            (
                &[],
                &[("cache-control", "private, max-age=60")],
                Some(Forbidden),
            ),
            (
                &[("authorization", "Bearer x")],
                &[("cache-control", "max-age=60")],
                Some(Forbidden),
            ),
            (
                &[("authorization", "Bearer x")],
                &[("cache-control", "public, max-age=60")],
                None,
            ),
            (
                &[("authorization", "Bearer x")],
                &[("cache-control", "s-maxage=60")],
                None,
            ),
            (
                &[],
                &[("cache-control", "max-age=60"), ("set-cookie", "a=b")],
                Some(SetCookie),
            ),
            (
                &[],
                &[("cache-control", "max-age=60"), ("vary", "*")],
                Some(VaryStar),
            ),
            (
                &[],
                &[("cache-control", "max-age=0")],
                Some(ExpiresImmediately),
            ),
            (
                &[],
                &[("cache-control", "max-age=0"), ("etag", "\"a\"")],
                None,
            ),
        ];
        for (req, res, want) in cases {
            assert_eq!(reason(judge(req, res)), *want, "req {req:?} res {res:?}");
        }
    }

    #[test]
    fn s_maxage_wins_for_shared_cache() {
        let Verdict::Store { timing, .. } =
            judge(&[], &[("cache-control", "max-age=10, s-maxage=100")])
        else {
            panic!("not stored")
        };
        assert_eq!(timing.ttl_at_store, Duration::from_secs(100));
    }

    #[test]
    fn stale_windows_and_revalidate_directives() {
        let Verdict::Store { timing, .. } = judge(
            &[],
            &[(
                "cache-control",
                "max-age=10, stale-while-revalidate=30, stale-if-error=60",
            )],
        ) else {
            panic!()
        };
        assert_eq!(timing.stale_while_revalidate, Duration::from_secs(30));
        assert_eq!(timing.stale_if_error, Duration::from_secs(60));
        let Verdict::Store { timing, .. } = judge(
            &[],
            &[(
                "cache-control",
                "max-age=10, must-revalidate, stale-if-error=60",
            )],
        ) else {
            panic!()
        };
        assert_eq!(timing.stale_if_error, Duration::ZERO);
        let Verdict::Store { timing, .. } = judge(
            &[],
            &[
                ("cache-control", "proxy-revalidate, s-maxage=10"),
                ("etag", "\"v1\""),
            ],
        ) else {
            panic!()
        };
        assert_eq!(
            timing.ttl_at_store,
            Duration::from_secs(10),
            "proxy-revalidate is must-revalidate for a shared cache: fresh for its lifetime"
        );
        assert_eq!(
            (timing.stale_while_revalidate, timing.stale_if_error),
            (Duration::ZERO, Duration::ZERO),
            "proxy-revalidate: never served stale"
        );
    }

    #[test]
    fn set_cookie_when_configured() {
        let cfg = CacheConfig {
            store_set_cookie: true,
            ..CacheConfig::default()
        };
        assert!(reason(judge_with(
            &[],
            &[("cache-control", "max-age=60"), ("set-cookie", "a=b")],
            &cfg
        ))
        .is_none());
    }

    #[test]
    fn config_defaults_for_stale_windows() {
        let cfg = CacheConfig {
            default_stale_if_error: Duration::from_secs(300),
            ..CacheConfig::default()
        };
        let Verdict::Store { timing, .. } =
            judge_with(&[], &[("cache-control", "max-age=1")], &cfg)
        else {
            panic!()
        };
        assert_eq!(timing.stale_if_error, Duration::from_secs(300));
    }
}
