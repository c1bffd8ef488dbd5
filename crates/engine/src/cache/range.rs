//! Ranges: answering `Range` requests from a stored `200` (RFC 9110 section 14).
//!
//! Owns the `Range` and `If-Range` rules: parsing a `bytes` range set, deciding whether it is
//! honoured (`If-Range`, the bound on range counts), coalescing overlapping or adjacent
//! ranges, and building the `206` (single part or `multipart/byteranges`) and `416` answers.
//! It decides nothing about freshness or storing and does not touch `Age` or `Cache-Status`
//! (the deliver stage adds them); everything here is a pure function of the request's headers
//! and one stored response.

use std::hash::{BuildHasher, Hasher};

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue};

/// `Accept-Ranges: bytes`, sent on every response built from a stored `200`.
pub(super) const ACCEPT_BYTES: HeaderValue = HeaderValue::from_static("bytes");

/// One `range-spec` of a `Range: bytes=` header, before the length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `first-` or `first-last` (`last` saturates at `u64::MAX`).
    From(u64, Option<u64>),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Parses a `Range` header value; `None` when it is not a valid `bytes` range set (such a
/// header is ignored: RFC 9110 section 14.2). `max` bounds the number of range-specs: a set
/// with more is treated as invalid (ignored), which section 14.2 allows.
pub fn parse(value: &[u8], max: usize) -> Option<Vec<Spec>> {
    let s = std::str::from_utf8(value).ok()?;
    let (unit, set) = s.split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // The list rule (RFC 9110 section 5.6.1): OWS around commas, empty elements allowed.
    for element in set.split(',').map(|e| e.trim_matches([' ', '\t'])) {
        if element.is_empty() {
            continue;
        }
        if specs.len() == max {
            return None;
        }
        let (first, last) = element.split_once('-')?;
        let spec = if first.is_empty() {
            Spec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            let last = if last.is_empty() {
                None
            } else {
                Some(digits(last)?)
            };
            if last.is_some_and(|l| l < first) {
                return None;
            }
            Spec::From(first, last)
        };
        specs.push(spec);
    }
    (!specs.is_empty()).then_some(specs)
}

/// `1*DIGIT`, saturating at `u64::MAX` (a huge position is valid syntax, and unsatisfiable or
/// clamped like any other).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// What a range set selects of a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Serve the whole representation (`200`).
    Whole,
    /// These inclusive byte ranges (`206`), coalesced, in the order their first range-spec
    /// was requested.
    Ranges(Vec<(u64, u64)>),
    /// No range-spec is satisfiable (`416`).
    Unsatisfiable,
}

/// Resolves range-specs against a length: unsatisfiable specs go, overlapping or adjacent
/// ones are merged (RFC 9110 section 14.2 allows both, whatever the order), and each merged
/// range keeps the place of the earliest spec it holds (section 15.3.7.2).
pub fn select(specs: &[Spec], len: u64) -> Selection {
    let mut ranges: Vec<(u64, u64, usize)> = Vec::with_capacity(specs.len());
    let mut empty_suffix = false;
    for (order, spec) in specs.iter().enumerate() {
        match *spec {
            Spec::From(first, last) if first < len => {
                ranges.push((first, last.unwrap_or(u64::MAX).min(len - 1), order));
            }
            Spec::From(..) | Spec::Suffix(0) => {}
            Spec::Suffix(_) if len == 0 => empty_suffix = true,
            Spec::Suffix(n) => ranges.push((len - n.min(len), len - 1, order)),
        }
    }
    if ranges.is_empty() {
        // A non-zero suffix of an empty representation is satisfiable (section 14.1.1), but
        // no `Content-Range` can name zero bytes: the whole (empty) body is the answer.
        return if empty_suffix {
            Selection::Whole
        } else {
            Selection::Unsatisfiable
        };
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64, usize)> = Vec::with_capacity(ranges.len());
    for (first, last, order) in ranges {
        match merged.last_mut() {
            Some(m) if first <= m.1.saturating_add(1) => {
                m.1 = m.1.max(last);
                m.2 = m.2.min(order);
            }
            _ => merged.push((first, last, order)),
        }
    }
    merged.sort_unstable_by_key(|m| m.2);
    Selection::Ranges(merged.into_iter().map(|(f, l, _)| (f, l)).collect())
}

