//! The [`Cache`] handle: what every stage shares (store, settings, key policy, coalescer).
//!
//! Owns construction and the accessors front ends use. It runs no stage itself: serving is
//! in [`super::serve`], and each stage adds its methods in its own file.

use std::sync::Arc;

use http::request;

use crate::coalesce::Coalescer;
use crate::config::CacheConfig;
use crate::invalidator::Invalidator;
use crate::key::KeyError;
use crate::policy::{DefaultPolicy, KeyPolicy, Prepared};
use crate::store::Store;

/// The cache engine over a store. Cheap to clone; clones share everything.
///
/// ```
/// # async fn demo<S: vanish_engine::Store + Clone, O: vanish_engine::Origin>(store: S, origin: O) {
/// use vanish_engine::{Cache, CacheConfig};
/// let cache = Cache::new(store, CacheConfig::default());
/// let (parts, ()) = http::Request::get("/").header("host", "example.com").body(()).unwrap().into_parts();
/// let response = cache.serve(parts, &origin).await;
/// println!("{:?}", response.headers().get("cache-status"));
/// # }
/// ```
pub struct Cache<S> {
    pub(super) inner: Arc<Inner<S>>,
}

impl<S> Clone for Cache<S> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

pub(super) struct Inner<S> {
    pub(super) store: S,
    pub(super) config: CacheConfig,
    pub(super) policy: Arc<dyn KeyPolicy>,
    pub(super) coalescer: Arc<Coalescer>,
}

impl<S: Store + Clone> Cache<S> {
    /// A cache over `store` with the default key policy (the URL, verbatim).
    pub fn new(store: S, config: CacheConfig) -> Self {
        Self::with_policy(store, config, Arc::new(DefaultPolicy))
    }

    /// A cache over `store` with a key policy (e.g. a [`crate::RulesPolicy`] from config).
    pub fn with_policy(store: S, config: CacheConfig, policy: Arc<dyn KeyPolicy>) -> Self {
        Cache {
            inner: Arc::new(Inner {
                store,
                config,
                policy,
                coalescer: Arc::new(Coalescer::default()),
            }),
        }
    }

    /// The key policy.
    pub fn policy(&self) -> &Arc<dyn KeyPolicy> {
        &self.inner.policy
    }

    /// What the key policy makes of a request (for `explain`): its key, rule and bypass.
    pub fn prepare(&self, req: &mut request::Parts) -> Result<Prepared, KeyError> {
        self.inner.policy.prepare(req, self.inner.config.scheme)
    }

    /// Runs the entrance rules on a request (forwarding headers, `Connection`, `Host`; see
    /// [`crate::forwarding`]). [`Cache::serve`] and [`Cache::begin_forward`] do it; returns
    /// what the key must add for the forwarding headers that were kept.
    pub(super) fn admit(&self, req: &mut request::Parts) -> Option<String> {
        crate::forwarding::admit(req, self.inner.config.scheme, &self.inner.config.forwarding)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// A handle that purges this cache's store, through its key policy.
    pub fn invalidator(&self) -> Invalidator<S> {
        Invalidator::with_policy(self.inner.store.clone(), self.inner.policy.clone())
            .with_value_form(self.inner.config.vary_values)
    }

    /// Fills in flight right now.
    pub fn fills_in_flight(&self) -> usize {
        self.inner.coalescer.in_flight()
    }
}
