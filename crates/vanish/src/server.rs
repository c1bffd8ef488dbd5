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
use crate::admin::Admin;
use crate::config::Settings;
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
    let store = MemoryStore::new(settings.memory_capacity);
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
    let admin_listener = TcpListener::bind(settings.admin_listen)
        .await
        .map_err(|e| with_context(e, "admin", settings.admin_listen))?;
    let proxy_addr = proxy_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let cache = Cache::with_policy(
        store.clone(),
        settings.cache.clone(),
        settings.policy.clone(),
    );
    let upstream = Upstream::new(
        &settings.upstream,
        settings.connect_timeout,
        settings.response_timeout,
    );
    let proxy = Arc::new(Proxy {
        cache: cache.clone(),
        upstream,
    });
    let admin = Arc::new(Admin {
        invalidator: cache.invalidator(),
        cache: cache.clone(),
        store,
        auth: Auth::new(&settings.admin_tokens, &settings.admin_allow),
        metrics: telemetry::prometheus(),
    });
    let (tx, rx) = watch::channel(false);
    let grace = settings.shutdown_grace;
    let p = proxy.clone();
    let t1 = tokio::spawn(accept_loop(
        proxy_listener,
        rx.clone(),
        grace,
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

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
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
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true);
    loop {
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
                let svc = service_fn(move |req| h(req, remote));
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, %remote, "connection ended with an error");
                    }
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
