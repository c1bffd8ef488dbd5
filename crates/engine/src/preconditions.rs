//! A client's preconditions evaluated against a response the cache holds (RFC 9110
//! section 13, RFC 9111 section 4.3.2).
//!
//! Owns the entity-tag list syntax and the order of evaluation: `If-Match`, then
//! `If-Unmodified-Since` (a failure is `412`), then `If-None-Match`, then `If-Modified-Since`
//! (a failure is `304` for `GET`/`HEAD`). `If-Range` belongs to ranges (`cache/range.rs`).
//! It decides nothing about freshness and builds no responses.

use std::time::SystemTime;

use http::{header, HeaderMap, HeaderName, Method};

/// What the preconditions of a request say about a response the cache would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No precondition, or all of them hold: send the response.
    Proceed,
    /// `If-None-Match` or `If-Modified-Since` is false: answer `304 Not Modified`.
    NotModified,
    /// `If-Match` or `If-Unmodified-Since` is false: answer `412 Precondition Failed`.
    Failed,
}

/// Evaluates the request's preconditions (RFC 9110 section 13.2.2) against a `2xx` response
/// with these `headers` (the caller passes only successful responses: section 13.2.1 makes a
/// server ignore preconditions otherwise). `received` stands in for a missing `Date` when
/// `If-Modified-Since` meets a response without `Last-Modified` (RFC 9111 section 4.3.2).
///
/// ```
/// use http::{HeaderMap, Method};
/// use vanish_engine::preconditions::{evaluate, Outcome};
/// let h = |k: &str, v: &str| { let mut h = HeaderMap::new(); h.insert(k.parse::<http::HeaderName>().unwrap(), v.parse().unwrap()); h };
/// let stored = h("etag", "\"v1\"");
/// let now = std::time::SystemTime::now();
/// assert_eq!(evaluate(&Method::GET, &h("if-match", "\"v2\""), &stored, now), Outcome::Failed);
/// assert_eq!(evaluate(&Method::GET, &h("if-none-match", "W/\"v1\""), &stored, now), Outcome::NotModified);
/// assert_eq!(evaluate(&Method::GET, &HeaderMap::new(), &stored, now), Outcome::Proceed);
/// ```
pub fn evaluate(
    method: &Method,
    request: &HeaderMap,
    response: &HeaderMap,
    received: SystemTime,
) -> Outcome {
    let etag = response
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_tag(v.trim()));
    // Step 1 and 2: If-Match, else If-Unmodified-Since.
    if request.contains_key(header::IF_MATCH) {
        if !if_match(request, etag) {
            return Outcome::Failed;
        }
    } else if let Some(since) = date_field(request, &header::IF_UNMODIFIED_SINCE) {
        let modified = date_field(response, &header::LAST_MODIFIED);
        if modified.is_some_and(|m| m > since) {
            return Outcome::Failed;
        }
    }
    let safe = *method == Method::GET || *method == Method::HEAD;
    // Step 3 and 4: If-None-Match, else If-Modified-Since (GET and HEAD only).
    if request.contains_key(header::IF_NONE_MATCH) {
        if !if_none_match(request, etag) {
            return if safe {
                Outcome::NotModified
            } else {
                Outcome::Failed
            };
        }
    } else if safe {
        if let Some(since) = date_field(request, &header::IF_MODIFIED_SINCE) {
            let modified = date_field(response, &header::LAST_MODIFIED)
                .or_else(|| date_field(response, &header::DATE))
                .unwrap_or(received);
            if modified <= since {
                return Outcome::NotModified;
            }
        }
    }
    Outcome::Proceed
}

/// An entity-tag: weak or not, and its opaque part with the quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag<'a> {
    weak: bool,
    opaque: &'a str,
}

/// `If-Match` (section 13.1.1): `*` holds for any current representation; otherwise one
/// listed tag must equal the response's `ETag` by the strong comparison.
fn if_match(request: &HeaderMap, etag: Option<Tag<'_>>) -> bool {
    match members(request, &header::IF_MATCH) {
        Members::Any => true,
        Members::Tags(tags) => {
            etag.is_some_and(|e| !e.weak && tags.iter().any(|t| !t.weak && t.opaque == e.opaque))
        }
    }
}

