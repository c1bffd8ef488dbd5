//! The accept loop of one listener, and each connection's watchdog.
//!
//! Owns taking connections off a socket within the listener's slots (`connections.rs`),
//! the handshakes in front of HTTP (the PROXY header, then TLS, both optional), choosing
//! HTTP/1.1 or HTTP/2 (ALPN over TLS, the connection preface otherwise: h2c), the protocol
//! limits (header sizes, streams per connection, HTTP/2 reset floods), and the deadlines:
//! everything before the first request head (PROXY header and TLS handshake included) must
//! arrive within the header read timeout. It also runs graceful shutdown for its
//! connections. What a request does is the handler's business (the proxy or the admin API);
//! the certificates are `tls.rs`'s.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use vanish_engine::CacheBody;

use super::proxy_protocol::{self, Prefixed};
use crate::connections::{Slots, Tracked, Tracker};

/// HTTP/2 streams a client may reset before the server has even accepted them, at once,
/// before the connection is closed with `GOAWAY` (`ENHANCE_YOUR_CALM`): the rapid-reset
/// flood (CVE-2023-44487) costs the server no more than that many streams per connection.
const MAX_PENDING_ACCEPT_RESETS: usize = 20;

/// HTTP/2 streams the server may reset because of the client's errors before it closes the
/// connection (the "made you reset" flood).
const MAX_LOCAL_ERROR_RESETS: usize = 256;

/// How long an HTTP/2 client has to answer a keep-alive ping before its connection is closed.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// One listening socket and what is spoken on it before HTTP.
pub(super) struct Listener {
    /// The socket.
    pub tcp: TcpListener,
    /// TLS, when this is the TLS listener.
    pub tls: Option<TlsAcceptor>,
    /// A PROXY v1/v2 header first on every connection (refused without one).
    pub proxy_protocol: bool,
}

/// Per-listener connection and protocol limits.
#[derive(Clone, Copy)]
pub(super) struct ConnLimits {
    /// Request line plus headers (HTTP/1.1), header list (HTTP/2).
    pub max_header_bytes: usize,
    /// Connections at once.
    pub max_connections: usize,
    /// Free slots below which idle connections are closed to make room.
    pub reserve: usize,
    /// Longest wait for a request head: from accepting for the first one (PROXY header and
    /// TLS handshake included), and (hyper's timer) from the end of each response for the
    /// next one, idle keep-alive included.
    pub header_read_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams: u32,
}

/// The HTTP servers for one listener: any protocol (detected from the first bytes), or the
/// one ALPN chose.
struct Builders {
    auto: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: &ConnLimits) -> Self {
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes)
            .keep_alive(true);
        auto.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_streams)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
            .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS)
            .keep_alive_interval(limits.header_read_timeout)
            .keep_alive_timeout(H2_PING_TIMEOUT);
        Builders {
            http1: auto.clone().http1_only(),
            http2: auto.clone().http2_only(),
            auto,
        }
    }
}

