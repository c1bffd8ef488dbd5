//! The `vanish` command. See `vanish --help`.

use std::process::ExitCode;

use clap::Parser;
use http::Method;
use vanish::cli::{self, Cli, Command};
use vanish::config::{Overrides, Settings, StoreChoice};
use vanish::{demo, server, telemetry};

/// jemalloc returns the memory of evicted objects to the OS (see `vanish::allocator`).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    #[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
    vanish::allocator::mark_installed();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vanish: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("vanish: {msg}");
            ExitCode::from(code as u8)
        }
    }
}

async fn run(cli: Cli) -> Result<(), (i32, String)> {
    match cli.command {
        Command::Serve(a) => {
            let signals = Signals::install()?;
            let overrides = Overrides {
                upstream: a.upstream,
                listen: a.listen,
                listen_tls: a.listen_tls,
                tls_cert: a.tls_cert,
                tls_key: a.tls_key,
                admin_listen: a.admin_listen,
                admin_token: a.admin_token,
                memory_capacity: a.memory_capacity,
                disk_path: a.disk_path,
                disk_capacity: a.disk_capacity,
            };
            let settings =
                Settings::load(a.config.as_deref(), &overrides).map_err(|e| (2, e.to_string()))?;
            serve(settings, signals).await
        }
        Command::Demo(a) => {
            let signals = Signals::install()?;
            let origin_addr = a.origin_listen.parse().map_err(|_| {
                (
                    2,
                    format!("--origin-listen {:?}: not IP:PORT", a.origin_listen),
                )
            })?;
            let origin = demo::start_origin(origin_addr).await.map_err(|e| {
                (
                    1,
                    format!("cannot start the demo origin on {origin_addr}: {e}"),
                )
            })?;
            let overrides = Overrides {
                upstream: Some(format!("http://{origin}")),
                listen: Some(a.listen.clone()),
                admin_listen: Some(a.admin_listen.clone()),
                ..Default::default()
            };
            let settings = Settings::load(None, &overrides).map_err(|e| (2, e.to_string()))?;
            let p = settings.listen;
            let ad = settings.admin.listen;
            eprintln!(
                "Vanish demo: origin on http://{origin}, proxy on http://{p}, admin on http://{ad}\n\
                 Try:\n  curl -si http://{p}/posts/1 | grep -i -e cache-status -e age -e render\n  \
                 curl -si http://{p}/posts/1 | grep -i -e cache-status -e age -e render   # now a hit\n  \
                 curl -s -X POST http://{ad}/invalidate -H 'content-type: application/json' -d '{{\"type\":\"tag\",\"tag\":\"post-1\"}}'\n  \
                 curl -si http://{p}/posts/1 | grep -i cache-status                       # a miss again"
            );
            serve(settings, signals).await
        }
        Command::Purge(a) => {
            let body = cli::purge_body(&a).map_err(|e| (e.code, e.message))?;
            let v = cli::admin_call(&a.target, Method::POST, "/invalidate", Some(body))
                .await
                .map_err(|e| (e.code, e.message))?;
            println!("{v}");
            Ok(())
        }
        Command::CheckConfig(a) => {
            let (s, placeholder_upstream) =
                vanish::config::check(&a.file).map_err(|e| (2, e.to_string()))?;
            println!("{}", vanish::config::describe(&s, placeholder_upstream));
            Ok(())
        }
        Command::Explain(a) => {
            let q = cli::explain_query(&a).map_err(|e| (e.code, e.message))?;
            let v = cli::admin_call(&a.target, Method::GET, &q, None)
                .await
                .map_err(|e| (e.code, e.message))?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
    }
}

async fn serve(settings: Settings, signals: Signals) -> Result<(), (i32, String)> {
    telemetry::init_logs();
    if let Some(disk) = settings.disk.clone() {
        return serve_disk(settings, disk, signals).await;
    }
    match settings.store.clone() {
        StoreChoice::Memory => run_until_signal(server::start(settings).await, signals).await,
        StoreChoice::Redis(redis) => {
            run_until_signal(server::start_redis(settings, redis).await, signals).await
        }
    }
}

/// `[disk]`: the memory store in front of the disk tier. On a clean stop, what is queued
/// for disk is written and synced before the process exits.
async fn serve_disk(
    settings: Settings,
    disk: vanish_disk::DiskConfig,
    signals: Signals,
) -> Result<(), (i32, String)> {
    // The recorder first: the disk tier's rebuild reports from its first moment.
    let _ = telemetry::prometheus();
    let memory = vanish_memory::MemoryStore::with_max_variants(
        settings.memory_capacity,
        settings.limits.max_variants,
    );
    let store = vanish_disk::HybridStore::open(memory, &disk).map_err(|e| (1, e.to_string()))?;
    let running = server::start_with_store(settings, store.clone()).await;
    let outcome = run_until_signal(running, signals).await;
    if !store.flush(std::time::Duration::from_secs(10)) {
        tracing::warn!("disk tier: could not sync everything before exiting");
    }
    outcome
}

async fn run_until_signal<S>(
    running: std::io::Result<server::Running<S>>,
    signals: Signals,
) -> Result<(), (i32, String)> {
    let running = running.map_err(|e| (1, e.to_string()))?;
    let mut signals = signals;
    while let Signal::Reload = signals.recv().await {
        reload(&running);
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// SIGHUP: reload what can change without a restart (today the TLS certificates;
/// `Running::reload` logs the outcome). A failed reload keeps everything as it was.
fn reload<S>(running: &server::Running<S>) {
    tracing::info!("SIGHUP: reloading");
    let _ = running.reload();
}

/// What a caught signal asks for.
enum Signal {
    /// SIGHUP.
    Reload,
    /// SIGTERM or SIGINT.
    Stop,
}

/// SIGTERM and SIGINT (Ctrl-C), and SIGHUP, caught from before any listener is bound: once
/// Vanish accepts a connection, a termination signal always means a graceful shutdown, never
/// the default action of dying mid-request, and SIGHUP a reload, never death.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, (i32, String)> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let handler = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| (1, format!("cannot install the {name} handler: {e}")))
            };
            Ok(Signals {
                term: handler(SignalKind::terminate(), "SIGTERM")?,
                int: handler(SignalKind::interrupt(), "SIGINT")?,
                hup: handler(SignalKind::hangup(), "SIGHUP")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal.
    async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}