/// `If-None-Match` (section 13.1.2): false when `*` (a representation exists) or when one
/// listed tag equals the response's `ETag` by the weak comparison.
fn if_none_match(request: &HeaderMap, etag: Option<Tag<'_>>) -> bool {
    match members(request, &header::IF_NONE_MATCH) {
        Members::Any => false,
        Members::Tags(tags) => !etag.is_some_and(|e| tags.iter().any(|t| t.opaque == e.opaque)),
    }
}

enum Members<'a> {
    Any,
    Tags(Vec<Tag<'a>>),
}

/// The members of an `If-Match`/`If-None-Match` field, all its lines combined: `*` alone, or
/// the entity-tags. A member that is not an entity-tag matches nothing (an invalid `If-Match`
/// fails, an invalid `If-None-Match` holds), so a malformed field never turns a precondition
/// into a reason to send less than asked.
fn members<'a>(request: &'a HeaderMap, name: &HeaderName) -> Members<'a> {
    let mut tags = Vec::new();
    for line in request.get_all(name) {
        let Ok(mut rest) = line.to_str() else {
            continue;
        };
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix('*') {
                if after.trim_matches([' ', '\t']).is_empty() && tags.is_empty() {
                    return Members::Any;
                }
                rest = after;
                continue;
            }
            let (member, after) = split_tag(rest);
            if let Some(tag) = parse_tag(member) {
                tags.push(tag);
            }
            rest = after;
        }
    }
    Members::Tags(tags)
}

/// Splits the first list member off `s`: an entity-tag ends at its closing quote (commas are
/// allowed inside it); anything else at the next comma.
fn split_tag(s: &str) -> (&str, &str) {
    let start = usize::from(s.starts_with("W/"));
    let body = &s[start * 2..];
    if let Some(inner) = body.strip_prefix('"') {
        if let Some(end) = inner.find('"') {
            let len = start * 2 + 1 + end + 1;
            return (&s[..len], &s[len..]);
        }
    }
    match s.find(',') {
        Some(i) => (s[..i].trim_end(), &s[i..]),
        None => (s.trim_end(), ""),
    }
}

/// `[W/] DQUOTE *etagc DQUOTE` (RFC 9110 section 8.8.3), or `None`.
fn parse_tag(s: &str) -> Option<Tag<'_>> {
    let (weak, opaque) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let b = opaque.as_bytes();
    let valid = b.len() >= 2
        && b[0] == b'"'
        && b[b.len() - 1] == b'"'
        && b[1..b.len() - 1]
            .iter()
            .all(|&c| c == 0x21 || (0x23..=0x7e).contains(&c) || c >= 0x80);
    valid.then_some(Tag { weak, opaque })
}

