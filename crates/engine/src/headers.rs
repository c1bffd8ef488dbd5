//! Header hygiene shared by every stage: hop-by-hop removal and conditional-request checks.
//!
//! Owns header-level rules of RFC 9110 (sections 7.6.1 and 13); it holds no state.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers a proxy never forwards (RFC 9110 section 7.6.1).
pub const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A copy of `headers` whose every value has an allocation of its own.
///
/// hyper parses header values as slices of the connection's read buffer, so a value kept
/// after the response keeps that whole buffer (often tens of kilobytes) alive. Whatever the
/// cache stores (an object's headers, the copies `http-cache-semantics` keeps) is detached
/// first, so an object holds only what the store's weigher counts.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// let mut h = HeaderMap::new();
/// h.insert("etag", HeaderValue::from_static("\"v1\""));
/// h.append("vary", HeaderValue::from_static("accept-language"));
/// assert_eq!(vanish_engine::headers::detach(&h), h);
/// ```
pub fn detach(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // Only bytes `from_bytes` refuses (none hyper's parser lets through) keep the share.
        let owned = match HeaderValue::from_bytes(value.as_bytes()) {
            Ok(mut v) => {
                v.set_sensitive(value.is_sensitive());
                v
            }
            Err(_) => value.clone(),
        };
        out.append(name.clone(), owned);
    }
    out
}

/// The header names a message's `Connection` header lists (RFC 9110 section 7.6.1).
pub fn connection_options(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

/// Removes hop-by-hop headers, including those named by `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for n in connection_options(headers) {
        headers.remove(n);
    }
    for n in HOP_BY_HOP.iter() {
        headers.remove(n);
    }
    headers.remove("proxy-connection");
}

/// The headers a `304` carries from the stored response (RFC 9110 section 15.4.5).
pub const NOT_MODIFIED_HEADERS: [HeaderName; 7] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::VARY,
    header::LAST_MODIFIED,
];

/// A header map from `(name, value)` pairs, in order (repeated names are appended): the unit
/// tests' way to write headers.
#[cfg(test)]
pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_values_share_nothing_with_the_buffer_they_were_parsed_from() {
        // hyper's parser hands out values as slices of the connection's read buffer.
        let buffer = bytes::Bytes::from(vec![b'a'; 64 * 1024]);
        let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let mut parsed = HeaderMap::new();
        parsed.insert(
            header::ETAG,
            HeaderValue::from_maybe_shared(buffer.slice(10..20)).unwrap(),
        );
        let mut secret = HeaderValue::from_maybe_shared(buffer.slice(30..40)).unwrap();
        secret.set_sensitive(true);
        parsed.append(header::AUTHORIZATION, secret);
        parsed.append(header::AUTHORIZATION, HeaderValue::from_static("second"));
        let detached = detach(&parsed);
        assert_eq!(detached, parsed);
        assert!(detached.get(header::AUTHORIZATION).unwrap().is_sensitive());
        for v in detached.values() {
            assert!(!range.contains(&(v.as_bytes().as_ptr() as usize)));
        }
        drop(parsed);
        // Only the test's own handle is left: the buffer is no longer shared.
        assert!(buffer.is_unique());
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        crate::headers::from_pairs(pairs)
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut m = h(&[
            ("connection", "close, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-keep", "1"),
        ]);
        strip_hop_by_hop(&mut m);
        assert_eq!(m.len(), 1);
        assert!(m.contains_key("x-keep"));
    }
}
