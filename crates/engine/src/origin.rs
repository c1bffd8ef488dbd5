//! The origin as the engine sees it: something that answers a bodiless request.
//!
//! Owns the [`Origin`] trait and [`OriginError`]. How the request travels (hyper client,
//! pooling, `Via`, `X-Forwarded-For`, timeouts to first byte) is the front end's business.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;

use crate::body::BoxError;

/// Why the origin gave no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginError {
    /// Could not connect, or the connection failed before a response (answered 502).
    Unreachable(String),
    /// No response in time (answered 504).
    Timeout,
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginError::Unreachable(m) => write!(f, "origin unreachable: {m}"),
            OriginError::Timeout => f.write_str("origin timed out"),
        }
    }
}

impl std::error::Error for OriginError {}

/// Refuses an origin response whose framing is ambiguous or that the cache cannot read
/// (RFC 9112 section 6.3): `Transfer-Encoding` together with `Content-Length`, a transfer
/// coding other than `chunked`, or `Content-Length` values that disagree. Such a response is
/// answered `502` and never stored, as nginx does: relaying it would let the client read a
/// different number of bytes than were sent (response splitting), or store a truncated or
/// still-encoded body as complete.
///
/// ```
/// use vanish_engine::origin::check_framing;
/// let ok = http::Response::builder().header("content-length", "3").body(()).unwrap();
/// assert!(check_framing(ok).is_ok());
/// let both = http::Response::builder()
///     .header("transfer-encoding", "chunked").header("content-length", "10").body(()).unwrap();
/// assert!(check_framing(both).is_err());
/// ```
pub fn check_framing<B>(res: Response<B>) -> Result<Response<B>, OriginError> {
    let h = res.headers();
    let mut codings = h
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|c| c.trim_ascii())
        .filter(|c| !c.is_empty())
        .peekable();
    let refuse = |why: &str| {
        Err(OriginError::Unreachable(format!(
            "invalid response framing: {why}"
        )))
    };
    if codings.peek().is_some() {
        if h.contains_key(http::header::CONTENT_LENGTH) {
            return refuse("both Transfer-Encoding and Content-Length");
        }
        if !codings.all(|c| c.eq_ignore_ascii_case(b"chunked")) {
            return refuse("a transfer coding other than chunked");
        }
        return Ok(res);
    }
    let mut lengths = h.get_all(http::header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        if lengths.any(|v| v != first) {
            return refuse("Content-Length values that disagree");
        }
    }
    Ok(res)
}

/// Fetches responses from the origin for the engine's fills and revalidations.
///
/// The request has no body: the engine sends `GET`s (a client's `HEAD` is filled with a
/// `GET`), and a `HEAD` when a client's `HEAD` revalidates a stored response.
/// Implementations add forwarding headers and apply connect/response timeouts.
pub trait Origin: Clone + Send + Sync + 'static {
    /// The response body.
    type Body: Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static;

    /// Sends the request.
    fn fetch(
        &self,
        req: Request<()>,
    ) -> impl Future<Output = Result<Response<Self::Body>, OriginError>> + Send;
}
