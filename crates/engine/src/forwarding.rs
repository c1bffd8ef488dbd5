//! What of a client's request travels on to the origin: the entrance every request passes
//! before it is keyed or forwarded.
//!
//! Owns three rules that keep the key and the origin's view of a request the same:
//! - **Forwarding headers belong to the cache.** Headers that frameworks trust to rebuild the
//!   URL, host, scheme, method or client address (every `X-Forwarded-*`, `Forwarded`,
//!   `X-Original-*`, `X-Rewrite-*`, `X-*-Override`, `Front-End-Https`, `X-Url-Scheme`,
//!   `X-Real-IP`, any name containing `forwarded`, ... in any spelling with `_` for `-`) are
//!   dropped when a client sends them.
//!   A peer listed in [`Forwarding::trusted_proxies`] (a load balancer in front) may set them,
//!   and [`Forwarding::pass`] keeps named ones from anyone. Whatever is kept and can change
//!   the page is added to the key; client-address headers (`X-Forwarded-For`, `X-Real-IP`, a
//!   `Forwarded` `for=`) are kept from trusted peers without keying (they name the client, not
//!   the page). The front end then sets its own forwarding headers from what it knows.
//! - **`Connection` cannot reach end-to-end headers the cache depends on.** Headers a client
//!   nominates in `Connection` are removed here, before the key is computed, so the key, the
//!   rules and `Vary` see the same request as the origin; `Host` and the framing headers
//!   cannot be nominated (such a nomination is ignored and logged).
//! - **The origin receives the `Host` the key uses** (lower-cased, no trailing dot, no default
//!   port).
//!
//! It must not decide anything about storage or freshness.

use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use ipnet::IpNet;

use crate::url::{normalize_authority, Scheme};

/// The address of the peer a request came from (a request extension the front end sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// True when `ip` is in one of `nets` (an IPv4-mapped IPv6 address counts as IPv4).
pub fn peer_in(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

/// Who may set forwarding headers, and which ones a site keeps.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    /// Peers (load balancers in front of the cache) whose forwarding headers are kept.
    pub trusted_proxies: Vec<IpNet>,
    /// Forwarding headers kept from any client (lower-case, `-` spelling); they are keyed.
    pub pass: Vec<HeaderName>,
}

/// What a kept forwarding header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Names the client (its address): kept from trusted peers, never keyed.
    ClientAddress,
    /// Can change the page (URL, host, scheme, method): keyed when kept.
    Rendering,
}

/// The family of a forwarding header, or `None` for any other header. `name` is lower-case
/// (an `http::HeaderName`); `_` counts as `-`, as WSGI and CGI servers map both alike.
fn family(name: &str) -> Option<Family> {
    // Every `*forwarded*` header (`Forwarded`, `X-Forwarded-*`, `CloudFront-Forwarded-Proto`,
    // `X-Original-Forwarded-For`, ...): `*-for` names the client, the rest can change a page.
    if name.contains("forwarded") {
        return Some(if ends_dash(name, "-for") {
            Family::ClientAddress
        } else {
            Family::Rendering
        });
    }
    let starts = |p: &str| name.len() > p.len() && eq_dash(&name[..p.len()], p);
    let is = |n: &str| eq_dash(name, n);
    const CLIENT: [&str; 8] = [
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "x-cluster-client-ip",
        "client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-proxyuser-ip",
    ];
    const RENDERING: [&str; 10] = [
        "front-end-https",
        "x-url-scheme",
        "x-scheme",
        "x-host",
        "x-http-method",
        "x-arr-ssl",
        "x-proxy-url",
        "x-https",
        "x-ssl",
        "ssl-offloaded",
    ];
    if CLIENT.iter().any(|n| is(n)) {
        return Some(Family::ClientAddress);
    }
    if RENDERING.iter().any(|n| is(n))
        || starts("x-original-")
        || starts("x-rewrite-")
        || starts("x-envoy-original-")
        || (starts("x-") && name.len() > "x--override".len() && ends_dash(name, "-override"))
    {
        return Some(Family::Rendering);
    }
    None
}

/// ASCII-equal, with `_` and `-` the same.
fn eq_dash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (x == b'_' && y == b'-'))
}

fn ends_dash(name: &str, suffix: &str) -> bool {
    name.len() >= suffix.len() && eq_dash(&name[name.len() - suffix.len()..], suffix)
}

