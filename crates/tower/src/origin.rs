//! The wrapped service as the engine's [`Origin`]: fills call the inner service with a
//! bodiless request. Owns that adaptation and the [`Tags`] extension's header.

use std::fmt::Display;
use std::marker::PhantomData;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use tower::{Service, ServiceExt};
use vanish_engine::{BoxError, Origin, OriginError};

use crate::tags::Tags;

/// The inner service, called by the engine for fills.
pub(crate) struct ServiceOrigin<S, ReqBody, ResBody> {
    pub(crate) inner: S,
    _bodies: PhantomData<fn(ReqBody) -> ResBody>,
}

impl<S, ReqBody, ResBody> ServiceOrigin<S, ReqBody, ResBody> {
    pub(crate) fn new(inner: S) -> Self {
        ServiceOrigin {
            inner,
            _bodies: PhantomData,
        }
    }
}

impl<S: Clone, ReqBody, ResBody> Clone for ServiceOrigin<S, ReqBody, ResBody> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone())
    }
}

impl<S, ReqBody, ResBody> Origin for ServiceOrigin<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Error: Display,
    S::Future: Send,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Body = UnsyncBoxBody<Bytes, BoxError>;

    async fn fetch(&self, req: Request<()>) -> Result<Response<Self::Body>, OriginError> {
        let (parts, ()) = req.into_parts();
        let req = Request::from_parts(parts, ReqBody::default());
        let svc = self.inner.clone();
        let res = svc
            .oneshot(req)
            .await
            .map_err(|e| OriginError::Unreachable(e.to_string()))?;
        let (mut parts, body) = res.into_parts();
        if let Some(h) = parts.extensions.get::<Tags>().and_then(Tags::to_header) {
            parts.headers.append("cache-groups", h);
        }
        Ok(Response::from_parts(
            parts,
            body.map_err(Into::into).boxed_unsync(),
        ))
    }
}
