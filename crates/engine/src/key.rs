//! The resource key: which page a request names.
//!
//! Owns the [`ResourceKey`] that objects are stored and indexed under, built from a
//! request's or a URL's parts in their canonical form ([`crate::url`]). It knows nothing of
//! variants (see [`crate::variant`]) or of storage.

use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::Uri;

use crate::url::normalize_authority;
pub use crate::url::Scheme;

/// Why a URL or request cannot name a cacheable resource (a request is answered `400`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The request has no `Host` header and no authority in its target.
    NoHost,
    /// The `Host` header is not visible ASCII.
    HostNotAscii,
    /// The `Host` header is empty.
    EmptyHost,
    /// The `Host` header is not a `host[:port]` (it holds a path, a query, user info...).
    InvalidHost(String),
    /// The `Host` header names no host once normalised (e.g. `..`).
    HostNamesNothing(String),
    /// The URL does not parse.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// The URL's scheme is not `http` or `https` (or it is relative).
    NotHttp(String),
    /// The URL has no host.
    UrlWithoutHost(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NoHost => f.write_str("request has no Host header"),
            KeyError::HostNotAscii => f.write_str("Host header is not visible ASCII"),
            KeyError::EmptyHost => f.write_str("request has an empty Host header"),
            KeyError::InvalidHost(h) => write!(f, "Host {h:?} is not a valid host[:port]"),
            KeyError::HostNamesNothing(h) => write!(f, "Host {h:?} names no host"),
            KeyError::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            KeyError::NotHttp(u) => write!(f, "URL {u:?} must start with http:// or https://"),
            KeyError::UrlWithoutHost(u) => write!(f, "URL {u:?} has no host"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The primary key of a cached resource (all its variants share it).
///
/// The host is lower-cased and a default port (80 for `http`, 443 for `https`) is dropped,
/// so `http://Example.COM:80/a` and `http://example.com/a` are the same resource. The scheme is
/// recorded but purges by URL match every scheme (see [`crate::purge`]).
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
                .ok_or(KeyError::NoHost)?
                .to_str()
                .map_err(|_| KeyError::HostNotAscii)?
                .to_owned(),
        };
        if authority.is_empty() {
            return Err(KeyError::EmptyHost);
        }
        if authority.parse::<http::uri::Authority>().is_err()
            || authority.contains(['/', '?', '#', '@'])
        {
            return Err(KeyError::InvalidHost(authority));
        }
        let key = Self::new(scheme, &authority, parts.uri.path(), parts.uri.query());
        if key.host().is_empty() {
            return Err(KeyError::HostNamesNothing(authority));
        }
        Ok(key)
    }

    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse_url(url: &str) -> Result<Self, KeyError> {
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| KeyError::InvalidUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let scheme = uri
            .scheme_str()
            .and_then(Scheme::parse)
            .ok_or_else(|| KeyError::NotHttp(url.to_owned()))?;
        let authority = uri
            .authority()
            .ok_or_else(|| KeyError::UrlWithoutHost(url.to_owned()))?;
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
