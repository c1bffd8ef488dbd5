//! Keeping web pages out of the admin API.
//!
//! Without a token the admin API trusts its source address (loopback by default), and any page
//! open in a browser on that machine can make requests from it. Owns the three rules that stop
//! such a page, applied after authentication and before routing:
//! - a request carrying `Origin` (browsers send it on every cross-site request and on every
//!   `POST`/`PURGE`) is refused unless that origin is listed in `[admin] allow_origins`;
//! - a request let in by its address (not by a token) must name this listener in `Host`: an IP
//!   address, `localhost`, or a name in `[admin] hosts`, so a DNS-rebinding page (whose `Host`
//!   is its own domain name) cannot read `/explain`. `PURGE` is
//!   exempt: its `Host` names the site to purge (Varnish style), and browsers cannot send it
//!   without an `Origin`;
//! - JSON endpoints take only `Content-Type: application/json` (a page's "simple" `text/plain`
//!   or form `POST` needs no CORS preflight) — checked by the route, with [`is_json`].

use std::net::IpAddr;

use http::{header, HeaderMap, Method, StatusCode};

/// Which `Host` and `Origin` values the admin listener answers.
#[derive(Debug, Clone)]
pub struct BrowserGuard {
    /// Extra names (lower-case, no port) the tokenless listener answers to.
    hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`, lower-case) allowed to call.
    origins: Vec<String>,
}

/// Why a request was refused: status and message.
pub type Refusal = (StatusCode, &'static str, String);

impl BrowserGuard {
    /// A guard with the configured extra host names and origins.
    pub fn new(hosts: &[String], origins: &[String]) -> Self {
        BrowserGuard {
            hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            origins: origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Checks one request; `by_address` is true when it was let in without a token.
    pub fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        by_address: bool,
    ) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let o = String::from_utf8_lossy(origin.as_bytes()).to_ascii_lowercase();
            if !self.origins.contains(&o) {
                return Err((
                    StatusCode::FORBIDDEN,
                    "origin",
                    format!(
                        "requests from web pages (Origin {o:?}) are refused; list the origin in [admin] allow_origins"
                    ),
                ));
            }
        }
        if by_address && method.as_str() != "PURGE" {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            if !self.names_this_listener(host) {
                return Err((
                    StatusCode::FORBIDDEN,
                    "host",
                    format!(
                        "Host {host:?} does not name this admin listener; use its address, localhost, or a name in [admin] hosts"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn names_this_listener(&self, host: &str) -> bool {
        let name = strip_port(host).to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        // An address literal cannot come from DNS rebinding (a browser's Host is the name of
        // the page's own origin), whichever address of the machine it names.
        if name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
        {
            return true;
        }
        self.hosts.iter().any(|h| h == name)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` without the port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// True when the request's `Content-Type` is `application/json` (parameters allowed).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn host_must_name_the_listener_without_a_token() {
        let g = BrowserGuard::new(&["admin.internal".into()], &[]);
        let get = Method::GET;
        for ok in [
            "127.0.0.1:8081",
            "localhost:8081",
            "LOCALHOST",
            "[::1]:8081",
            "10.0.0.5:8081",
            "admin.internal",
            "admin.internal.:9",
            "127.9.9.9",
        ] {
            assert!(
                g.check(&get, &headers(&[("host", ok)]), true).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "evil.example:8081",
            "127.0.0.1.evil.example",
            "",
            "localhost.evil.example",
        ] {
            assert!(
                g.check(&get, &headers(&[("host", bad)]), true).is_err(),
                "{bad}"
            );
            // A token holder may use any name (a browser cannot send the token).
            assert!(
                g.check(&get, &headers(&[("host", bad)]), false).is_ok(),
                "{bad}"
            );
        }
        // PURGE's Host names the site.
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert!(g
            .check(&purge, &headers(&[("host", "www.example.com")]), true)
            .is_ok());
    }

    #[test]
    fn origins_are_refused_unless_listed() {
        let g = BrowserGuard::new(&[], &["https://ops.example.com".into()]);
        let h = |o| headers(&[("host", "127.0.0.1"), ("origin", o)]);
        assert!(g
            .check(&Method::POST, &h("https://evil.example"), false)
            .is_err());
        assert!(g.check(&Method::POST, &h("null"), true).is_err());
        assert!(g
            .check(&Method::POST, &h("https://OPS.example.com"), true)
            .is_ok());
    }

    #[test]
    fn json_content_type() {
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )])));
        assert!(!is_json(&headers(&[])));
    }
}
