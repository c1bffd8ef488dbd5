//! Response freshness by RFC 9111 section 4.2 and RFC 9213: which directives are in force,
//! the freshness lifetime, the corrected initial age, and which statuses may be stored.
//!
//! Owns these rules in place of `http-cache-semantics` (which matches directive names
//! case-sensitively, accepts malformed `Expires` and list-valued `Age`, refuses statuses it does
//! not list even with explicit freshness, and knows no targeted fields). It reads headers only:
//! whether a response is stored is [`crate::freshness`]'s verdict, reuse is the cache's lookup.

use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, HeaderName, StatusCode};

use crate::config::CacheConfig;
use crate::directives::{parse_delta, Delta, Directives, MAX_DELTA_SECONDS};

/// RFC 9213's field for every CDN cache.
pub const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");

/// Statuses whose responses may get heuristic freshness (RFC 9110 section 15.1).
pub const HEURISTICALLY_CACHEABLE: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Where the directives in force come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The configured cache-specific field (default `Vanish-Cache-Control`).
    Own,
    /// `CDN-Cache-Control`.
    Cdn,
    /// `Cache-Control` (with `Expires`).
    CacheControl,
}

/// The directives Vanish obeys for one response.
#[derive(Debug, Clone)]
pub struct InForce {
    /// The directives.
    pub directives: Directives,
    /// The field they were read from.
    pub source: Source,
}

impl InForce {
    /// The most specific valid field wins (RFC 9213 section 2.2): the configured field, then
    /// `CDN-Cache-Control`, then `Cache-Control`. A targeted field that is not a valid
    /// dictionary is ignored; a valid one makes `Cache-Control` and `Expires` ignored.
    pub fn of(headers: &HeaderMap, config: &CacheConfig) -> InForce {
        let targeted = [
            (&config.targeted_field, Source::Own),
            (&CDN_CACHE_CONTROL, Source::Cdn),
        ];
        for (name, source) in targeted {
            let lines: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if lines.is_empty() {
                continue;
            }
            if let Some(directives) = Directives::parse_structured(&lines.join(", ")) {
                return InForce { directives, source };
            }
        }
        let directives = Directives::parse(
            headers
                .get_all(header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        InForce {
            directives,
            source: Source::CacheControl,
        }
    }

    /// True when the directive is present.
    pub fn has(&self, name: &str) -> bool {
        self.directives.has(name)
    }

    /// A stale response may not be served without revalidation (RFC 9111 section 4.2.4):
    /// `must-revalidate`, `proxy-revalidate`, `no-cache`, or `s-maxage` (which carries
    /// `proxy-revalidate`'s meaning for a shared cache, section 5.2.2.10).
    pub fn forbids_stale(&self) -> bool {
        [
            "must-revalidate",
            "proxy-revalidate",
            "no-cache",
            "s-maxage",
        ]
        .iter()
        .any(|d| self.has(d))
    }

    /// Seconds of a `delta-seconds` directive; an invalid value counts as `invalid`.
    pub fn secs(&self, name: &str, invalid: u64) -> Option<Duration> {
        self.directives.delta(name).map(|d| match d {
            Delta::Secs(s) => Duration::from_secs(s),
            Delta::Invalid => Duration::from_secs(invalid),
        })
    }
}

/// A response's freshness lifetime (RFC 9111 section 4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// How long it is fresh, counted from its generation at the origin.
    pub lifetime: Duration,
    /// From `s-maxage`, `max-age` or `Expires` (not heuristic).
    pub explicit: bool,
}

/// The freshness lifetime: `s-maxage`, then `max-age`, then `Expires` minus `Date` (only
/// with `Cache-Control` in force), else heuristic freshness when configured; `None` when there
/// is none. Invalid values (non-digits, disagreeing duplicates, a malformed `Expires`) mean
/// "already expired". `no-cache` makes the lifetime zero (always revalidate);
/// `proxy-revalidate` keeps it (it is `must-revalidate` for a shared cache: fresh for its
/// lifetime, then never served stale, section 5.2.2.8).
pub fn lifetime(
    headers: &HeaderMap,
    status: StatusCode,
    rules: &InForce,
    now: SystemTime,
    config: &CacheConfig,
) -> Option<Lifetime> {
    let explicit = rules
        .secs("s-maxage", 0)
        .or_else(|| rules.secs("max-age", 0))
        .or_else(|| match rules.source {
            Source::CacheControl => expires_lifetime(headers, now),
            _ => None,
        });
    let found = match explicit {
        Some(lifetime) => Some(Lifetime {
            lifetime,
            explicit: true,
        }),
        None => heuristic(headers, status, rules, now, config).map(|lifetime| Lifetime {
            lifetime,
            explicit: false,
        }),
    };
    found.map(|mut l| {
        if rules.has("no-cache") {
            l.lifetime = Duration::ZERO;
        }
        l
    })
}

/// The lines of a singleton field that must agree: `None` when absent, `Some(None)` when the
/// lines disagree or are not text.
fn singleton<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Option<&'a str>> {
    let mut lines = headers.get_all(name).iter();
    let first = lines.next()?;
    let first = first.to_str().ok().map(str::trim);
    Some(first.filter(|f| lines.all(|l| l.to_str().ok().map(str::trim) == Some(f))))
}

