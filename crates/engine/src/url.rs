//! The URL's canonical form: scheme, host, path and query encoding.
//!
//! Owns every rule that makes two spellings of one URL the same: host case, trailing dots
//! and default ports, percent-encoding, dot segments, and how a host given in a purge names
//! authorities. Keys ([`crate::key`]), selectors, the purge index and key policies all use it;
//! it imports nothing of the crate, and knows nothing of requests beyond a target's parts.

use http::request::Parts;
use http::Uri;

/// The scheme a resource was requested with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Plain `http`.
    Http,
    /// `https`.
    Https,
}

impl Scheme {
    /// The scheme as it appears in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Parses `http` or `https` (case-insensitive).
    pub fn parse(s: &str) -> Option<Scheme> {
        if s.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else if s.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else {
            None
        }
    }
}

/// Lower-cases a host (with optional port) and drops the scheme's default port.
pub fn normalize_authority(scheme: Scheme, authority: &str) -> String {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default = match scheme {
        Scheme::Http => ":80",
        Scheme::Https => ":443",
    };
    strip_host_noise(authority.to_ascii_lowercase(), &[default])
}

/// Drops trailing dots of the host and the default ports given, in any order, until nothing
/// changes (so normalising twice gives the same as once: `h:443.` and `h..` are `h`).
fn strip_host_noise(mut h: String, default_ports: &[&str]) -> String {
    loop {
        let before = h.len();
        while h.ends_with('.') {
            h.pop();
        }
        for p in default_ports {
            if h.ends_with(p) {
                h.truncate(h.len() - p.len());
            }
        }
        if h.len() == before {
            return h;
        }
    }
}

/// Normalises a request target in place, so the key and the origin see the same URL:
/// percent-encoding made canonical (unreserved characters decoded, hex upper-cased: `%7e`
/// is `~`, `%2e%2e` is `..`) in path and query, then dot segments removed from the path
/// (RFC 3986 sections 6.2.2 and 5.2.4: `/a/../b` is `/b`). Encoded slashes (`%2F`) and
/// repeated slashes are kept: they can mean something else to the origin.
///
/// ```
/// let (mut p, ()) = http::Request::get("/a/%2e%2E/b/./c%7e?x=%7e").body(()).unwrap().into_parts();
/// vanish_engine::url::normalize_target(&mut p);
/// assert_eq!(p.uri, "/b/c~?x=~");
/// ```
pub fn normalize_target(parts: &mut Parts) {
    let Some(pq) = parts.uri.path_and_query() else {
        return;
    };
    let (path, query) = (pq.path(), pq.query());
    let needs = |s: &str| s.contains('%') || !s.bytes().all(|b| b.is_ascii_graphic());
    let dotty = path.contains("/.") || path.starts_with('.');
    if !needs(path) && !dotty && !query.is_some_and(needs) {
        return;
    }
    let path = normalize_path(path);
    let query = query.map(|q| canonical_encoding(&encode_unsafe(q)));
    let pq = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut uri_parts = parts.uri.clone().into_parts();
    if let Ok(pq) = pq.parse() {
        uri_parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(uri_parts) {
            parts.uri = uri;
        }
    }
}

/// A path as [`normalize_target`] leaves it (for purge selectors).
pub fn normalize_path(path: &str) -> String {
    remove_dot_segments(&canonical_encoding(&encode_unsafe(path)))
}

/// Percent-encodes what a browser would before sending (bytes outside printable ASCII), so
/// `/café` and a raw UTF-8 request target both become `/caf%C3%A9`.
pub fn encode_unsafe(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii_graphic()) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// The host name of an authority, without its port (`[::1]:8080` gives `[::1]`).
pub fn hostname(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => &authority[..=i],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => authority,
    }
}

