//! Updating a stored response from a `304` or a `HEAD`'s `200` (RFC 9111 sections 3.2, 4.3.4
//! and 4.3.5).
//!
//! Owns three rules: whether a `304` selects the stored response it answers ([`selects`]),
//! whether a `HEAD`'s `200` agrees with it ([`head_agrees`]), and the stored header section
//! after the update ([`updated_headers`]). `http-cache-semantics` got these wrong for a shared
//! cache (a field the `304` adds was dropped, a repeated field kept one line, a strong `ETag`
//! matched a weak one), so the engine owns them. It stores and serves nothing, and must not
//! touch freshness (the updated response is judged again by admission).

use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::headers::{connection_options, HOP_BY_HOP};

/// Fields of an update never copied onto the stored response: its framing and the codings
/// the kept body depends on (RFC 9111 section 3.2 names `Content-Length`; `Content-Encoding`
/// and `Content-Range` describe the stored bytes), the `Vary` the stored variant was
/// selected by, and what a shared copy never keeps (`Set-Cookie` goes to the one client
/// whose request it answers).
const NOT_UPDATED: [HeaderName; 5] = [
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_RANGE,
    header::VARY,
    header::SET_COOKIE,
];

fn first<'a>(h: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

fn same_date(a: &str, b: &str) -> bool {
    match (httpdate::parse_http_date(a), httpdate::parse_http_date(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// True when a `304` (headers `new`) answering a conditional request built from the stored
/// response's validators selects that stored response for update (RFC 9111 section 4.3.4).
///
/// A strong `ETag` selects only the same strong `ETag`; a weak one, a stored `ETag` with the
/// same opaque tag; without an `ETag`, a `Last-Modified` the same date. A `304` with no
/// validator at all answers the validators the cache sent for this very response, so it
/// selects it (many origins omit them; see `docs/conformance.md`).
///
/// ```
/// use http::HeaderMap;
/// use vanish_engine::validators::selects;
/// let h = |etag: &str| { let mut h = HeaderMap::new(); h.insert("etag", etag.parse().unwrap()); h };
/// assert!(selects(&h("\"a\""), &h("\"a\"")));
/// assert!(!selects(&h("\"a\""), &h("\"b\"")));
/// assert!(!selects(&h("W/\"a\""), &h("\"a\"")), "a strong tag never selects a weak one");
/// assert!(selects(&h("\"a\""), &h("W/\"a\"")));
/// assert!(selects(&h("\"a\""), &HeaderMap::new()));
/// ```
pub fn selects(stored: &HeaderMap, new: &HeaderMap) -> bool {
    if let Some(tag) = first(new, &header::ETAG) {
        let Some(have) = first(stored, &header::ETAG) else {
            return false;
        };
        return if tag.starts_with("W/") {
            opaque(tag) == opaque(have)
        } else {
            tag == have
        };
    }
    if let Some(lm) = first(new, &header::LAST_MODIFIED) {
        return first(stored, &header::LAST_MODIFIED).is_some_and(|have| same_date(lm, have));
    }
    true
}

/// True when a `200` to a `HEAD` (headers `new`) agrees with the stored `GET` response
/// (headers `stored`, body of `stored_len` bytes), so it may update it (RFC 9111 section
/// 4.3.5): it carries at least one validator, every validator it carries equals the stored
/// one, and its `Content-Length`, if any, is the stored body's length. Otherwise the stored
/// response is to be considered stale.
///
/// ```
/// use http::HeaderMap;
/// use vanish_engine::validators::head_agrees;
/// let mut stored = HeaderMap::new();
/// stored.insert("etag", "\"v1\"".parse().unwrap());
/// let mut head = stored.clone();
/// head.insert("content-length", "5".parse().unwrap());
/// assert!(head_agrees(&stored, 5, &head));
/// assert!(!head_agrees(&stored, 6, &head), "a different length is a different body");
/// assert!(!head_agrees(&stored, 5, &HeaderMap::new()), "no validator: nothing to agree on");
/// ```
pub fn head_agrees(stored: &HeaderMap, stored_len: usize, new: &HeaderMap) -> bool {
    let mut validators = 0;
    if let Some(tag) = first(new, &header::ETAG) {
        if first(stored, &header::ETAG) != Some(tag) {
            return false;
        }
        validators += 1;
    }
    if let Some(lm) = first(new, &header::LAST_MODIFIED) {
        if !first(stored, &header::LAST_MODIFIED).is_some_and(|have| same_date(lm, have)) {
            return false;
        }
        validators += 1;
    }
    let length_agrees = match first(new, &header::CONTENT_LENGTH) {
        None => true,
        Some(len) => len.parse::<usize>().ok() == Some(stored_len),
    };
    validators > 0 && length_agrees
}

/// The stored header section updated with an update's fields (RFC 9111 section 3.2): every
/// field of `new` replaces all lines of the same name in `stored` (each of its lines kept, in
/// order), except the hop-by-hop fields, those its `Connection` names, and [`NOT_UPDATED`].
/// An update without `Date` gets the time it was received (RFC 9110 section 6.6.1), so the
/// refreshed response's age counts from the update, not from the stored response.
///
/// ```
/// use http::HeaderMap;
/// use vanish_engine::validators::updated_headers;
/// let mut stored = HeaderMap::new();
/// stored.insert("content-length", "5".parse().unwrap());
/// stored.append("link", "</a>".parse().unwrap());
/// stored.append("link", "</b>".parse().unwrap());
/// let mut new = HeaderMap::new();
/// new.insert("content-length", "0".parse().unwrap());
/// new.insert("x-new", "1".parse().unwrap());
/// new.append("link", "</c>".parse().unwrap());
/// new.append("link", "</d>".parse().unwrap());
/// let h = updated_headers(&stored, &new, std::time::SystemTime::now());
/// assert_eq!(h["content-length"], "5");
/// assert_eq!(h["x-new"], "1");
/// assert_eq!(h.get_all("link").iter().collect::<Vec<_>>(), ["</c>", "</d>"]);
/// ```
pub fn updated_headers(stored: &HeaderMap, new: &HeaderMap, received: SystemTime) -> HeaderMap {
    let named = connection_options(new);
    let skipped = |n: &HeaderName| {
        NOT_UPDATED.contains(n)
            || HOP_BY_HOP.contains(n)
            || named.contains(n)
            || n.as_str() == "proxy-connection"
    };
    let mut out = stored.clone();
    for name in new.keys() {
        if skipped(name) {
            continue;
        }
        out.remove(name);
        for v in new.get_all(name) {
            out.append(name.clone(), v.clone());
        }
    }
    if !new.contains_key(header::DATE) {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(received)) {
            out.insert(header::DATE, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        crate::headers::from_pairs(pairs)
    }

    const LM: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

    #[test]
    fn which_304_selects_the_stored_response() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            (&[("etag", "\"a\"")], &[("etag", "\"a\"")], true),
            (&[("etag", "\"a\"")], &[("etag", " \"a\" ")], true),
            (&[("etag", "\"a\"")], &[("etag", "\"b\"")], false),
            (&[("etag", "W/\"a\"")], &[("etag", "\"a\"")], false),
            (&[("etag", "W/\"a\"")], &[("etag", "W/\"a\"")], true),
            (&[("etag", "\"a\"")], &[("etag", "W/\"a\"")], true),
            (&[("last-modified", LM)], &[("etag", "\"a\"")], false),
            (&[("last-modified", LM)], &[("last-modified", LM)], true),
            (
                &[("last-modified", LM)],
                &[("last-modified", "Thu, 22 Oct 2015 07:28:00 GMT")],
                false,
            ),
            (&[("etag", "\"a\"")], &[("last-modified", LM)], false),
            (&[("etag", "\"a\"")], &[], true),
            (&[], &[], true),
        ];
        for (stored, new, want) in cases {
            assert_eq!(selects(&h(stored), &h(new)), *want, "{stored:?} / {new:?}");
        }
    }

    #[test]
    fn which_head_200_agrees_with_the_stored_get() {
        let stored = h(&[("etag", "\"a\""), ("last-modified", LM)]);
        type Case<'a> = (&'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            (&[("etag", "\"a\"")], true),
            (&[("etag", "\"a\""), ("content-length", "3")], true),
            (&[("etag", "\"a\""), ("content-length", "4")], false),
            (&[("etag", "\"b\"")], false),
            (&[("etag", "W/\"a\"")], false),
            (&[("last-modified", LM)], true),
            (&[("etag", "\"a\""), ("last-modified", "x")], false),
            (&[("content-length", "3")], false),
            (&[], false),
        ];
        for (new, want) in cases {
            assert_eq!(head_agrees(&stored, 3, &h(new)), *want, "{new:?}");
        }
    }

    #[test]
    fn updates_keep_framing_codings_vary_and_hop_by_hop() {
        let stored = h(&[
            ("content-length", "5"),
            ("content-encoding", "gzip"),
            ("vary", "accept-language"),
            ("cache-control", "max-age=1"),
            ("date", LM),
        ]);
        let new = h(&[
            ("content-length", "0"),
            ("content-encoding", "br"),
            ("vary", "accept"),
            ("cache-control", "max-age=60"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("set-cookie", "a=b"),
        ]);
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
        let out = updated_headers(&stored, &new, t);
        assert_eq!(out["content-length"], "5");
        assert_eq!(out["content-encoding"], "gzip");
        assert_eq!(out["vary"], "accept-language");
        assert_eq!(out["cache-control"], "max-age=60");
        assert_eq!(out["date"], httpdate::fmt_http_date(t).as_str());
        for gone in ["x-hop", "keep-alive", "connection", "set-cookie"] {
            assert!(!out.contains_key(gone), "{gone}");
        }
        let dated = updated_headers(&stored, &h(&[("date", "Thu, 22 Oct 2015 07:28:00 GMT")]), t);
        assert_eq!(dated["date"], "Thu, 22 Oct 2015 07:28:00 GMT");
    }
}