/// A date field with exactly one valid HTTP-date (an invalid or repeated field is ignored,
/// sections 13.1.3 and 13.1.4).
fn date_field(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut lines = headers.get_all(name).iter();
    let first = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    httpdate::parse_http_date(first.to_str().ok()?.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::from_pairs as h;
    use std::time::Duration;

    const LM: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
    const EARLIER: &str = "Tue, 20 Oct 2015 07:28:00 GMT";
    const LATER: &str = "Thu, 22 Oct 2015 07:28:00 GMT";

    type Fields<'a> = &'a [(&'a str, &'a str)];

    fn eval(req: Fields<'_>, res: Fields<'_>) -> Outcome {
        evaluate(&Method::GET, &h(req), &h(res), SystemTime::now())
    }

    #[test]
    fn if_match_uses_the_strong_comparison() {
        use Outcome::*;
        let strong = [("etag", "\"v1\"")];
        let weak = [("etag", "W/\"v1\"")];
        let cases: &[(Fields, Fields, Outcome)] = &[
            (&[("if-match", "\"v1\"")], &strong, Proceed),
            (&[("if-match", "\"v0\", \"v1\"")], &strong, Proceed),
            (
                &[("if-match", "\"v0\""), ("if-match", "\"v1\"")],
                &strong,
                Proceed,
            ),
            (&[("if-match", "\"v2\"")], &strong, Failed),
            (&[("if-match", "W/\"v1\"")], &strong, Failed),
            (&[("if-match", "\"v1\"")], &weak, Failed),
            (&[("if-match", "*")], &strong, Proceed),
            (&[("if-match", "*")], &[], Proceed),
            (&[("if-match", "\"v1\"")], &[], Failed),
            (&[("if-match", "garbage")], &strong, Failed),
            (&[("if-match", "\"a,b\"")], &[("etag", "\"a,b\"")], Proceed),
            (&[("if-match", "\"a,b\"")], &[("etag", "\"a\"")], Failed),
            (&[("if-match", "")], &strong, Failed),
        ];
        for (req, res, want) in cases {
            assert_eq!(eval(req, res), *want, "{req:?} against {res:?}");
        }
    }

    #[test]
    fn if_unmodified_since_only_without_if_match() {
        use Outcome::*;
        let res = [("etag", "\"v1\""), ("last-modified", LM)];
        assert_eq!(eval(&[("if-unmodified-since", LM)], &res), Proceed);
        assert_eq!(eval(&[("if-unmodified-since", LATER)], &res), Proceed);
        assert_eq!(eval(&[("if-unmodified-since", EARLIER)], &res), Failed);
        // If-Match decides alone when present.
        assert_eq!(
            eval(
                &[("if-match", "\"v1\""), ("if-unmodified-since", EARLIER)],
                &res
            ),
            Proceed
        );
        // An invalid date, or no Last-Modified: ignored.
        assert_eq!(eval(&[("if-unmodified-since", "yesterday")], &res), Proceed);
        assert_eq!(
            eval(&[("if-unmodified-since", EARLIER)], &[("etag", "\"v1\"")]),
            Proceed
        );
    }

    #[test]
    fn if_none_match_and_if_modified_since_give_304() {
        use Outcome::*;
        let res = [("etag", "\"v1\""), ("last-modified", LM)];
        let cases: &[(Fields, Outcome)] = &[
            (&[("if-none-match", "\"v0\", W/\"v1\"")], NotModified),
            (&[("if-none-match", "*")], NotModified),
            (&[("if-none-match", "\"v2\"")], Proceed),
            (
                &[("if-none-match", "\"v2\""), ("if-none-match", "\"v1\"")],
                NotModified,
            ),
            // If-None-Match wins over If-Modified-Since.
            (
                &[("if-none-match", "\"v2\""), ("if-modified-since", LM)],
                Proceed,
            ),
            (&[("if-modified-since", LM)], NotModified),
            (&[("if-modified-since", LATER)], NotModified),
            (&[("if-modified-since", EARLIER)], Proceed),
            (&[("if-modified-since", "not a date")], Proceed),
            (&[], Proceed),
            // A failed If-Match comes first.
            (
                &[("if-match", "\"v2\""), ("if-none-match", "\"v1\"")],
                Failed,
            ),
        ];
        for (req, want) in cases {
            assert_eq!(eval(req, &res), *want, "{req:?}");
        }
    }

    #[test]
    fn if_modified_since_falls_back_to_date_then_the_time_received() {
        use Outcome::*;
        assert_eq!(
            eval(&[("if-modified-since", LM)], &[("date", EARLIER)]),
            NotModified
        );
        assert_eq!(
            eval(&[("if-modified-since", LM)], &[("date", LATER)]),
            Proceed
        );
        let since = httpdate::parse_http_date(LM).unwrap();
        let req = h(&[("if-modified-since", LM)]);
        let at = |t| evaluate(&Method::GET, &req, &HeaderMap::new(), t);
        assert_eq!(at(since - Duration::from_secs(5)), NotModified);
        assert_eq!(at(since + Duration::from_secs(5)), Proceed);
    }

    #[test]
    fn other_methods_fail_instead_of_304() {
        let req = h(&[("if-none-match", "\"v1\"")]);
        let res = h(&[("etag", "\"v1\"")]);
        assert_eq!(
            evaluate(&Method::POST, &req, &res, SystemTime::now()),
            Outcome::Failed
        );
    }
}
