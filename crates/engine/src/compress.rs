//! Compression at store time (`[cache] compress`): which identity responses are compressed,
//! and the compressing itself.
//!
//! Owns the settings ([`Compression`]), the rule for which responses they apply to (their
//! type, size and `Cache-Control: no-transform`), and [`encode`]. A body is compressed once,
//! when its object is stored, so hits never compress. It stores nothing and decides nothing
//! about variants (the admission stage does).

use std::io::Write;

use bytes::Bytes;
use http::{header, HeaderMap};

use crate::coding::{Accepted, Coding};
use crate::directives::Directives;

/// Compression of identity responses at store time.
///
/// ```
/// use vanish_engine::compress::Compression;
/// let c = Compression { enabled: true, ..Compression::default() };
/// let mut h = http::HeaderMap::new();
/// h.insert("content-type", "Text/HTML; charset=utf-8".parse().unwrap());
/// assert!(c.applies(&h));
/// h.insert("cache-control", "max-age=60, no-transform".parse().unwrap());
/// assert!(!c.applies(&h), "no-transform");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    /// Compress at all (`[cache] compress`, off by default).
    pub enabled: bool,
    /// The media types compressed, lower-case (`type/subtype`, or `type/*`).
    pub types: Vec<String>,
    /// Bodies smaller than this stay identity (`[cache] compress_min_size`, 1 KiB).
    pub min_size: usize,
    /// The coding stored (`[cache] compress_encoding`: `gzip`, the default, or `br`) when
    /// the client whose request filled it accepts it ([`Compression::encoding_for`]).
    pub encoding: Coding,
}

/// The media types compressed by default: text formats a page is made of.
pub const DEFAULT_TYPES: [&str; 10] = [
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/xml",
    "text/xml",
    "image/svg+xml",
    "application/manifest+json",
];

impl Default for Compression {
    fn default() -> Self {
        Compression {
            enabled: false,
            types: DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            min_size: 1024,
            encoding: Coding::Gzip,
        }
    }
}

