//! [`CacheLayer`] and [`CacheService`]: caching in front of a `tower` service.
//!
//! Owns the routing between the engine (`GET`/`HEAD`) and the inner service (other methods,
//! followed by RFC 9111 section 4.4 invalidation). Caching rules live in the engine.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use tower::{Layer, Service};
use vanish_engine::{BoxError, Cache, CacheBody, CacheConfig, Invalidator, KeyPolicy, Store};

use crate::origin::ServiceOrigin;

/// Caches the responses of the service it wraps.
#[derive(Clone)]
pub struct CacheLayer<St> {
    cache: Cache<St>,
}

impl<St: Store + Clone> CacheLayer<St> {
    /// A layer over `store` with the default key policy.
    pub fn new(store: St, config: CacheConfig) -> Self {
        CacheLayer {
            cache: Cache::new(store, config),
        }
    }

    /// A layer over `store` with a key policy.
    pub fn with_policy(store: St, config: CacheConfig, policy: Arc<dyn KeyPolicy>) -> Self {
        CacheLayer {
            cache: Cache::with_policy(store, config, policy),
        }
    }

    /// A layer over an existing engine (shared with other front ends).
    pub fn from_cache(cache: Cache<St>) -> Self {
        CacheLayer { cache }
    }

    /// A cloneable handle to purge this layer's cache (e.g. from a handler after a write).
    pub fn invalidator(&self) -> Invalidator<St> {
        self.cache.invalidator()
    }

    /// The engine.
    pub fn cache(&self) -> &Cache<St> {
        &self.cache
    }
}

impl<St: Store + Clone, S> Layer<S> for CacheLayer<St> {
    type Service = CacheService<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            cache: self.cache.clone(),
        }
    }
}

/// The service [`CacheLayer`] produces.
#[derive(Clone)]
pub struct CacheService<S, St> {
    inner: S,
    cache: Cache<St>,
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S, St>
where
    St: Store + Clone,
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Error: Display + Send,
    S::Future: Send,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<CacheBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let cache = self.cache.clone();
        // Take the service that was driven to readiness; leave a fresh clone in its place.
        let inner = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, inner);
        Box::pin(async move {
            if req.method() == Method::GET || req.method() == Method::HEAD {
                let (parts, _body) = req.into_parts();
                let origin = ServiceOrigin::new(ready);
                return Ok(cache.serve(parts, &origin).await);
            }
            let (mut parts, body) = req.into_parts();
            let forward = cache.begin_forward(&mut parts);
            let res = ready.call(Request::from_parts(parts, body)).await?;
            Ok(cache.finish_forward(forward, Ok(res)).await)
        })
    }
}
