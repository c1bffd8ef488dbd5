//! A client's request body with a deadline between its pieces, so a client that trickles a
//! body (or stops sending one) cannot hold an origin connection and a client slot for long.
//!
//! Owns the wrapper only; what a timed-out body is answered (408) is the proxy's business.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a body gives when no piece arrived within the deadline.
#[derive(Debug)]
pub struct BodyTimedOut(pub Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no request body data for {:?}", self.0)
    }
}

impl std::error::Error for BodyTimedOut {}

/// `inner`, failing with [`BodyTimedOut`] when `timeout` passes without a frame.
pub struct SlowBody<B> {
    inner: B,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl<B> SlowBody<B> {
    /// Wraps a body; the first deadline runs from now.
    pub fn new(inner: B, timeout: Duration) -> Self {
        SlowBody {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> Body for SlowBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<vanish_engine::BoxError>,
{
    type Data = Bytes;
    type Error = vanish_engine::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                let next = Instant::now() + self.timeout;
                self.sleep.as_mut().reset(next);
                Poll::Ready(r.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(self.timeout))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
