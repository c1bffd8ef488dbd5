//! Client connection slots: how many connections a listener holds, which of them are idle, and
//! which go first when the slots run out.
//!
//! Owns the slot count and a table of open connections, each with the number of requests it
//! has in progress (a request counts until its response body is sent). When accepting leaves
//! no more than the reserve free, the oldest connections doing nothing (never sent a request
//! head yet, reading one slowly, or idle between keep-alive requests) are closed, so idle or
//! slow clients cannot hold every slot. It does not read or write sockets itself.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The slots of one listener.
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    reserve: usize,
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<ConnState>>>,
}

/// How long a new connection may take to send its first request before it counts as idle
/// (its request may already be in the socket, not yet parsed).
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// How often a listener waiting for a slot looks again for idle connections to close.
const RECHECK: Duration = Duration::from_millis(250);

/// One open connection, as the slot table sees it.
pub(crate) struct ConnState {
    /// When it was accepted.
    opened: Instant,
    /// Requests in progress (until their response bodies end).
    busy: AtomicUsize,
    /// Requests seen so far.
    requests: AtomicUsize,
    /// Told to close (evicted).
    close: Notify,
}

/// A connection's place in the table; dropping it frees the slot.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    state: Arc<ConnState>,
    _permit: OwnedSemaphorePermit,
}

impl Slots {
    /// `max` connections at once; when no more than `reserve` slots are free, idle ones are
    /// closed to make room.
    pub(crate) fn new(max: usize, reserve: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Slots {
            semaphore: Arc::new(Semaphore::new(max)),
            reserve: reserve.min(max - 1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
        })
    }

    /// Waits for a free slot (closing idle connections when few are left, and again while it
    /// waits), or `None` once the semaphore is closed.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Option<Slot> {
        let mut counted = false;
        let permit = loop {
            let free = self.semaphore.available_permits();
            if free <= self.reserve {
                self.evict_idle(self.reserve + 1 - free);
            }
            match self.semaphore.clone().try_acquire_owned() {
                Ok(p) => break p,
                Err(tokio::sync::TryAcquireError::Closed) => return None,
                Err(tokio::sync::TryAcquireError::NoPermits) => {}
            }
            if !counted {
                counted = true;
                metrics::counter!("vanish_limit_hits_total", "limit" => "client_connections")
                    .increment(1);
            }
            tokio::select! {
                p = self.semaphore.clone().acquire_owned() => break p.ok()?,
                _ = tokio::time::sleep(RECHECK) => {}
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            opened: Instant::now(),
            busy: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            close: Notify::new(),
        });
        self.lock().insert(id, state.clone());
        Some(Slot {
            slots: self.clone(),
            id,
            state,
            _permit: permit,
        })
    }

    /// Closes up to `n` idle connections, oldest first: no request in progress, and either
    /// idle after a request (keep-alive) or without one for [`FIRST_REQUEST_GRACE`].
    fn evict_idle(&self, n: usize) {
        let open = self.lock();
        let mut closed = 0;
        for state in open.values() {
            if closed == n {
                break;
            }
            let idle = state.busy.load(Ordering::Acquire) == 0
                && (state.requests.load(Ordering::Acquire) > 0
                    || state.opened.elapsed() >= FIRST_REQUEST_GRACE);
            if idle {
                state.close.notify_one();
                closed += 1;
            }
        }
        if closed > 0 {
            metrics::counter!("vanish_idle_connections_closed_total").increment(closed as u64);
            tracing::debug!(
                closed,
                "connection slots nearly full: closed idle connections"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnState>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.id);
    }
}

impl Slot {
    /// Resolves when the connection must close to free its slot.
    pub(crate) fn evicted(&self) -> impl std::future::Future<Output = ()> + 'static {
        let state = self.state.clone();
        async move { state.close.notified().await }
    }

    /// True while no request is in progress on this connection.
    pub(crate) fn is_idle(&self) -> bool {
        self.state.busy.load(Ordering::Acquire) == 0
    }

    /// Whether any request has arrived on this connection.
    pub(crate) fn has_had_a_request(&self) -> bool {
        self.state.requests.load(Ordering::Acquire) > 0
    }

    /// A handle that marks the connection busy while a request is in progress.
    pub(crate) fn tracker(&self) -> Tracker {
        Tracker(self.state.clone())
    }
}

/// Marks requests of one connection in progress.
#[derive(Clone)]
pub(crate) struct Tracker(Arc<ConnState>);

impl Tracker {
    /// A request has started: busy until the returned guard is dropped (with its response body).
    pub(crate) fn start(&self) -> Busy {
        self.0.requests.fetch_add(1, Ordering::AcqRel);
        self.0.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.0.clone())
    }
}

/// A request in progress.
pub(crate) struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress until it ends or is dropped.
pub(crate) struct Tracked<B> {
    inner: B,
    busy: Option<Busy>,
}

impl<B> Tracked<B> {
    pub(crate) fn new(inner: B, busy: Busy) -> Self {
        Tracked {
            inner,
            busy: Some(busy),
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed_first_when_slots_run_low() {
        let slots = Slots::new(3, 1);
        let idle = slots.acquire().await.unwrap();
        let busy = slots.acquire().await.unwrap();
        let _request = busy.tracker().start();
        // A connection that just arrived may still be sending its first request.
        slots.evict_idle(1);
        assert!(
            tokio::time::timeout(Duration::from_millis(1), idle.evicted())
                .await
                .is_err(),
            "a new connection was closed before its grace"
        );
        // Once idle past the grace (keep-alive idle after a request counts at once)...
        let finished = idle.tracker().start();
        drop(finished);
        // Two of three taken, one free = the reserve: the next accept closes the idle one.
        let third = slots.acquire().await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), idle.evicted())
            .await
            .expect("the idle connection was told to close");
        assert!(busy.has_had_a_request() && !busy.is_idle());
        assert!(idle.is_idle());
        drop(idle);
        drop(third);
        assert_eq!(slots.lock().len(), 1);
    }
}
