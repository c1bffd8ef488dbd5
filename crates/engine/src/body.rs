//! The body of a response the engine returns: from memory, from a fill, or passed through.
//!
//! Owns [`CacheBody`] only; who produces which kind is decided in [`crate::cache`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use tokio::sync::mpsc;

/// Boxed error type of bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body produced by the engine.
pub struct CacheBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Result<Bytes, BoxError>>),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl CacheBody {
    /// A body with nothing in it.
    pub fn empty() -> Self {
        CacheBody {
            kind: Kind::Full(None),
        }
    }

    /// A complete body in memory.
    pub fn full(bytes: Bytes) -> Self {
        CacheBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// A body fed by a fill task through a channel.
    pub fn channel(rx: mpsc::Receiver<Result<Bytes, BoxError>>) -> Self {
        CacheBody {
            kind: Kind::Channel(rx),
        }
    }

    /// Any other body, passed through.
    pub fn boxed<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        CacheBody {
            kind: Kind::Boxed(body.map_err(Into::into).boxed_unsync()),
        }
    }
}

impl Body for CacheBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Channel(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
            Kind::Boxed(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Channel(_) => false,
            Kind::Boxed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Channel(_) => SizeHint::default(),
            Kind::Boxed(b) => b.size_hint(),
        }
    }
}

impl std::fmt::Debug for CacheBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            Kind::Full(_) => "full",
            Kind::Channel(_) => "channel",
            Kind::Boxed(_) => "boxed",
        };
        write!(f, "CacheBody({k})")
    }
}