fn date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    singleton(headers, name)
        .flatten()
        .and_then(|v| httpdate::parse_http_date(v).ok())
}

fn expires_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    singleton(headers, &header::EXPIRES)?;
    // Invalid (a malformed date, "0", disagreeing lines): already expired (section 5.3).
    let Some(expires) = date(headers, &header::EXPIRES) else {
        return Some(Duration::ZERO);
    };
    let served = date(headers, &header::DATE).unwrap_or(now);
    Some(expires.duration_since(served).unwrap_or_default())
}

fn heuristic(
    headers: &HeaderMap,
    status: StatusCode,
    rules: &InForce,
    now: SystemTime,
    config: &CacheConfig,
) -> Option<Duration> {
    if config.heuristic_fraction <= 0.0
        || !(HEURISTICALLY_CACHEABLE.contains(&status.as_u16()) || rules.has("public"))
    {
        return None;
    }
    let modified = date(headers, &header::LAST_MODIFIED)?;
    let served = date(headers, &header::DATE).unwrap_or(now);
    let since = served.duration_since(modified).ok()?;
    let fraction = f64::from(config.heuristic_fraction.min(1.0));
    let guess = Duration::from_secs((since.as_secs() as f64 * fraction) as u64);
    Some(guess.min(config.heuristic_max))
}

/// How finely `Date` tells time (RFC 9110 section 5.6.7: whole seconds).
const DATE_RESOLUTION: Duration = Duration::from_secs(1);

/// The corrected initial age (RFC 9111 section 4.2.3) of a response requested at `sent` and
/// received at `received`: the larger of its apparent age and its `Age` plus the response
/// delay. Only the first member of a list-valued `Age` counts; an invalid one makes the
/// response as old as [`MAX_DELTA_SECONDS`], i.e. stale (section 5.1).
///
/// The apparent age is `received - Date` less `Date`'s one-second resolution: the origin
/// truncates the time it stamps, so a response generated at `x.999` and received a
/// millisecond later would otherwise look a second old (and lose a second of freshness) on
/// about one fetch in a thousand. A response whose `Date` is really older still counts every
/// whole second beyond the first (`docs/conformance.md`).
pub fn corrected_initial_age(
    headers: &HeaderMap,
    sent: SystemTime,
    received: SystemTime,
) -> Duration {
    let age_value = match headers.get(header::AGE) {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.split(',').next())
            .and_then(|first| parse_delta(first.trim()))
            .unwrap_or(MAX_DELTA_SECONDS),
    };
    let apparent = date(headers, &header::DATE)
        .and_then(|d| received.duration_since(d).ok())
        .unwrap_or_default()
        .saturating_sub(DATE_RESOLUTION);
    let delay = received.duration_since(sent).unwrap_or_default();
    apparent.max(Duration::from_secs(age_value) + delay)
}

/// Statuses whose caching rules this cache implements, for `must-understand` (RFC 9111
/// section 5.2.2.3): the final statuses RFC 9110 defines, but `206` (ranges are not combined)
/// and `304` (never stored on its own).
const UNDERSTOOD: [u16; 39] = [
    200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 305, 307, 308, 400, 401, 402, 403, 404, 405,
    406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503,
    504,
];

