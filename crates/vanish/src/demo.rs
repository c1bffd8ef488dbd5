//! `vanish demo`: a small built-in origin so a newcomer sees hits and purges at once.
//!
//! Owns the demo site only (a home page, posts with `Accept-Language` variants and tags, a
//! clock). It is an ordinary origin behind the ordinary proxy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Starts the demo origin; returns its address.
pub async fn start_origin(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let renders = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let renders = renders.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let n = renders.fetch_add(1, Ordering::Relaxed) + 1;
                    async move { Ok::<_, std::convert::Infallible>(page(req, n)) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(local)
}

fn page(req: Request<Incoming>, render: u64) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let lang = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| if v.starts_with("fr") { "fr" } else { "en" })
        .unwrap_or("en");
    let (status, cc, tags, body) = if path == "/" {
        (
            200,
            "public, max-age=60",
            "home".to_owned(),
            format!("Vanish demo home (origin render #{render})\nTry /posts/1, /posts/2, /time\n"),
        )
    } else if let Some(id) = path.strip_prefix("/posts/") {
        let text = if lang == "fr" { "Bonjour" } else { "Hello" };
        (
            200,
            "public, s-maxage=300, stale-while-revalidate=30",
            format!("post-{id} posts"),
            format!("{text} from post {id} (origin render #{render}, lang {lang})\n"),
        )
    } else if path == "/time" {
        (
            200,
            "public, max-age=5",
            "time".to_owned(),
            format!(
                "origin render #{render} at {:?}\n",
                std::time::SystemTime::now()
            ),
        )
    } else {
        (
            404,
            "public, max-age=10",
            "missing".to_owned(),
            "not found\n".to_owned(),
        )
    };
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header(header::CACHE_CONTROL, cc)
        .header(header::VARY, "Accept-Language")
        .header("surrogate-key", tags)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}