impl Compression {
    /// True when a response with these headers is compressed at store time (if its body is
    /// at least [`Compression::min_size`]): compression is on, the body is identity, its type
    /// is listed and `Cache-Control` does not say `no-transform` (RFC 9111 section 5.2.2.6).
    pub fn applies(&self, headers: &HeaderMap) -> bool {
        if !self.enabled || Coding::of_response(headers) != Some(Coding::Identity) {
            return false;
        }
        let Some(ty) = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(media_type)
        else {
            return false;
        };
        if !self.types.iter().any(|t| type_matches(t, &ty)) {
            return false;
        }
        let cc = Directives::parse(
            headers
                .get_all(header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        !cc.has("no-transform")
    }

    /// The coding a body filled for a client that accepts `accepted` is stored in: the
    /// configured one when the client accepts it, else the other one it accepts (`gzip`
    /// first), else (an identity client, served decoded) the configured one. A client is
    /// never made to miss forever on an object stored for it in a coding it refuses.
    ///
    /// ```
    /// use vanish_engine::{coding::{Accepted, Coding}, compress::Compression};
    /// let br = Compression { encoding: Coding::Br, ..Compression::default() };
    /// assert_eq!(br.encoding_for(&Accepted::parse("gzip, br")), Coding::Br);
    /// assert_eq!(br.encoding_for(&Accepted::parse("gzip")), Coding::Gzip);
    /// assert_eq!(br.encoding_for(&Accepted::parse("")), Coding::Br);
    /// ```
    pub fn encoding_for(&self, accepted: &Accepted) -> Coding {
        [self.encoding, Coding::Gzip, Coding::Br]
            .into_iter()
            .find(|&c| c != Coding::Identity && accepted.accepts(c))
            .unwrap_or(self.encoding)
    }

    /// True when a body of `len` bytes is large enough to compress.
    pub fn large_enough(&self, len: usize) -> bool {
        len >= self.min_size
    }
}

/// The media type of a `Content-Type` value, lower-case, without parameters.
fn media_type(value: &str) -> Option<String> {
    let t = value.split(';').next()?.trim_matches([' ', '\t']);
    let (ty, sub) = t.split_once('/')?;
    (!ty.is_empty() && !sub.is_empty()).then(|| t.to_ascii_lowercase())
}

fn type_matches(pattern: &str, ty: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(top) => ty.split('/').next() == Some(top),
        None => pattern == ty,
    }
}

/// Checks one `compress_types` entry: `type/subtype` or `type/*`, in token characters;
/// returns it lower-case.
///
/// ```
/// use vanish_engine::compress::parse_type;
/// assert_eq!(parse_type("Text/HTML").unwrap(), "text/html");
/// assert_eq!(parse_type("text/*").unwrap(), "text/*");
/// assert!(parse_type("html").is_err());
/// ```
pub fn parse_type(s: &str) -> Result<String, String> {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match s.split_once('/') {
        Some((ty, sub)) if token(ty) && (token(sub) || sub == "*") => Ok(s.to_ascii_lowercase()),
        _ => Err(format!(
            "{s:?} is not a media type (expected type/subtype, e.g. \"text/html\", or type/*)"
        )),
    }
}

/// `body` compressed in `coding` (gzip at level 6, zlib's default; Brotli at quality 6 with
/// a 4 MiB window: a fraction of quality 11's cost for most of its gain, paid once per
/// store). Identity returns the body as it is.
///
/// ```
/// use vanish_engine::{coding::Coding, compress::encode};
/// let page = "<p>hello</p>".repeat(100);
/// let gz = encode(page.as_bytes(), Coding::Gzip).unwrap();
/// assert!(gz.len() < page.len() / 10);
/// ```
pub fn encode(body: &[u8], coding: Coding) -> std::io::Result<Bytes> {
    match coding {
        Coding::Identity => Ok(Bytes::copy_from_slice(body)),
        Coding::Gzip => {
            let out = Vec::with_capacity(body.len() / 4 + 64);
            let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
            e.write_all(body)?;
            Ok(exact(e.finish()?))
        }
        Coding::Br => {
            let mut out = Vec::with_capacity(body.len() / 4 + 64);
            {
                let mut e = brotli::CompressorWriter::new(&mut out, 16 * 1024, 6, 22);
                e.write_all(body)?;
                e.flush()?;
            }
            Ok(exact(out))
        }
    }
}

/// A stored body holds no slack: what the store's weigher counts is what it holds.
fn exact(v: Vec<u8>) -> Bytes {
    if v.capacity() > v.len() + v.len() / 8 + 64 {
        Bytes::copy_from_slice(&v)
    } else {
        Bytes::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        crate::headers::from_pairs(pairs)
    }

    #[test]
    fn which_responses_are_compressed() {
        let on = Compression {
            enabled: true,
            ..Compression::default()
        };
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("content-type", "text/html")], true),
            (&[("content-type", "application/json; charset=utf-8")], true),
            (&[("content-type", "IMAGE/SVG+XML")], true),
            (&[("content-type", "image/png")], false),
            (&[], false),
            (
                &[("content-type", "text/html"), ("content-encoding", "gzip")],
                false,
            ),
            (
                &[
                    ("content-type", "text/html"),
                    ("content-encoding", "identity"),
                ],
                true,
            ),
            (
                &[
                    ("content-type", "text/css"),
                    ("cache-control", "No-Transform"),
                ],
                false,
            ),
        ];
        for (h, want) in cases {
            assert_eq!(on.applies(&headers(h)), *want, "{h:?}");
        }
        assert!(!Compression::default().applies(&headers(&[("content-type", "text/html")])));
        let wild = Compression {
            enabled: true,
            types: vec!["text/*".into()],
            ..Compression::default()
        };
        assert!(wild.applies(&headers(&[("content-type", "text/x-anything")])));
        assert!(!wild.applies(&headers(&[("content-type", "application/json")])));
    }

    #[test]
    fn encodings_round_trip() {
        use std::io::Read;
        let page = "<li>item</li>\n".repeat(500);
        let gz = encode(page.as_bytes(), Coding::Gzip).unwrap();
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, page);
        let br = encode(page.as_bytes(), Coding::Br).unwrap();
        let mut back = String::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, page);
    }
}