/// May a response with this status and these directives be stored (RFC 9111 section 3)?
/// Any final status but `206` and `304`; with `must-understand`, only those in the understood
/// list, and then `no-store` is ignored; otherwise `no-store` forbids it.
pub fn status_and_no_store_allow(status: StatusCode, rules: &InForce) -> bool {
    let code = status.as_u16();
    if code < 200 || code == 206 || code == 304 {
        return false;
    }
    if rules.has("must-understand") {
        return UNDERSTOOD.contains(&code);
    }
    !rules.has("no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        crate::headers::from_pairs(pairs)
    }

    #[test]
    fn lifetime_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 21 Oct 2015 07:28:00
        let date = ("date", "Wed, 21 Oct 2015 07:28:00 GMT");
        let cfg = CacheConfig::default();
        // (headers, lifetime in seconds, None: no freshness)
        let cases: &[(Pairs, Option<u64>)] = &[
            (&[("cache-control", "max-age=60")], Some(60)),
            (&[("cache-control", "MaX-AgE=60")], Some(60)),
            (&[("cache-control", "max-age=\"60\"")], Some(60)),
            (&[("cache-control", "max-age=abc")], Some(0)),
            (&[("cache-control", "max-age=-5")], Some(0)),
            (&[("cache-control", "max-age=60, max-age=120")], Some(0)),
            (
                &[("cache-control", "max-age=99999999999")],
                Some(MAX_DELTA_SECONDS),
            ),
            (&[("cache-control", "max-age=60, s-maxage=5")], Some(5)),
            (&[("cache-control", "max-age=60, No-Cache")], Some(0)),
            (
                &[date, ("expires", "Wed, 21 Oct 2015 07:29:00 GMT")],
                Some(60),
            ),
            (
                &[date, ("expires", "Wed,  21 Oct 2015 07:29:00 GMT")],
                Some(0),
            ),
            (&[date, ("expires", "0")], Some(0)),
            (
                &[
                    date,
                    ("expires", "Wed, 21 Oct 2015 07:29:00 GMT"),
                    ("expires", "Wed, 21 Oct 2015 07:30:00 GMT"),
                ],
                Some(0),
            ),
            (
                &[
                    date,
                    ("expires", "Wed, 21 Oct 2015 07:29:00 GMT"),
                    ("cache-control", "max-age=5"),
                ],
                Some(5),
            ),
            (&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")], None),
            (
                &[
                    ("cache-control", "max-age=60"),
                    ("cdn-cache-control", "max-age=5"),
                ],
                Some(5),
            ),
            (
                &[
                    ("cache-control", "max-age=60"),
                    ("cdn-cache-control", "Max-Age=5"),
                ],
                Some(60),
            ),
            (
                &[
                    ("cache-control", "max-age=60"),
                    ("cdn-cache-control", "max-age=5"),
                    ("vanish-cache-control", "max-age=7"),
                ],
                Some(7),
            ),
            (
                &[
                    date,
                    ("expires", "Wed, 21 Oct 2015 07:29:00 GMT"),
                    ("cdn-cache-control", "no-store"),
                ],
                None,
            ),
        ];
        for (h, want) in cases {
            let h = headers(h);
            let rules = InForce::of(&h, &cfg);
            let got = lifetime(&h, StatusCode::OK, &rules, now, &cfg).map(|l| l.lifetime.as_secs());
            assert_eq!(got, *want, "{h:?}");
        }
    }

    #[test]
    fn heuristic_is_a_capped_fraction_for_cacheable_statuses() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let h = headers(&[
            ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("last-modified", "Sun, 11 Oct 2015 07:28:00 GMT"),
        ]);
        let mut cfg = CacheConfig {
            heuristic_fraction: 0.1,
            heuristic_max: Duration::from_secs(3600 * 24 * 7),
            ..CacheConfig::default()
        };
        let rules = InForce::of(&h, &cfg);
        let got = |cfg: &CacheConfig, status: u16| {
            lifetime(&h, StatusCode::from_u16(status).unwrap(), &rules, now, cfg)
        };
        assert_eq!(
            got(&cfg, 200),
            Some(Lifetime {
                lifetime: Duration::from_secs(86_400),
                explicit: false
            })
        );
        assert_eq!(got(&cfg, 500), None, "500 is not heuristically cacheable");
        cfg.heuristic_max = Duration::from_secs(60);
        assert_eq!(got(&cfg, 404).unwrap().lifetime, Duration::from_secs(60));
    }

    #[test]
    fn corrected_initial_age_table() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let date = ("date", "Wed, 21 Oct 2015 07:27:50 GMT"); // 10 s before t
                                                              // (headers, response delay, age)
        let cases: &[(Pairs, u64, u64)] = &[
            (&[], 0, 0),
            (&[("age", "30")], 0, 30),
            (&[("age", "30")], 2, 32),
            // Date's truncation is discounted: 10 s by the clock count as 9.
            (&[date], 0, 9),
            (&[date, ("age", "5")], 1, 9),
            (&[date, ("age", "9")], 1, 10),
            (&[("age", "old, 0")], 0, MAX_DELTA_SECONDS),
            (&[("age", "7, 0")], 0, 7),
            (&[("age", "-1")], 0, MAX_DELTA_SECONDS),
        ];
        for (h, delay, want) in cases {
            let got = corrected_initial_age(&headers(h), t - Duration::from_secs(*delay), t);
            assert_eq!(got.as_secs(), *want, "{h:?} delay {delay}");
        }
    }

    #[test]
    fn statuses_and_must_understand() {
        let rules =
            |cc: &str| InForce::of(&headers(&[("cache-control", cc)]), &CacheConfig::default());
        let s = |c| StatusCode::from_u16(c).unwrap();
        for code in [200, 299, 400, 499, 500, 502, 503, 504, 599] {
            assert!(
                status_and_no_store_allow(s(code), &rules("max-age=60")),
                "{code}"
            );
        }
        for code in [206, 304, 101] {
            assert!(
                !status_and_no_store_allow(s(code), &rules("max-age=60")),
                "{code}"
            );
        }
        assert!(!status_and_no_store_allow(
            s(200),
            &rules("NO-STORE, max-age=60")
        ));
        assert!(status_and_no_store_allow(
            s(200),
            &rules("must-understand, no-store")
        ));
        assert!(!status_and_no_store_allow(
            s(299),
            &rules("must-understand, no-store")
        ));
    }
}