/// True when a host given in a purge (`example.com`: any port; `example.com:8080`: that
/// port) names this key's authority.
pub fn host_matches(selector_host: &str, authority: &str) -> bool {
    if selector_host == authority {
        return true;
    }
    hostname(selector_host) == selector_host && hostname(authority) == selector_host
}

/// Normalises a host given alone (as in a `host` selector): lower case, no trailing dot.
///
/// A port is kept; `:80` and `:443` are dropped since they are default for one scheme each.
pub fn normalize_host(host: &str) -> String {
    strip_host_noise(host.trim().to_ascii_lowercase(), &[":80", ":443"])
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Canonical percent-encoding: `%7e` becomes `~` (unreserved characters are decoded), other
/// escapes get upper-case hex (`%2f` becomes `%2F`), and a `%` that starts no escape becomes
/// `%25` (so a second pass changes nothing: `%%34%31` is `%2541`, never `%41` then `A`).
///
/// ```
/// use vanish_engine::url::canonical_encoding;
/// assert_eq!(canonical_encoding("a%7eb%2fc+d"), "a~b%2Fc+d");
/// ```
pub fn canonical_encoding(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let v = h * 16 + l;
                if unreserved(v) {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push(b[i + 1].to_ascii_uppercase() as char);
                    out.push(b[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        if b[i] == b'%' {
            out.push_str("%25");
            i += 1;
            continue;
        }
        // Copy one UTF-8 character.
        let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// Fully decodes a form component, e.g. a query parameter's name for matching (`+` is a
/// space, `%XX` a byte).
pub fn form_decode(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalised() {
        let cases = [
            ("/a/b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/./b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/../../x", "/x"),
            ("/a/%2e%2e/b", "/b"),
            ("/a/%2E/b", "/a/b"),
            ("/a%2fb/../c", "/c"),
            ("/a%2Fb", "/a%2Fb"),
            ("//double//slash", "//double//slash"),
            ("/%7euser", "/~user"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/p?q=%7e&r=%2f", "/p?q=~&r=%2F"),
            ("/.hidden", "/.hidden"),
            ("/p?x=%%34%31", "/p?x=%2541"),
        ];
        for (input, want) in cases {
            let (mut p, ()) = http::Request::get(input).body(()).unwrap().into_parts();
            normalize_target(&mut p);
            assert_eq!(p.uri.to_string(), want, "{input}");
        }
    }

    #[test]
    fn host_normalisation_is_idempotent() {
        for (input, want) in [
            ("h..", "h"),
            ("h:443.", "h"),
            ("H.:443", "h"),
            ("h:8080.", "h:8080"),
        ] {
            let once = normalize_authority(Scheme::Https, input);
            assert_eq!(once, want, "{input}");
            assert_eq!(normalize_authority(Scheme::Https, &once), once);
            assert_eq!(
                normalize_host(&normalize_host(input)),
                normalize_host(input)
            );
        }
    }

    #[test]
    fn host_matching() {
        assert!(host_matches("h", "h"));
        assert!(host_matches("h", "h:8080"));
        assert!(host_matches("h:8080", "h:8080"));
        assert!(!host_matches("h:8080", "h"));
        assert!(!host_matches("h:8080", "h:9090"));
        assert!(host_matches("[::1]", "[::1]:8080"));
        assert!(!host_matches("h", "hh"));
        assert_eq!(hostname("[::1]:80"), "[::1]");
    }

    #[test]
    fn encoding_edge_cases() {
        assert_eq!(canonical_encoding("%"), "%25");
        assert_eq!(canonical_encoding("%4"), "%254");
        assert_eq!(canonical_encoding("%zz"), "%25zz");
        for s in ["%%34%31", "a%2", "%%%", "%25%", "x%7e%"] {
            let once = canonical_encoding(s);
            assert_eq!(canonical_encoding(&once), once, "{s}");
        }
        assert_eq!(canonical_encoding("%41%e2%82%ac"), "A%E2%82%AC");
        assert_eq!(canonical_encoding("é%20"), "é%20");
    }
}
