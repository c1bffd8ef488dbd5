//! The per-process half of the embedded cache: a tokio runtime and the engine over its store,
//! started on first use, and started anew in a child after `fork()`.
//!
//! Owns the process's [`Running`] cache and when it starts. Pre-fork servers (gunicorn,
//! uWSGI) fork after the application was imported, maybe after it served a request: a
//! runtime's threads and a store's connections do not survive a fork, so every use checks
//! the process id, and a child starts its own runtime and store. What the parent had is
//! leaked in the child, never dropped there (dropping would wait for threads that only exist
//! in the parent). A store that cannot start (Redis down) is retried at most once per
//! [`RETRY_AFTER`], so a request never waits on a connection known to be failing.
//! It does not serve requests (`exchange.rs`) nor read settings (`options.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vanish_engine::Cache;
use vanish_memory::MemoryStore;
use vanish_redis::RedisStore;

use crate::options::{Resolved, StoreSettings};
use crate::policy::PrefixedPolicy;
use crate::store::AnyStore;

/// How long after a failed start the next use fails at once instead of trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The engine running in this process.
pub struct Running {
    pid: u32,
    // `Some` until dropped; `Option` so a forked child can leak them instead.
    runtime: Option<tokio::runtime::Runtime>,
    cache: Option<Cache<AnyStore>>,
}

impl Running {
    /// The engine.
    pub fn cache(&self) -> &Cache<AnyStore> {
        self.cache.as_ref().expect("present until dropped")
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("present until dropped")
    }

    /// Runs `fut` to completion on this process's runtime, from a thread outside it.
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.runtime().block_on(fut)
    }

    /// Spawns a task on this process's runtime (from a thread outside it).
    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        drop(self.runtime().spawn(fut));
    }

    /// True in the process that started it (false in a child forked after).
    pub fn is_current(&self) -> bool {
        self.pid == std::process::id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.is_current() {
            drop(self.cache.take());
            if let Some(rt) = self.runtime.take() {
                rt.shutdown_background();
            }
        } else {
            // In a forked child the parent's runtime and store are leaked on purpose.
            std::mem::forget(self.cache.take());
            std::mem::forget(self.runtime.take());
        }
    }
}

enum State {
    NotStarted,
    Running(Arc<Running>),
    Failed {
        pid: u32,
        at: Instant,
        error: String,
    },
}

/// The embedded cache of one `VANISH` configuration, started lazily in each process.
pub struct Embedded {
    settings: Resolved,
    state: Mutex<State>,
}

impl Embedded {
    /// An embedded cache with these settings; nothing starts before [`Embedded::running`].
    pub fn new(settings: Resolved) -> Self {
        Embedded {
            settings,
            state: Mutex::new(State::NotStarted),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Resolved {
        &self.settings
    }

    /// The engine of this process: started now if this process has none yet (first use, or
    /// first use after a fork). Blocks while a Redis store connects.
    pub fn running(&self) -> Result<Arc<Running>, String> {
        let pid = std::process::id();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &*state {
            State::Running(r) if r.pid == pid => return Ok(r.clone()),
            State::Failed { pid: p, at, error } if *p == pid && at.elapsed() < RETRY_AFTER => {
                return Err(format!("{error} (retried at most once a second)"))
            }
            State::Running(_) => {
                // The parent's: leak it here (its threads are not in this process).
                if let State::Running(r) = std::mem::replace(&mut *state, State::NotStarted) {
                    std::mem::forget(r);
                }
            }
            _ => {}
        }
        match start(&self.settings, pid) {
            Ok(r) => {
                let r = Arc::new(r);
                *state = State::Running(r.clone());
                Ok(r)
            }
            Err(error) => {
                *state = State::Failed {
                    pid,
                    at: Instant::now(),
                    error: error.clone(),
                };
                Err(error)
            }
        }
    }
}

fn start(settings: &Resolved, pid: u32) -> Result<Running, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vanish-engine")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the engine's runtime: {e}"))?;
    let store = match &settings.store {
        StoreSettings::Memory {
            capacity,
            max_variants,
        } => AnyStore::Memory(MemoryStore::with_max_variants(*capacity, *max_variants)),
        StoreSettings::Redis(cfg) => {
            let connected = runtime.block_on(RedisStore::connect(cfg.clone()));
            match connected {
                Ok(s) => AnyStore::Redis(s),
                Err(e) => {
                    runtime.shutdown_background();
                    return Err(format!("cannot start the Redis store: {e}"));
                }
            }
        }
    };
    let cache = Cache::with_policy(
        store,
        settings.cache.clone(),
        Arc::new(PrefixedPolicy::default()),
    );
    Ok(Running {
        pid,
        runtime: Some(runtime),
        cache: Some(cache),
    })
}
