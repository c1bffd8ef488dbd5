//! One request's exchange with the engine, the Django view being the origin.
//!
//! Owns the hand-over between the Python thread and the engine: the engine serves the
//! request with [`Cache::serve`](vanish_engine::Cache::serve) over a [`ViewOrigin`], on the
//! calling thread until it answers or asks its origin, then in a task of its own; when it
//! asks its origin for a response (a miss, a revalidation), the Python thread is handed a
//! [`Render`] and runs the view; the response it gives goes
//! back to the engine, which stores what may be stored (RFC 9111, `Vary`, tags: the
//! engine's rules) and answers. Every answer is the engine's: a hit, the fill's response with
//! `Cache-Status`, or a `304`/`412`/`206` the engine makes from it. Coalescing is the
//! engine's too: a second thread missing the same page waits for the first one's render.
//! It does not convert Python values (`lib.rs` does) nor start runtimes (`process.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{request, HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::{mpsc, oneshot};
use vanish_engine::{CacheBody, Origin, OriginError};

use crate::process::Running;

type Reply = oneshot::Sender<Result<Response<Full<Bytes>>, OriginError>>;

/// What the engine's task tells the Python thread.
enum Step {
    /// The engine asks the origin (the view) for this request.
    Fetch(Request<()>, Reply),
    /// The engine's answer to the client.
    Done(Response<CacheBody>),
}

/// The Django view as the engine's origin: each fetch is handed to the Python thread that
/// serves the request, and waits for the response it renders.
///
/// A fetch made when no Python thread waits any more (a `stale-while-revalidate` refresh
/// the engine starts after it answered) fails: the stale page is served within the window,
/// and the first request after it renders the page again.
#[derive(Clone)]
struct ViewOrigin {
    steps: mpsc::UnboundedSender<Step>,
}

impl Origin for ViewOrigin {
    type Body = Full<Bytes>;

    async fn fetch(&self, req: Request<()>) -> Result<Response<Self::Body>, OriginError> {
        let (tx, rx) = oneshot::channel();
        self.steps.send(Step::Fetch(req, tx)).map_err(|_| {
            OriginError::Unreachable("no request is waiting to render this page".into())
        })?;
        rx.await
            .map_err(|_| OriginError::Unreachable("the view gave no response".into()))?
    }
}

/// The engine's answer, read whole.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header fields, in order (names lower-case, values as Latin-1 text).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// The engine wants the view's response to this request.
pub struct Render {
    /// The method the engine asks with (`GET` for a `HEAD`'s fill).
    pub method: String,
    /// The request headers the engine sends (validators added, conditionals removed).
    pub headers: Vec<(String, String)>,
    /// `Some` until answered; dropping it unanswered answers [`Render::skip`]'s response.
    reply: Option<Reply>,
    exchange: Option<Exchange>,
}

/// What comes next in an exchange.
pub enum Next {
    /// The answer for the client.
    Answer(Answer),
    /// Render the view, then [`Render::respond`].
    Render(Render),
}

/// An exchange in progress (the engine's task and the channel from it).
pub struct Exchange {
    running: Arc<Running>,
    steps: mpsc::UnboundedReceiver<Step>,
}

/// Latin-1 text of header bytes (how WSGI and Django carry header values).
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), latin1(v.as_bytes())))
        .collect()
}

/// Reads the engine's answer whole.
async fn read_answer(res: Response<CacheBody>) -> Result<Next, String> {
    let (parts, body) = res.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("the response body failed: {e}"))?
        .to_bytes();
    Ok(Next::Answer(Answer {
        status: parts.status.as_u16(),
        headers: header_list(&parts.headers),
        body,
    }))
}

fn render(req: Request<()>, reply: Reply, exchange: Exchange) -> Next {
    Next::Render(Render {
        method: req.method().as_str().to_owned(),
        headers: header_list(req.headers()),
        reply: Some(reply),
        exchange: Some(exchange),
    })
}

impl Exchange {
    /// Serves `req`: the engine runs on the calling thread until it answers (a hit costs no
    /// task and no thread hop) or asks the view; then it goes on in a task of its own while
    /// the Python thread renders. Blocks the calling thread, not the engine.
    pub fn serve(running: Arc<Running>, req: request::Parts) -> Result<Next, String> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let origin = ViewOrigin { steps: tx.clone() };
        let cache = running.cache().clone();
        let mut serving: Pin<Box<dyn Future<Output = Response<CacheBody>> + Send>> =
            Box::pin(async move { cache.serve(req, &origin).await });
        let first = running.block_on(async {
            tokio::select! {
                biased;
                res = &mut serving => Ok(read_answer(res).await),
                step = rx.recv() => Err(step),
            }
        });
        match first {
            Ok(answer) => answer,
            Err(Some(Step::Fetch(req, reply))) => {
                running.spawn(async move {
                    let res = serving.await;
                    let _ = tx.send(Step::Done(res));
                });
                Ok(render(req, reply, Exchange { running, steps: rx }))
            }
            Err(_) => Err("the engine stopped before answering".into()),
        }
    }

    /// Waits for the engine's next step (blocks the calling thread, not the engine).
    pub fn next(self) -> Result<Next, String> {
        let running = self.running.clone();
        if !running.is_current() {
            return Err("this request began before fork(): serve it again in this process".into());
        }
        let mut this = self;
        running.block_on(async move {
            match this.steps.recv().await {
                Some(Step::Done(res)) => read_answer(res).await,
                Some(Step::Fetch(req, reply)) => Ok(render(req, reply, this)),
                None => Err("the engine stopped before answering".into()),
            }
        })
    }
}

/// The response that tells the engine not to store: empty, `Cache-Control: no-store`.
fn not_stored(status: StatusCode) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    res
}

impl Render {
    /// Hands the view's response to the engine and waits for its next step.
    pub fn respond(mut self, res: Response<Full<Bytes>>) -> Result<Next, String> {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Ok(res));
        }
        match self.exchange.take() {
            Some(exchange) => exchange.next(),
            None => Err("this miss was already answered".into()),
        }
    }

    /// Tells the engine the page may not be stored (a streamed response, a view that
    /// raised): an empty `status` response with `Cache-Control: no-store`, so requests
    /// waiting for this render render it themselves. The engine's answer is dropped; the
    /// client gets the view's own response.
    pub fn skip(self, status: StatusCode) -> Result<(), String> {
        let mut render = self;
        loop {
            match render.respond(not_stored(status))? {
                Next::Answer(_) => return Ok(()),
                Next::Render(again) => render = again,
            }
        }
    }
}

impl Drop for Render {
    /// A miss nobody answered (a view whose middleware never stored, an error in between):
    /// the engine is told "not stored" without waiting, so the requests coalesced behind it
    /// render the page themselves instead of failing.
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Ok(not_stored(StatusCode::INTERNAL_SERVER_ERROR)));
        }
    }
}
