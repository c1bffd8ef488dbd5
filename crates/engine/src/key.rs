//! The resource key: which page a request names.
//!
//! Owns the normalisation of a request's scheme, authority, path and query into the
//! [`ResourceKey`] that objects are stored and indexed under. It knows nothing of
//! variants (see [`crate::variant`]) or of storage.

use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::Uri;

/// Error raised when a URL or request cannot name a cacheable resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// The primary key of a cached resource (all its variants share it).
///
/// The host is lower-cased and a default port (80 for `http`, 443 for `https`) is dropped,
/// so `http://Example.COM:80/a` and `http://example.com/a` are the same resource. The scheme is
/// recorded but purges by URL match every scheme (see design.md section 2).
///
/// ```
/// use vanish_engine::ResourceKey;
/// let k = ResourceKey::parse_url("http://Example.com:80/a?b=1").unwrap();
/// assert_eq!(k.host(), "example.com");
/// assert_eq!(k.path(), "/a");
/// assert_eq!(k.query(), Some("b=1"));
/// ```
#[derive(Clone)]
pub struct ResourceKey {
    inner: Arc<KeyParts>,
}

/// The key's fields, and their hash computed once (keys are hashed and compared on every
/// lookup; a hit compares the cached hashes before any string).
struct KeyParts {
    hash: u64,
    fields: Fields,
}

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Fields {
    host: Box<str>,
    path: Box<str>,
    query: Option<Box<str>>,
    scheme: Scheme,
    /// Request headers or cookies a key policy added to the key (`name=value` pairs).
    extra: Option<Box<str>>,
}

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

impl PartialEq for ResourceKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.hash == other.inner.hash && self.inner.fields == other.inner.fields)
    }
}

impl Eq for ResourceKey {}

impl std::hash::Hash for ResourceKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.inner.hash);
    }
}

impl PartialOrd for ResourceKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ResourceKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.inner.fields.cmp(&other.inner.fields)
    }
}

impl KeyParts {
    fn new(fields: Fields) -> Self {
        // A per-process random SipHash key: URLs chosen to collide cannot be computed ahead.
        static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
            std::sync::OnceLock::new();
        let hash = std::hash::BuildHasher::hash_one(STATE.get_or_init(Default::default), &fields);
        KeyParts { hash, fields }
    }
}

impl ResourceKey {
    /// Builds a key from already-split parts, normalising the host.
    pub fn new(scheme: Scheme, authority: &str, path: &str, query: Option<&str>) -> Self {
        let path = if path.is_empty() { "/" } else { path };
        ResourceKey {
            inner: Arc::new(KeyParts::new(Fields {
                host: normalize_authority(scheme, authority).into_boxed_str(),
                path: path.into(),
                query: query.map(Into::into),
                scheme,
                extra: None,
            })),
        }
    }

    /// The same key with request headers or cookies added by a key policy. Purges by URL
    /// match every such partition of a URL, as they match every variant.
    pub fn with_extra(self, extra: Option<String>) -> Self {
        let Some(extra) = extra else { return self };
        let p = &self.inner.fields;
        ResourceKey {
            inner: Arc::new(KeyParts::new(Fields {
                host: p.host.clone(),
                path: p.path.clone(),
                query: p.query.clone(),
                scheme: p.scheme,
                extra: Some(extra.into_boxed_str()),
            })),
        }
    }

    /// The headers or cookies a key policy added to the key, if any.
    pub fn extra(&self) -> Option<&str> {
        self.inner.fields.extra.as_deref()
    }