/// Accepts connections until shutdown, then lets requests in flight finish within `grace`.
pub(super) async fn accept_loop<F, Fut>(
    listener: Listener,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
    limits: ConnLimits,
    handler: F,
) where
    F: Fn(hyper::Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<hyper::Response<CacheBody>, std::convert::Infallible>>
        + Send
        + 'static,
{
    let graceful = GracefulShutdown::new();
    let builders = Arc::new(Builders::new(&limits));
    let slots = Slots::new(limits.max_connections, limits.reserve);
    let Listener {
        tcp,
        tls,
        proxy_protocol,
    } = listener;
    loop {
        // At the connection limit, stop accepting (the kernel's backlog holds newcomers);
        // near it, idle connections are closed to make room.
        let slot = tokio::select! {
            s = slots.acquire() => match s {
                Some(s) => s,
                None => break,
            },
            _ = shutdown.changed() => break,
        };
        tokio::select! {
            accepted = tcp.accept() => {
                let (stream, remote) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and similar: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = Conn {
                    builders: builders.clone(),
                    watcher: graceful.watcher(),
                    shutdown: shutdown.clone(),
                    tls: tls.clone(),
                    proxy_protocol,
                    tracker: slot.tracker(),
                };
                let h = handler.clone();
                let first_head = limits.header_read_timeout;
                let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
                let serving = tokio::spawn(async move {
                    if let Err(e) = conn.serve(stream, remote, h).await {
                        tracing::debug!(error = %e, %remote, "connection ended with an error");
                    }
                    drop(done_tx);
                });
                // The connection's watchdog, a task of its own so that serving requests polls
                // nothing else: it closes the connection when no first request head came in
                // time (PROXY header, TLS handshake and protocol detection included; later
                // heads are hyper's to time), or when the slots run low and the connection is
                // idle. It ends with the connection.
                tokio::spawn(async move {
                    let stop = serving.abort_handle();
                    let first_deadline = tokio::time::sleep(first_head);
                    tokio::pin!(first_deadline, done_rx);
                    let mut first_pending = true;
                    loop {
                        tokio::select! {
                            _ = &mut done_rx => break,
                            _ = &mut first_deadline, if first_pending => {
                                if !slot.has_had_a_request() {
                                    tracing::debug!(%remote, "no request within the header read timeout; closed");
                                    stop.abort();
                                    break;
                                }
                                first_pending = false;
                            }
                            _ = slot.evicted() => {
                                if slot.is_idle() {
                                    stop.abort();
                                    break;
                                }
                            }
                        }
                    }
                    drop(slot);
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(tcp);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What one accepted connection needs from its listener.
struct Conn {
    builders: Arc<Builders>,
    watcher: Watcher,
    shutdown: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
    proxy_protocol: bool,
    tracker: Tracker,
}

impl Conn {
    /// The handshakes, then HTTP until the connection ends.
    async fn serve<F, Fut>(
        mut self,
        stream: TcpStream,
        socket_remote: SocketAddr,
        handler: F,
    ) -> Result<(), BoxError>
    where
        F: Fn(hyper::Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<hyper::Response<CacheBody>, std::convert::Infallible>>
            + Send
            + 'static,
    {
        let mut shutdown = self.shutdown.clone();
        // Before HTTP starts a connection has nothing in flight: shutdown just drops it.
        let ready = tokio::select! {
            r = self.handshakes(stream, socket_remote) => r?,
            _ = shutdown.changed() => return Ok(()),
        };
        let (io, remote, alpn) = ready;
        let tracker = self.tracker.clone();
        let svc = service_fn(move |req| {
            let busy = tracker.start();
            let res = handler(req, remote);
            async move {
                let res = res.await?;
                Ok::<_, std::convert::Infallible>(res.map(|b| Tracked::new(b, busy)))
            }
        });
        let builder = match alpn {
            Some(Alpn::Http2) => &self.builders.http2,
            Some(Alpn::Http1) => &self.builders.http1,
            None => &self.builders.auto,
        };
        self.watcher
            .watch(builder.serve_connection(TokioIo::new(io), svc))
            .await
    }

    /// The PROXY header (when the listener expects one) and the TLS handshake (on the TLS
    /// listener): the stream HTTP is spoken on, the client's address, and what ALPN chose.
    async fn handshakes(
        &mut self,
        stream: TcpStream,
        socket_remote: SocketAddr,
    ) -> Result<(Box<dyn Io>, SocketAddr, Option<Alpn>), BoxError> {
        let (io, remote) = match self.proxy_protocol {
            true => match proxy_protocol::read_header(stream).await {
                Ok((io, client)) => (io, client.unwrap_or(socket_remote)),
                Err(e) => {
                    metrics::counter!("vanish_handshake_failures_total", "kind" => "proxy_protocol")
                        .increment(1);
                    tracing::debug!(error = %e, %socket_remote, "no valid PROXY header; closed");
                    return Err(e.into());
                }
            },
            false => (Prefixed::new(Vec::new(), stream), socket_remote),
        };
        let Some(acceptor) = &self.tls else {
            return Ok((Box::new(io), remote, None));
        };
        let tls = match acceptor.accept(io).await {
            Ok(t) => t,
            Err(e) => {
                metrics::counter!("vanish_handshake_failures_total", "kind" => "tls").increment(1);
                tracing::debug!(error = %e, %remote, "TLS handshake failed");
                return Err(e.into());
            }
        };
        let alpn = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => Some(Alpn::Http2),
            Some(b"http/1.1") => Some(Alpn::Http1),
            _ => None,
        };
        Ok((Box::new(tls), remote, alpn))
    }
}

/// The protocol ALPN settled on.
enum Alpn {
    Http1,
    Http2,
}

/// A client connection after its handshakes (plain, after a PROXY header, or TLS).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
