//! Starting and stopping Vanish: the listeners, reloading, graceful shutdown.
//!
//! Owns the sockets and the tasks behind them: the proxy's plain listener (HTTP/1.1 and
//! h2c), its TLS listener (HTTP/1.1 and HTTP/2 by ALPN), and the admin API's. The rooms:
//!
//! - `accept.rs`: the accept loop, the handshakes before HTTP, protocol limits, the
//!   connection watchdog and graceful shutdown (with `connections.rs`' slots);
//! - [`tls`]: certificates (PEM, SNI, reload) and the rustls configuration;
//! - [`proxy_protocol`]: the PROXY v1/v2 header in front of a connection.
//!
//! What a request does is the proxy's and the admin API's business; what the settings mean
//! is `config.rs`'.

mod accept;
pub mod proxy_protocol;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use vanish_engine::{Cache, CacheConfig, Scheme, Store};
use vanish_memory::MemoryStore;

use self::accept::{accept_loop, ConnLimits, Listener};
use self::tls::{Certificates, LoadError};
use crate::admin::auth::Auth;
use crate::admin::browser::BrowserGuard;
use crate::admin::Admin;
use crate::config::Settings;
use crate::proxy::upstream::Upstream;
use crate::proxy::Proxy;
use crate::telemetry;

/// A running Vanish: its addresses, its cache, and ways to reload and stop it.
pub struct Running<S = MemoryStore> {
    /// Where the proxy listens (plain HTTP/1.1 and h2c).
    pub proxy_addr: SocketAddr,
    /// Where the proxy listens for TLS (`[server] listen_tls`), if it does.
    pub tls_addr: Option<SocketAddr>,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The engine (tests and embedding use it directly).
    pub cache: Cache<S>,
    certificates: Option<Arc<Certificates>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// What a reload could not do: the old state stays in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// A certificate or key file is missing or bad; the old certificates are still served.
    Certificates(LoadError),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Certificates(e) => {
                write!(f, "{e}; keeping the certificates in use")
            }
        }
    }
}

impl std::error::Error for ReloadError {}

impl<S> Running<S> {
    /// Re-reads what can change while serving (SIGHUP): today the TLS certificates, all of
    /// them. New handshakes get the new set; connections in flight keep their session. On a
    /// bad file nothing changes: the error is logged as one line and returned.
    pub fn reload(&self) -> Result<(), ReloadError> {
        if let Some(certs) = &self.certificates {
            if let Err(e) = certs.reload() {
                let e = ReloadError::Certificates(e);
                tracing::error!("reload failed: {e}");
                return Err(e);
            }
            tracing::info!(names = ?certs.names(), "certificates reloaded");
        }
        Ok(())
    }

    /// Stops accepting, lets requests in flight finish (up to the grace period), and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds the listeners (proxy, TLS when configured, admin) and starts serving, with the
/// embedded memory store.
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

/// Binds the listeners and starts serving over any store.
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
    let tls_listener = match &settings.tls {
        Some(t) => Some(
            TcpListener::bind(t.listen)
                .await
                .map_err(|e| with_context(e, "proxy, TLS", t.listen))?,
        ),
        None => None,
    };
    let proxy_addr = proxy_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let tls_addr = tls_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let certificates = settings.tls.as_ref().map(|t| t.certs.clone());
    let acceptor = match &certificates {
        Some(c) => Some(TlsAcceptor::from(
            tls::server_config(c.clone()).map_err(std::io::Error::other)?,
        )),
        None => None,
    };
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
    let limits = ConnLimits {
        max_header_bytes: settings.limits.max_header_bytes,
        max_connections: settings.limits.max_client_connections,
        reserve: settings.limits.connection_reserve,
        header_read_timeout: settings.limits.header_read_timeout,
        max_streams: settings.limits.max_streams_per_connection,
    };
    // The TLS listener's clients speak https: their keys say so (an origin's redirect to
    // https is never served to them), and so does `X-Forwarded-Proto`. Same store, same
    // origin client and limits.
    let tls_proxy = tls_listener.as_ref().map(|_| {
        let mut p = (*proxy).clone();
        p.cache = Cache::with_policy(
            store.clone(),
            CacheConfig {
                scheme: Scheme::Https,
                ..settings.cache.clone()
            },
            settings.policy.clone(),
        );
        p.upstream = p.upstream.for_client_scheme(Scheme::Https);
        Arc::new(p)
    });
    let handler = |proxy: Arc<Proxy<S>>| {
        move |req, remote| {
            let p = proxy.clone();
            async move { p.handle(req, remote).await }
        }
    };
    let mut tasks = vec![tokio::spawn(accept_loop(
        Listener {
            tcp: proxy_listener,
            tls: None,
            proxy_protocol: settings.proxy_protocol,
        },
        rx.clone(),
        grace,
        limits,
        handler(proxy),
    ))];
    if let (Some(tcp), Some(acceptor), Some(tls_proxy)) = (tls_listener, acceptor, tls_proxy) {
        // The TLS listener has slots of its own, as many as the plain one.
        tasks.push(tokio::spawn(accept_loop(
            Listener {
                tcp,
                tls: Some(acceptor),
                proxy_protocol: settings.proxy_protocol,
            },
            rx.clone(),
            grace,
            limits,
            handler(tls_proxy),
        )));
    }
    let a = admin.clone();
    tasks.push(tokio::spawn(accept_loop(
        Listener {
            tcp: admin_listener,
            tls: None,
            proxy_protocol: false,
        },
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
    )));
    let tls_addr_field = tls_addr.map_or("none".to_owned(), |a| a.to_string());
    tracing::info!(%proxy_addr, tls_addr = %tls_addr_field, %admin_addr, upstream = %settings.upstream, capacity = settings.memory_capacity, proxy_protocol = settings.proxy_protocol, "vanish started");
    Ok(Running {
        proxy_addr,
        tls_addr,
        admin_addr,
        cache,
        certificates,
        shutdown: tx,
        tasks,
    })
}

fn with_context(e: std::io::Error, what: &str, addr: SocketAddr) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
}