/// True for a header of the forwarding families (see the module docs), in any spelling.
///
/// ```
/// use vanish_engine::forwarding::is_forwarding_header;
/// assert!(is_forwarding_header("x-forwarded-prefix"));
/// assert!(is_forwarding_header("x_forwarded_host"));
/// assert!(is_forwarding_header("x-http-host-override"));
/// assert!(!is_forwarding_header("accept-language"));
/// ```
pub fn is_forwarding_header(name: &str) -> bool {
    family(&name.to_ascii_lowercase()).is_some()
}

/// Headers a client may never remove by naming them in `Connection`.
fn protected_from_connection(name: &HeaderName) -> bool {
    name == header::HOST || name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING
}

/// Runs the entrance rules on a request (see the module docs); `scheme` is what the cache's
/// clients speak. Returns what the key must add for kept forwarding headers that can change
/// the page (`None` when none was kept, the usual case).
///
/// ```
/// use vanish_engine::forwarding::{admit, Forwarding};
/// let (mut p, ()) = http::Request::get("/")
///     .header("host", "Site.Example.:80")
///     .header("x-forwarded-host", "evil.example")
///     .header("connection", "accept-language")
///     .header("accept-language", "fr")
///     .body(()).unwrap().into_parts();
/// assert_eq!(admit(&mut p, vanish_engine::Scheme::Http, &Forwarding::default()), None);
/// assert_eq!(p.headers["host"], "site.example");
/// assert!(!p.headers.contains_key("x-forwarded-host"));
/// assert!(!p.headers.contains_key("accept-language"));
/// ```
pub fn admit(parts: &mut Parts, scheme: Scheme, rules: &Forwarding) -> Option<String> {
    consume_connection(&mut parts.headers);
    normalize_host(&mut parts.headers, scheme);
    let trusted = !rules.trusted_proxies.is_empty()
        && parts
            .extensions
            .get::<ClientAddr>()
            .is_some_and(|a| peer_in(&rules.trusted_proxies, a.0.ip()));
    let mut keyed: Option<String> = None;
    let mut drop: Vec<HeaderName> = Vec::new();
    let mut seen_family = false;
    for name in parts.headers.keys() {
        if family(name.as_str()).is_none() {
            continue;
        }
        seen_family = true;
        let passed = rules
            .pass
            .iter()
            .any(|p| eq_dash(name.as_str(), p.as_str()));
        if !(trusted || passed) {
            drop.push(name.clone());
        }
    }
    if !seen_family {
        return None;
    }
    for name in drop {
        tracing::debug!(header = %name, "client-sent forwarding header dropped");
        parts.headers.remove(name);
    }
    // What is left was kept (trusted peer or pass-list): key what can change the page.
    for (name, value) in parts.headers.iter() {
        if family(name.as_str()) != Some(Family::Rendering) {
            continue;
        }
        let value = if name == header::FORWARDED {
            forwarded_rendering_params(value)
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        let k = keyed.get_or_insert_with(String::new);
        k.push_str(&format!("f:{name}={value:?};"));
    }
    keyed
}

/// The `proto=` and `host=` parameters of a `Forwarded` value (the parts that change a page;
/// `for=` and `by=` name addresses).
fn forwarded_rendering_params(value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    text.split([',', ';'])
        .map(str::trim)
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("").trim();
            k.eq_ignore_ascii_case("proto") || k.eq_ignore_ascii_case("host")
        })
        .collect::<Vec<_>>()
        .join(";")
        .to_ascii_lowercase()
}

/// Removes the headers `Connection` nominates (never `Host` or framing headers), then
/// `Connection` itself: from here on, no stage removes anything else on its behalf.
fn consume_connection(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CONNECTION) {
        return;
    }
    for n in crate::headers::connection_options(headers) {
        if protected_from_connection(&n) {
            tracing::info!(header = %n, "Connection nominated a header that cannot be removed; ignored");
            continue;
        }
        headers.remove(n);
    }
    headers.remove(header::CONNECTION);
}