/// What a `GET`/`HEAD` with these headers gets of a stored `200` with `stored` headers and a
/// body of `len` bytes: the whole when it has no (valid, single) `Range` field, when
/// `If-Range` fails, or when several ranges remain for a body with a `Content-Encoding` (the
/// encoding would name the multipart body, not its parts).
pub fn choose(request: &HeaderMap, stored: &HeaderMap, len: u64, max_ranges: usize) -> Selection {
    let Some(specs) = requested(request, max_ranges) else {
        return Selection::Whole;
    };
    if !if_range_holds(request, stored) {
        return Selection::Whole;
    }
    match select(&specs, len) {
        Selection::Ranges(r) if r.len() > 1 && stored.contains_key(header::CONTENT_ENCODING) => {
            Selection::Whole
        }
        s => s,
    }
}

/// True when a request carries one `Range` field that is a valid `bytes` range set of at most
/// `max_ranges` specs (a miss then keeps the whole body to answer the range from).
pub(super) fn asks(request: &HeaderMap, max_ranges: usize) -> bool {
    requested(request, max_ranges).is_some()
}

/// The specs of the request's one `Range` field, if it has exactly one and it is valid.
fn requested(request: &HeaderMap, max_ranges: usize) -> Option<Vec<Spec>> {
    let mut fields = request.get_all(header::RANGE).iter();
    match (fields.next(), fields.next()) {
        (Some(field), None) => parse(field.as_bytes(), max_ranges),
        _ => None,
    }
}

/// True when the request's `If-Range` (if any) lets its `Range` apply to the stored response
/// (RFC 9110 section 13.1.5): an entity-tag must match the stored `ETag` strongly; a date
/// must equal `Last-Modified`, which must be strong (the stored `Date` at least one second
/// later, section 8.8.2.2). Anything else (weak tags, bad syntax, two fields) means the whole
/// representation.
pub fn if_range_holds(request: &HeaderMap, stored: &HeaderMap) -> bool {
    let mut values = request.get_all(header::IF_RANGE).iter();
    let Some(value) = values.next() else {
        return true;
    };
    if values.next().is_some() {
        return false;
    }
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim_matches([' ', '\t']);
    if value.starts_with('"') {
        let stored = stored.get(header::ETAG).and_then(|v| v.to_str().ok());
        return is_strong_tag(value) && stored.is_some_and(|s| s.trim() == value);
    }
    let date = |h: &HeaderMap, name| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| httpdate::parse_http_date(s).ok())
    };
    let (Ok(asked), Some(last_modified)) = (
        httpdate::parse_http_date(value),
        date(stored, header::LAST_MODIFIED),
    ) else {
        return false;
    };
    let strong = date(stored, header::DATE).is_some_and(|d| {
        d.duration_since(last_modified)
            .is_ok_and(|gap| gap.as_secs() >= 1)
    });
    strong && asked == last_modified
}

/// `"..."` with only `etagc` characters inside (RFC 9110 section 8.8.3).
fn is_strong_tag(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0] == b'"'
        && b[b.len() - 1] == b'"'
        && b[1..b.len() - 1]
            .iter()
            .all(|&c| c == 0x21 || (0x23..=0x7e).contains(&c) || c >= 0x80)
}

/// The `Content-Range` of one part: `bytes first-last/len`.
fn content_range(first: u64, last: u64, len: u64) -> String {
    format!("bytes {first}-{last}/{len}")
}

/// A `206`'s status, the headers it replaces in the stored ones, and its body.
pub(super) struct Partial {
    /// `Content-Range` (one part) or `Content-Type: multipart/byteranges` (several).
    pub(super) headers: HeaderMap,
    /// The part, or the whole multipart body.
    pub(super) body: Bytes,
}

