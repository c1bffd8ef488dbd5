//! Starting and stopping Vanish: listeners, connection handling, graceful shutdown.
//!
//! Owns the sockets and the tasks behind them. What a request does is the proxy's and the
//! admin API's business.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vanish_engine::{Cache, CacheBody, Store};
use vanish_memory::MemoryStore;

use crate::admin::auth::Auth;
use crate::admin::browser::BrowserGuard;
use crate::admin::Admin;
use crate::config::Settings;
use crate::connections::{Slots, Tracked};
use crate::proxy::upstream::Upstream;
use crate::proxy::Proxy;
use crate::telemetry;

/// A running Vanish: its addresses, its cache, and a way to stop it.
pub struct Running<S = MemoryStore> {
    /// Where the proxy listens.
    pub proxy_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The engine (tests and embedding use it directly).
    pub cache: Cache<S>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl<S> Running<S> {
    /// Stops accepting, lets requests in flight finish (up to the grace period), and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds both listeners and starts serving, with the embedded memory store.
pub async fn start(settings: Settings) -> std::io::Result<Running> {
    let store =
        MemoryStore::with_max_variants(settings.memory_capacity, settings.limits.max_variants);
    start_with_store(settings, store).await
}

/// Connects to Redis (`[store] kind = "redis"`) and starts serving over it.
pub async fn start_redis(
    settings: Settings,
    redis: vanish_redis::RedisConfig,
) -> std::io::Result<Running<vanish_redis::RedisStore>> {
    let store = vanish_redis::RedisStore::connect(redis)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    start_with_store(settings, store).await
}

/// Binds both listeners and starts serving over any store.
pub async fn start_with_store<S: Store + Clone>(
    settings: Settings,
    store: S,
) -> std::io::Result<Running<S>> {
    let proxy_listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| with_context(e, "proxy", settings.listen))?;
    let admin_listener = TcpListener::bind(settings.admin.listen)
        .await
        .map_err(|e| with_context(e, "admin", settings.admin.listen))?;
    let proxy_addr = proxy_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let cache = Cache::with_policy(
        store.clone(),
        settings.cache.clone(),
        settings.policy.clone(),
    );
    let admin = Arc::new(Admin {
        cache: cache.clone(),
        auth: Auth::new(&settings.admin.tokens, &settings.admin.allow),
        browser: BrowserGuard::new(&settings.admin.hosts, &settings.admin.allow_origins),
        redact: settings.admin.redact.clone(),
        metrics: telemetry::prometheus(),
        max_body: settings.limits.max_admin_body,
        max_selectors: settings.limits.max_selectors,
    });
    let upstream = Upstream::new(
        &settings.upstream,
        settings.connect_timeout,
        settings.response_timeout,
        settings.limits.max_origin_connections,
        settings.cache.scheme,
        settings.upstream_tls.as_ref(),
    );
    let proxy = Arc::new(Proxy {
        cache: cache.clone(),
        upstream,
        max_url_bytes: settings.limits.max_url_bytes,
        body_read_timeout: settings.limits.body_read_timeout,
        purge: settings.purge_on_proxy.then(|| admin.clone()),
    });
    let (tx, rx) = watch::channel(false);
    let grace = settings.shutdown_grace;
    let p = proxy.clone();
    let limits = ConnLimits {
        max_header_bytes: settings.limits.max_header_bytes,
        max_connections: settings.limits.max_client_connections,
        reserve: settings.limits.connection_reserve,
        header_read_timeout: settings.limits.header_read_timeout,
    };
    let t1 = tokio::spawn(accept_loop(
        proxy_listener,
        rx.clone(),
        grace,
        limits,
        move |req, remote| {
            let p = p.clone();
            async move { p.handle(req, remote).await }
        },
    ));
    let a = admin.clone();
    let t2 = tokio::spawn(accept_loop(
        admin_listener,
        rx,
        grace,
        ConnLimits {
            max_connections: 1024,
            reserve: 64,
            ..limits
        },
        move |req, remote| {
            let a = a.clone();
            async move { a.handle(req, remote).await }
        },
    ));
    tracing::info!(%proxy_addr, %admin_addr, upstream = %settings.upstream, capacity = settings.memory_capacity, "vanish started");
    Ok(Running {
        proxy_addr,
        admin_addr,
        cache,
        shutdown: tx,
        tasks: vec![t1, t2],
    })
}

fn with_context(e: std::io::Error, what: &str, addr: SocketAddr) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
}

/// Per-listener connection limits.
#[derive(Clone, Copy)]
struct ConnLimits {
    max_header_bytes: usize,
    max_connections: usize,
    /// Free slots below which idle connections are closed to make room.
    reserve: usize,
    /// Longest wait for a request head: from accepting for the first one, and (hyper's
    /// timer) from the end of each response for the next one, idle keep-alive included.
    header_read_timeout: Duration,
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    let slots = Slots::new(limits.max_connections, limits.reserve);
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
            accepted = listener.accept() => {
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
                let h = handler.clone();
                let tracker = slot.tracker();
                let svc = service_fn(move |req| {
                    let busy = tracker.start();
                    let res = h(req, remote);
                    async move {
                        let res = res.await?;
                        Ok::<_, std::convert::Infallible>(res.map(|b| Tracked::new(b, busy)))
                    }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                let first_head = limits.header_read_timeout;
                let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
                let serving = tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, %remote, "connection ended with an error");
                    }
                    drop(done_tx);
                });
                // The connection's watchdog, a task of its own so that serving requests polls
                // nothing else: it closes the connection when no first request head came in
                // time (protocol detection included; later heads are hyper's to time), or when
                // the slots run low and the connection is idle. It ends with the connection.
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
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}