/// Rewrites `Host` to its normal form (what the key uses), when it is not already.
fn normalize_host(headers: &mut HeaderMap, scheme: Scheme) {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let normal = host.bytes().all(|b| !b.is_ascii_uppercase())
        && !host.ends_with('.')
        && !host.ends_with(match scheme {
            Scheme::Http => ":80",
            Scheme::Https => ":443",
        })
        && !host.contains(".:");
    if normal {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&normalize_authority(scheme, host)) {
        headers.insert(header::HOST, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)], peer: Option<&str>) -> Parts {
        let mut b = http::Request::get("/p");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (mut p, ()) = b.body(()).unwrap().into_parts();
        if let Some(peer) = peer {
            p.extensions.insert(ClientAddr(peer.parse().unwrap()));
        }
        p
    }

    #[test]
    fn every_family_member_in_any_spelling_is_dropped_from_clients() {
        let names = [
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-prefix",
            "x-forwarded-path",
            "x-forwarded-uri",
            "x-forwarded-ssl",
            "x-forwarded-protocol",
            "x-forwarded-scheme",
            "x-forwarded-port",
            "x-forwarded-server",
            "x-forwarded",
            "x-original-uri",
            "x-original-host",
            "x-original-url",
            "x-rewrite-url",
            "x-http-host-override",
            "x-http-method-override",
            "x-method-override",
            "x-http-method",
            "front-end-https",
            "x-url-scheme",
            "x-host",
            "x-real-ip",
            "true-client-ip",
            "cloudfront-forwarded-proto",
            "x-original-forwarded-for",
            "x-envoy-original-path",
            "x-https",
            "x_forwarded_host",
            "X_Forwarded_Prefix",
            "x-forwarded_proto",
        ];
        for n in names {
            let mut p = parts(&[("host", "h"), (n, "evil")], Some("203.0.113.9:5000"));
            let keyed = admit(&mut p, Scheme::Http, &Forwarding::default());
            assert_eq!(p.headers.len(), 1, "{n} reached the origin");
            assert_eq!(keyed, None, "{n}");
        }
        for n in [
            "accept-language",
            "x-device",
            "x-overrides",
            "cookie",
            "x-fwd",
        ] {
            let mut p = parts(&[("host", "h"), (n, "v")], None);
            admit(&mut p, Scheme::Http, &Forwarding::default());
            assert!(p.headers.contains_key(n), "{n} is not a forwarding header");
        }
    }

    #[test]
    fn trusted_peers_and_the_pass_list_keep_them_keyed() {
        let rules = Forwarding {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            pass: vec![HeaderName::from_static("x-forwarded-prefix")],
        };
        let h = [
            ("host", "h"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.7;proto=https;host=h"),
        ];
        let mut p = parts(&h, Some("10.1.2.3:4000"));
        let keyed = admit(&mut p, Scheme::Http, &rules).unwrap();
        assert_eq!(p.headers.len(), 4);
        assert!(keyed.contains("x-forwarded-proto=\"https\""), "{keyed}");
        assert!(keyed.contains("proto=https;host=h"), "{keyed}");
        assert!(
            !keyed.contains("198.51.100.7"),
            "client addresses are not keyed"
        );
        // The same headers from an untrusted peer are dropped.
        let mut p = parts(&h, Some("192.0.2.1:4000"));
        assert_eq!(admit(&mut p, Scheme::Http, &rules), None);
        assert_eq!(p.headers.len(), 1);
        // The pass-list keeps its header from anyone, keyed.
        let mut p = parts(
            &[("host", "h"), ("x_forwarded_prefix", "/app")],
            Some("192.0.2.1:4000"),
        );
        let keyed = admit(&mut p, Scheme::Http, &rules).unwrap();
        assert!(keyed.contains("/app"), "{keyed}");
    }

    #[test]
    fn connection_cannot_remove_host_and_removes_the_rest_before_keying() {
        let mut p = parts(
            &[
                ("host", "h"),
                (
                    "connection",
                    "host, accept-language, Content-Length, x-device",
                ),
                ("accept-language", "fr"),
                ("x-device", "mobile"),
                ("content-length", "0"),
            ],
            None,
        );
        admit(&mut p, Scheme::Http, &Forwarding::default());
        assert_eq!(p.headers["host"], "h");
        assert_eq!(p.headers["content-length"], "0");
        assert!(!p.headers.contains_key("accept-language"));
        assert!(!p.headers.contains_key("x-device"));
        assert!(!p.headers.contains_key("connection"));
    }

    #[test]
    fn host_is_forwarded_in_its_normal_form() {
        for (raw, scheme, want) in [
            ("SITE.TEST", Scheme::Http, "site.test"),
            ("site.test:80", Scheme::Http, "site.test"),
            ("site.test.", Scheme::Http, "site.test"),
            ("Site.Test.:80", Scheme::Http, "site.test"),
            ("site.test:443", Scheme::Https, "site.test"),
            ("site.test:8080", Scheme::Http, "site.test:8080"),
            ("site.test:443", Scheme::Http, "site.test:443"),
        ] {
            let mut p = parts(&[("host", raw)], None);
            admit(&mut p, scheme, &Forwarding::default());
            assert_eq!(p.headers["host"], want, "{raw}");
        }
    }

    #[test]
    fn mapped_addresses_count_as_ipv4() {
        let nets: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(peer_in(&nets, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!peer_in(&nets, "::1".parse().unwrap()));
    }
}
