//! Request hygiene at the edge: what is refused or corrected before a request reaches the
//! engine or the origin (RFC 9112 framing and target rules that make smuggling and cache
//! poisoning impossible). Owns the checks only.

use http::request::Parts;
use http::{header, HeaderValue, StatusCode};

/// Why a request was refused: the status and a one-line reason.
pub type Refusal = (StatusCode, &'static str);

/// Checks and corrects a request's framing and target.
///
/// - Both `Transfer-Encoding` and `Content-Length`: refused (a smuggling vector).
/// - More than one `Host`, or a `Host` that is not `host[:port]`: refused (RFC 9112 3.2).
/// - Absolute-form target (`GET http://a/ HTTP/1.1`): `Host` is replaced by the target's
///   authority, so the key and the origin see the same host.
/// - A request target longer than `max_url_bytes`: refused with 414.
pub fn check(parts: &mut Parts, max_url_bytes: usize) -> Result<(), Refusal> {
    let target_len = parts.uri.path_and_query().map_or(0, |p| p.as_str().len())
        + parts.uri.authority().map_or(0, |a| a.as_str().len());
    if target_len > max_url_bytes {
        return Err((StatusCode::URI_TOO_LONG, "request target too long"));
    }
    if parts.headers.contains_key(header::TRANSFER_ENCODING)
        && parts.headers.contains_key(header::CONTENT_LENGTH)
    {
        return Err((
            StatusCode::BAD_REQUEST,
            "both Transfer-Encoding and Content-Length",
        ));
    }
    if parts.headers.get_all(header::HOST).iter().count() > 1 {
        return Err((StatusCode::BAD_REQUEST, "more than one Host header"));
    }
    if let Some(host) = parts.headers.get(header::HOST) {
        let valid = host.to_str().ok().is_some_and(|h| {
            h.parse::<http::uri::Authority>().is_ok() && !h.contains(['/', '?', '#', '@'])
        });
        if !valid {
            return Err((StatusCode::BAD_REQUEST, "invalid Host header"));
        }
    }
    if let Some(authority) = parts.uri.authority() {
        match HeaderValue::from_str(authority.as_str()) {
            Ok(v) => {
                parts.headers.insert(header::HOST, v);
            }
            Err(_) => return Err((StatusCode::BAD_REQUEST, "invalid request target authority")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn refusals_and_corrections() {
        let mut p = parts("/", &[("host", "a"), ("host", "b")]);
        assert_eq!(check(&mut p, 8192).unwrap_err().0, StatusCode::BAD_REQUEST);
        let mut p = parts(
            "/",
            &[
                ("host", "a"),
                ("transfer-encoding", "chunked"),
                ("content-length", "3"),
            ],
        );
        assert_eq!(check(&mut p, 8192).unwrap_err().0, StatusCode::BAD_REQUEST);
        let mut p = parts("http://x.example/p", &[("host", "y.example")]);
        check(&mut p, 8192).unwrap();
        assert_eq!(p.headers.get("host").unwrap(), "x.example");
        let mut p = parts("/", &[("host", "evil.test/x?y=")]);
        assert_eq!(check(&mut p, 8192).unwrap_err().0, StatusCode::BAD_REQUEST);
        let long = format!("/{}", "a".repeat(100));
        let mut p = parts(&long, &[("host", "a")]);
        assert_eq!(check(&mut p, 64).unwrap_err().0, StatusCode::URI_TOO_LONG);
    }
}