    /// Builds the key for a request received by a cache whose clients speak `scheme`.
    ///
    /// The authority comes from the request target when it is in absolute form, else from `Host`.
    pub fn from_request(parts: &Parts, scheme: Scheme) -> Result<Self, KeyError> {
        let authority = match parts.uri.authority() {
            Some(a) => a.as_str().to_owned(),
            None => parts
                .headers
                .get(http::header::HOST)
                .ok_or_else(|| KeyError("request has no Host header".into()))?
                .to_str()
                .map_err(|_| KeyError("Host header is not visible ASCII".into()))?
                .to_owned(),
        };
        if authority.is_empty() {
            return Err(KeyError("request has an empty Host header".into()));
        }
        if authority.parse::<http::uri::Authority>().is_err()
            || authority.contains(['/', '?', '#', '@'])
        {
            return Err(KeyError(format!(
                "Host {authority:?} is not a valid host[:port]"
            )));
        }
        let key = Self::new(scheme, &authority, parts.uri.path(), parts.uri.query());
        if key.host().is_empty() {
            return Err(KeyError(format!("Host {authority:?} names no host")));
        }
        Ok(key)
    }

    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse_url(url: &str) -> Result<Self, KeyError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| KeyError(format!("invalid URL {url:?}: {e}")))?;
        let scheme = uri
            .scheme_str()
            .and_then(Scheme::parse)
            .ok_or_else(|| KeyError(format!("URL {url:?} must start with http:// or https://")))?;
        let authority = uri
            .authority()
            .ok_or_else(|| KeyError(format!("URL {url:?} has no host")))?;
        Ok(Self::new(
            scheme,
            authority.as_str(),
            uri.path(),
            uri.query(),
        ))
    }

    /// Lower-cased host, with the port when it is not the scheme's default.
    pub fn host(&self) -> &str {
        &self.inner.fields.host
    }

    /// The path, starting with `/`.
    pub fn path(&self) -> &str {
        &self.inner.fields.path
    }

    /// The query string without `?`, if the URL had one.
    pub fn query(&self) -> Option<&str> {
        self.inner.fields.query.as_deref()
    }

    /// The scheme the resource was requested with.
    pub fn scheme(&self) -> Scheme {
        self.inner.fields.scheme
    }

    /// Path and query as they appear in a request line.
    pub fn path_and_query(&self) -> String {
        match self.query() {
            Some(q) => format!("{}?{}", self.path(), q),
            None => self.path().to_owned(),
        }
    }

    /// Approximate heap bytes this key holds (used to weigh objects).
    pub fn heap_size(&self) -> usize {
        let f = &self.inner.fields;
        f.host.len()
            + f.path.len()
            + f.query.as_ref().map_or(0, |q| q.len())
            + f.extra.as_ref().map_or(0, |q| q.len())
            + 56
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme().as_str(),
            self.host(),
            self.path()
        )?;
        if let Some(q) = self.query() {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.extra() {
            Some(e) => write!(f, "ResourceKey({self} + {e})"),
            None => write!(f, "ResourceKey({self})"),
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
/// vanish_engine::key::normalize_target(&mut p);
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
    let query = query.map(|q| crate::policy::query::canonical_encoding(&encode_unsafe(q)));
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
    remove_dot_segments(&crate::policy::query::canonical_encoding(&encode_unsafe(
        path,
    )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_normalised() {
        let cases = [
            ("http://EXAMPLE.com/", "example.com"),
            ("http://example.com:80/", "example.com"),
            ("https://example.com:443/", "example.com"),
            ("http://example.com:443/", "example.com:443"),
            ("http://example.com:8080/", "example.com:8080"),
            ("http://example.com./", "example.com"),
        ];
        for (url, host) in cases {
            assert_eq!(ResourceKey::parse_url(url).unwrap().host(), host, "{url}");
        }
    }

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
    fn hosts_that_are_not_authorities_are_refused() {
        for bad in ["evil.test/x?y=", "a@b", "..", "a b"] {
            let (parts, ()) = http::Request::get("/z")
                .header("host", bad)
                .body(())
                .unwrap()
                .into_parts();
            assert!(
                ResourceKey::from_request(&parts, Scheme::Http).is_err(),
                "{bad}"
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
    fn empty_path_is_slash_and_query_kept_verbatim() {
        let k = ResourceKey::parse_url("http://h?b=2&a=1").unwrap();
        assert_eq!(k.path(), "/");
        assert_eq!(k.query(), Some("b=2&a=1"));
        assert_eq!(k.to_string(), "http://h/?b=2&a=1");
    }

    #[test]
    fn bad_urls_are_errors() {
        for bad in ["/relative", "ftp://h/", "http://", "not a url"] {
            assert!(ResourceKey::parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_from_requests_use_host_header() {
        let req = http::Request::get("/x?y=1")
            .header("host", "Site.Example:80")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        let k = ResourceKey::from_request(&parts, Scheme::Http).unwrap();
        assert_eq!(k.to_string(), "http://site.example/x?y=1");
        let (parts, _) = http::Request::get("/x").body(()).unwrap().into_parts();
        assert!(ResourceKey::from_request(&parts, Scheme::Http).is_err());
    }
}