/// The headers a single-part `206` of bytes `first..=last` of `len` replaces:
/// `Content-Range` and `Content-Length`.
pub(super) fn part_headers(first: u64, last: u64, len: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_RANGE,
        value(&content_range(first, last, len)),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(last - first + 1));
    headers
}

/// Builds the `206` for `ranges` of `body` (non-empty, each within it); `content_type` is the
/// stored response's, repeated in each part of a multipart answer.
pub(super) fn partial(
    body: &Bytes,
    ranges: &[(u64, u64)],
    content_type: Option<&HeaderValue>,
) -> Partial {
    let len = body.len() as u64;
    let mut headers = HeaderMap::new();
    if let [(first, last)] = ranges {
        return Partial {
            headers: part_headers(*first, *last, len),
            body: body.slice(*first as usize..=*last as usize),
        };
    }
    let boundary = boundary_for(body, ranges);
    let mut heads = Vec::with_capacity(ranges.len());
    for &(first, last) in ranges {
        let mut head = format!("--{boundary}\r\n");
        if let Some(ct) = content_type.and_then(|v| v.to_str().ok()) {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str(&format!(
            "Content-Range: {}\r\n\r\n",
            content_range(first, last, len)
        ));
        heads.push(head);
    }
    let closing = format!("--{boundary}--\r\n");
    let total = heads.iter().map(String::len).sum::<usize>()
        + ranges
            .iter()
            .map(|(f, l)| (l - f + 1) as usize + 2)
            .sum::<usize>()
        + closing.len();
    let mut out = BytesMut::with_capacity(total);
    for (head, &(first, last)) in heads.iter().zip(ranges) {
        out.put_slice(head.as_bytes());
        out.put_slice(&body[first as usize..=last as usize]);
        out.put_slice(b"\r\n");
    }
    out.put_slice(closing.as_bytes());
    headers.insert(
        header::CONTENT_TYPE,
        value(&format!("multipart/byteranges; boundary={boundary}")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    Partial {
        headers,
        body: out.freeze(),
    }
}

/// The headers of a `416` for a representation of `len` bytes: `Content-Range: bytes */len`.
pub(super) fn unsatisfiable(len: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_RANGE, value(&format!("bytes */{len}")));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    h
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("built from digits, tokens and a stored header value")
}

/// A multipart boundary that occurs in none of the parts sent (so no part can end early):
/// random, checked against the parts, and drawn again in the (vanishingly rare) case it does.
fn boundary_for(body: &Bytes, ranges: &[(u64, u64)]) -> String {
    let state = std::collections::hash_map::RandomState::new();
    for attempt in 0u64.. {
        let mut h = state.build_hasher();
        h.write_u64(attempt);
        let boundary = format!("vanish-{:016x}", h.finish());
        let found = ranges
            .iter()
            .any(|&(f, l)| contains(&body[f as usize..=l as usize], boundary.as_bytes()));
        if !found {
            return boundary;
        }
    }
    unreachable!("the attempts never run out")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Spec::{From, Suffix};

    #[test]
    fn range_headers_parse_as_the_grammar_says() {
        let table: &[(&str, Option<&[Spec]>)] = &[
            ("bytes=0-99", Some(&[From(0, Some(99))])),
            ("bytes=500-", Some(&[From(500, None)])),
            ("bytes=-500", Some(&[Suffix(500)])),
            ("BYTES=1-2", Some(&[From(1, Some(2))])),
            ("bytes=0-0,-1", Some(&[From(0, Some(0)), Suffix(1)])),
            (
                "bytes=0-1 , 5-6",
                Some(&[From(0, Some(1)), From(5, Some(6))]),
            ),
            ("bytes=,0-1,,", Some(&[From(0, Some(1))])),
            ("bytes=5-5", Some(&[From(5, Some(5))])),
            ("bytes=-0", Some(&[Suffix(0)])),
            (
                "bytes=99999999999999999999999-",
                Some(&[From(u64::MAX, None)]),
            ),
            (
                "bytes=0-99999999999999999999999",
                Some(&[From(0, Some(u64::MAX))]),
            ),
            ("bytes=5-4", None),
            ("bytes=", None),
            ("bytes=,", None),
            ("bytes", None),
            ("bytes=-", None),
            ("bytes=a-b", None),
            ("bytes=1-2-3", None),
            ("bytes=+1-2", None),
            ("bytes=0x1-2", None),
            ("bytes =0-1", None),
            ("items=0-1", None),
            ("bytes=1", None),
            ("bytes=0-1;x", None),
        ];
        for (header, want) in table {
            assert_eq!(
                parse(header.as_bytes(), 100).as_deref(),
                *want,
                "Range: {header}"
            );
        }
        assert!(parse(b"bytes=0-1,2-3,4-5", 3).is_some());
        assert_eq!(
            parse(b"bytes=0-1,2-3,4-5", 2),
            None,
            "more specs than allowed"
        );
    }

    #[test]
    fn ranges_are_resolved_clamped_and_coalesced_in_request_order() {
        let r = |v: &[(u64, u64)]| Selection::Ranges(v.to_vec());
        let table: &[(&[Spec], u64, Selection)] = &[
            (&[From(0, Some(99))], 4096, r(&[(0, 99)])),
            (&[From(4000, None)], 4096, r(&[(4000, 4095)])),
            (&[From(0, Some(10_000))], 4096, r(&[(0, 4095)])),
            (&[Suffix(500)], 4096, r(&[(3596, 4095)])),
            (&[Suffix(10_000)], 4096, r(&[(0, 4095)])),
            (&[From(4096, None)], 4096, Selection::Unsatisfiable),
            (&[Suffix(0)], 4096, Selection::Unsatisfiable),
            (&[From(4096, None), From(0, Some(0))], 4096, r(&[(0, 0)])),
            // Overlapping and adjacent ones merge; the rest keep their order.
            (
                &[From(100, Some(199)), From(0, Some(9)), From(150, Some(300))],
                4096,
                r(&[(100, 300), (0, 9)]),
            ),
            (&[From(0, Some(9)), From(10, Some(19))], 4096, r(&[(0, 19)])),
            (
                &[From(0, Some(9)), From(11, Some(19))],
                4096,
                r(&[(0, 9), (11, 19)]),
            ),
            (&[From(0, None), Suffix(1)], 4096, r(&[(0, 4095)])),
            // One byte, and nothing at all.
            (&[From(0, Some(0))], 1, r(&[(0, 0)])),
            (&[Suffix(5)], 1, r(&[(0, 0)])),
            (&[From(1, None)], 1, Selection::Unsatisfiable),
            (&[From(0, None)], 0, Selection::Unsatisfiable),
            (&[Suffix(5)], 0, Selection::Whole),
        ];
        for (specs, len, want) in table {
            assert_eq!(&select(specs, *len), want, "{specs:?} of {len} bytes");
        }
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        crate::headers::from_pairs(pairs)
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let lm = "Wed, 21 Oct 2015 07:28:00 GMT";
        let stored = h(&[
            ("etag", "\"v1\""),
            ("last-modified", lm),
            ("date", "Wed, 21 Oct 2015 07:28:01 GMT"),
        ]);
        let table: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("if-range", "\"v1\"")], true),
            (&[("if-range", "\"v2\"")], false),
            (&[("if-range", "W/\"v1\"")], false),
            (&[("if-range", lm)], true),
            (&[("if-range", "Wed, 21 Oct 2015 07:28:01 GMT")], false),
            (&[("if-range", "garbage")], false),
            (&[("if-range", "\"v1\""), ("if-range", "\"v1\"")], false),
        ];
        for (req, want) in table {
            assert_eq!(if_range_holds(&h(req), &stored), *want, "{req:?}");
        }
        // A weak stored tag never matches; a Last-Modified as late as Date is weak.
        let weak = h(&[("etag", "W/\"v1\""), ("last-modified", lm), ("date", lm)]);
        assert!(!if_range_holds(&h(&[("if-range", "\"v1\"")]), &weak));
        assert!(!if_range_holds(&h(&[("if-range", "W/\"v1\"")]), &weak));
        assert!(!if_range_holds(&h(&[("if-range", lm)]), &weak));
        let no_date = h(&[("last-modified", lm)]);
        assert!(!if_range_holds(&h(&[("if-range", lm)]), &no_date));
    }

    #[test]
    fn several_ranges_of_an_encoded_body_get_the_whole() {
        let req = h(&[("range", "bytes=0-1,5-6")]);
        assert_eq!(
            choose(&req, &h(&[("content-encoding", "gzip")]), 100, 100),
            Selection::Whole
        );
        assert_eq!(
            choose(&req, &HeaderMap::new(), 100, 100),
            Selection::Ranges(vec![(0, 1), (5, 6)])
        );
        let one = h(&[("range", "bytes=0-1")]);
        assert_eq!(
            choose(&one, &h(&[("content-encoding", "gzip")]), 100, 100),
            Selection::Ranges(vec![(0, 1)])
        );
        let two_fields = h(&[("range", "bytes=0-1"), ("range", "bytes=2-3")]);
        assert_eq!(
            choose(&two_fields, &HeaderMap::new(), 100, 100),
            Selection::Whole
        );
    }

    /// The parts of a multipart/byteranges body: (Content-Type, Content-Range, data).
    fn parts(body: &[u8], boundary: &str) -> Vec<(Option<String>, String, Vec<u8>)> {
        let mut rest = body;
        let mut out = Vec::new();
        let open = format!("--{boundary}\r\n");
        let close = format!("--{boundary}--\r\n");
        while !rest.starts_with(close.as_bytes()) {
            assert!(rest.starts_with(open.as_bytes()), "a part opens");
            rest = &rest[open.len()..];
            let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let head = std::str::from_utf8(&rest[..end]).unwrap();
            rest = &rest[end + 4..];
            let (mut ct, mut cr) = (None, None);
            for line in head.split("\r\n") {
                let (k, v) = line.split_once(": ").unwrap();
                match k {
                    "Content-Type" => ct = Some(v.to_owned()),
                    "Content-Range" => cr = Some(v.to_owned()),
                    _ => panic!("unexpected part header {k}"),
                }
            }
            let cr = cr.expect("each part has a Content-Range");
            let (a, b) = cr[6..].split_once('/').unwrap().0.split_once('-').unwrap();
            let n = b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1;
            out.push((ct, cr, rest[..n].to_vec()));
            assert_eq!(&rest[n..n + 2], b"\r\n");
            rest = &rest[n + 2..];
        }
        assert_eq!(
            rest.len(),
            close.len(),
            "nothing after the closing delimiter"
        );
        out
    }

    #[test]
    fn multipart_parts_carry_content_type_and_content_range() {
        let body = Bytes::from_static(b"0123456789abcdefghij");
        let ct = HeaderValue::from_static("text/plain");
        let p = partial(&body, &[(10, 12), (0, 1)], Some(&ct));
        let t = p.headers[header::CONTENT_TYPE].to_str().unwrap();
        let boundary = t.strip_prefix("multipart/byteranges; boundary=").unwrap();
        assert_eq!(p.headers[header::CONTENT_LENGTH], p.body.len().to_string());
        assert!(!p.headers.contains_key(header::CONTENT_RANGE));
        let got = parts(&p.body, boundary);
        assert_eq!(
            got,
            vec![
                (
                    Some("text/plain".into()),
                    "bytes 10-12/20".into(),
                    b"abc".to_vec()
                ),
                (
                    Some("text/plain".into()),
                    "bytes 0-1/20".into(),
                    b"01".to_vec()
                ),
            ]
        );
        let single = partial(&body, &[(19, 19)], Some(&ct));
        assert_eq!(single.headers[header::CONTENT_RANGE], "bytes 19-19/20");
        assert_eq!(single.headers[header::CONTENT_LENGTH], "1");
        assert!(
            !single.headers.contains_key(header::CONTENT_TYPE),
            "the stored one stays"
        );
        assert_eq!(&single.body[..], b"j");
    }

    #[test]
    fn the_boundary_never_occurs_in_the_parts() {
        // A body made of boundaries this process would draw first cannot hold the one chosen.
        let first = boundary_for(&Bytes::from_static(b"x"), &[(0, 0)]);
        let body = Bytes::from(format!("{first}{first}").repeat(10));
        let chosen = boundary_for(&body, &[(0, body.len() as u64 - 1)]);
        assert!(!contains(&body, chosen.as_bytes()));
    }

    fn spec() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..3000, 0u64..3000).prop_map(|(a, n)| format!("{a}-{}", a + n)),
            (0u64..3000).prop_map(|a| format!("{a}-")),
            (0u64..3000).prop_map(|n| format!("-{n}")),
        ]
    }

    proptest! {
        #[test]
        fn partial_bodies_are_the_slices_of_the_stored_body(
            body in proptest::collection::vec(any::<u8>(), 0..2500),
            specs in proptest::collection::vec(spec(), 1..6),
        ) {
            let body = Bytes::from(body);
            let len = body.len() as u64;
            let header = format!("bytes={}", specs.join(","));
            let req = h(&[("range", &header)]);
            let parsed = parse(header.as_bytes(), 100).unwrap();
            let ct = HeaderValue::from_static("application/octet-stream");
            match choose(&req, &HeaderMap::new(), len, 100) {
                Selection::Whole => prop_assert!(len == 0),
                Selection::Unsatisfiable => {
                    let none = parsed.iter().all(|s| match s {
                        From(a, _) => *a >= len,
                        Suffix(n) => *n == 0,
                    });
                    prop_assert!(none, "{:?} of {} bytes", parsed, len);
                }
                Selection::Ranges(ranges) => {
                    let p = partial(&body, &ranges, Some(&ct));
                    let got: Vec<(u64, u64, Vec<u8>)> = if ranges.len() == 1 {
                        let (a, b) = ranges[0];
                        prop_assert_eq!(
                            p.headers[header::CONTENT_RANGE].to_str().unwrap(),
                            format!("bytes {a}-{b}/{len}")
                        );
                        vec![(a, b, p.body.to_vec())]
                    } else {
                        let t = p.headers[header::CONTENT_TYPE].to_str().unwrap();
                        let boundary = t.strip_prefix("multipart/byteranges; boundary=").unwrap();
                        parts(&p.body, boundary).into_iter().map(|(_, cr, data)| {
                            let (a, b) = cr[6..].split_once('/').unwrap().0.split_once('-').unwrap();
                            (a.parse().unwrap(), b.parse().unwrap(), data)
                        }).collect()
                    };
                    prop_assert_eq!(p.headers[header::CONTENT_LENGTH].to_str().unwrap(), p.body.len().to_string());
                    for (a, b, data) in &got {
                        prop_assert_eq!(&data[..], &body[*a as usize..=*b as usize]);
                    }
                    // Every requested byte is sent, and no byte twice.
                    let covered = |i: u64| got.iter().filter(|(a, b, _)| (*a..=*b).contains(&i)).count();
                    for s in &parsed {
                        let (a, b) = match *s {
                            From(a, _) if a >= len => continue,
                            From(a, l) => (a, l.unwrap_or(u64::MAX).min(len - 1)),
                            Suffix(0) => continue,
                            Suffix(n) => (len - n.min(len), len - 1),
                        };
                        for i in a..=b {
                            prop_assert_eq!(covered(i), 1, "byte {} of {:?}", i, s);
                        }
                    }
                }
            }
        }
    }
}
