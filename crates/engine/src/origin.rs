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

/// Fetches responses from the origin for the engine's fills and revalidations.
///
/// The request has no body: the engine only sends `GET`s (a client's `HEAD` is filled with a
/// `GET`). Implementations add forwarding headers and apply connect/response timeouts.
pub trait Origin: Clone + Send + Sync + 'static {
    /// The response body.
    type Body: Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static;

    /// Sends the request.
    fn fetch(
        &self,
        req: Request<()>,
    ) -> impl Future<Output = Result<Response<Self::Body>, OriginError>> + Send;
}
