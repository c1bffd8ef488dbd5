//! The Layer over real sockets: hits, Vary, purge through the Invalidator, the inner service
//! called once per miss, and the example blog app end to end.

#[path = "../examples/blog.rs"]
mod blog;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use vanish_engine::{CacheConfig, Selector};
use vanish_memory::MemoryStore;
use vanish_tower::{CacheLayer, Tags};

/// How long one request or purge may take before the test fails: far more than it ever needs,
/// even on a busy machine, so a hang is reported instead of waited on forever.
const DEADLINE: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`DEADLINE`].
async fn within<T>(what: impl std::fmt::Display, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within {DEADLINE:?}"),
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, HeaderMap, String) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    within(format!("{method} {url}"), async {
        let res = client.request(req).await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    })
    .await
}

fn is_hit(h: &HeaderMap) -> bool {
    h.get("cache-status")
        .is_some_and(|v| v.to_str().unwrap().contains("; hit"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_vary_purges_and_one_inner_call_per_miss() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let layer = CacheLayer::new(MemoryStore::new(16 << 20), CacheConfig::default());
    let inv = layer.invalidator();
    let app = Router::new()
        .route(
            "/page",
            get(move |headers: HeaderMap| {
                let n = c2.fetch_add(1, Ordering::SeqCst);
                async move {
                    let lang = headers
                        .get("accept-language")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let mut res = axum::response::IntoResponse::into_response((
                        [
                            ("cache-control", "public, max-age=60"),
                            ("vary", "Accept-Language"),
                        ],
                        format!("{lang} #{n}"),
                    ));
                    res.extensions_mut().insert(Tags::new(["page"]));
                    Ok::<_, Infallible>(res)
                }
            }),
        )
        .layer(layer);
    let base = serve(app).await;
    let url = format!("{base}/page");
    let (_, h, b) = send("GET", &url, &[("accept-language", "fr")], "").await;
    assert!(!is_hit(&h));
    assert_eq!(b, "fr #0");
    let (_, h, b) = send("GET", &url, &[("accept-language", "fr")], "").await;
    assert!(is_hit(&h), "{h:?}");
    assert_eq!(b, "fr #0");
    assert!(h.get("cache-groups").is_none(), "tag headers are stripped");
    let (_, h, b) = send("GET", &url, &[("accept-language", "en")], "").await;
    assert!(!is_hit(&h));
    assert_eq!(b, "en #1");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the inner service ran once per miss"
    );
    // Concurrent misses: still one inner call.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            send("GET", &url, &[("accept-language", "de")], "").await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().2, "de #2");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let report = within(
        "purge /page fr",
        inv.purge(Selector::path("/page").header("accept-language", "fr")),
    )
    .await
    .unwrap();
    assert_eq!(report.matched, 1);
    let (_, h, b) = send("GET", &url, &[("accept-language", "fr")], "").await;
    assert!(!is_hit(&h));
    assert_eq!(b, "fr #3");
    let report = within("purge tag page", inv.purge(Selector::tag("page")))
        .await
        .unwrap();
    assert_eq!(report.matched, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_blog_purges_the_right_pages_on_edit() {
    let base = serve(blog::app()).await;
    for path in ["/", "/posts/1", "/posts/2"] {
        for lang in ["en", "fr"] {
            let url = format!("{base}{path}");
            send("GET", &url, &[("accept-language", lang)], "").await;
            let (_, h, _) = send("GET", &url, &[("accept-language", lang)], "").await;
            assert!(is_hit(&h), "{path} {lang}");
        }
    }
    let (status, h, body) = send("POST", &format!("{base}/posts/1"), &[], "Hello, edited").await;
    assert_eq!(status, 200);
    assert_eq!(
        h.get("cache-status").map(|v| v.to_str().unwrap()),
        Some("vanish; fwd=method; fwd-status=200"),
        "a forwarded method says so, as the proxy does"
    );
    assert_eq!(
        body, "saved; 4 cached pages purged\n",
        "post 1 and the list, in both languages"
    );
    for lang in ["en", "fr"] {
        let (_, h, b) = send(
            "GET",
            &format!("{base}/posts/1"),
            &[("accept-language", lang)],
            "",
        )
        .await;
        assert!(!is_hit(&h));
        assert!(b.contains("Hello, edited"), "{b}");
        let (_, h, b) = send("GET", &format!("{base}/"), &[("accept-language", lang)], "").await;
        assert!(!is_hit(&h));
        assert!(b.contains("1: Hello, edited"), "{b}");
        let (_, h, _) = send(
            "GET",
            &format!("{base}/posts/2"),
            &[("accept-language", lang)],
            "",
        )
        .await;
        assert!(is_hit(&h), "post 2 was not touched");
    }
}

/// A memory store whose inserts take 50 ms: a client that got its whole response before the
/// copy was stored would see a purge miss it.
#[derive(Clone)]
struct SlowInsert(MemoryStore);

impl vanish_engine::Store for SlowInsert {
    async fn lookup(
        &self,
        key: &vanish_engine::ResourceKey,
    ) -> Result<Option<Arc<vanish_engine::store::Resource>>, vanish_engine::StoreError> {
        self.0.lookup(key).await
    }

    async fn insert(
        &self,
        object: vanish_engine::CachedObject,
        fill_epoch: u64,
    ) -> Result<vanish_engine::store::Inserted, vanish_engine::StoreError> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.0.insert(object, fill_epoch).await
    }

    async fn purge(
        &self,
        request: Arc<vanish_engine::PurgeRequest>,
    ) -> Result<vanish_engine::PurgeReport, vanish_engine::StoreError> {
        self.0.purge(request).await
    }

    fn epoch(&self) -> u64 {
        self.0.epoch()
    }

    fn stats(&self) -> vanish_engine::StoreStats {
        self.0.stats()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_miss_response_means_its_object_is_stored() {
    let layer = CacheLayer::new(
        SlowInsert(MemoryStore::new(16 << 20)),
        CacheConfig::default(),
    );
    let inv = layer.invalidator();
    let app = Router::new()
        .route(
            "/sized",
            get(|| async {
                let mut res = axum::response::IntoResponse::into_response((
                    [("cache-control", "public, max-age=60")],
                    "x".repeat(30_000),
                ));
                res.extensions_mut().insert(Tags::new(["sized"]));
                res
            }),
        )
        .route(
            "/streamed",
            get(|| async {
                // No Content-Length: the body ends with the stream.
                let chunks = futures_util::stream::iter(
                    ["a", "b", "c"].map(|c| Ok::<_, Infallible>(Bytes::from(c.repeat(10_000)))),
                );
                let mut res = axum::response::Response::new(axum::body::Body::from_stream(chunks));
                res.headers_mut()
                    .insert("cache-control", "public, max-age=60".parse().unwrap());
                res.extensions_mut().insert(Tags::new(["streamed"]));
                res
            }),
        )
        .layer(layer);
    let base = serve(app).await;
    for (path, tag, len) in [
        ("/sized", "sized", 30_000),
        ("/streamed", "streamed", 30_000),
    ] {
        let (status, h, body) = send("GET", &format!("{base}{path}"), &[], "").await;
        assert_eq!(status, 200);
        assert!(!is_hit(&h));
        assert_eq!(body.len(), len);
        let report = within(format!("purge tag {tag}"), inv.purge(Selector::tag(tag)))
            .await
            .unwrap();
        assert_eq!(
            report.matched, 1,
            "{path}: the response was complete before its object was stored"
        );
    }
}

/// The Layer negotiates content codings as the proxy does (the same engine): one stored object
/// serves gzip clients as it is and identity clients decoded, and `compress` compresses once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codings_are_negotiated_as_in_the_proxy() {
    use std::io::{Read, Write};
    let page = "<li>an item of the page</li>\n".repeat(400);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(page.as_bytes()).unwrap();
    let gz = Bytes::from(gz.finish().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let (c2, c3) = (calls.clone(), calls.clone());
    let config = CacheConfig {
        compression: vanish_engine::compress::Compression {
            enabled: true,
            ..Default::default()
        },
        ..CacheConfig::default()
    };
    let layer = CacheLayer::new(MemoryStore::new(16 << 20), config);
    let plain = page.clone();
    let app = Router::new()
        .route(
            "/gz",
            get(move || {
                c2.fetch_add(1, Ordering::SeqCst);
                let gz = gz.clone();
                async move {
                    (
                        [
                            ("cache-control", "public, max-age=60"),
                            ("content-encoding", "gzip"),
                            ("content-type", "text/html"),
                        ],
                        gz,
                    )
                }
            }),
        )
        .route(
            "/plain",
            get(move || {
                c3.fetch_add(1, Ordering::SeqCst);
                let plain = plain.clone();
                async move {
                    (
                        [
                            ("cache-control", "public, max-age=60"),
                            ("content-type", "text/html"),
                        ],
                        plain,
                    )
                }
            }),
        )
        .layer(layer);
    let base = serve(app).await;
    for path in ["/gz", "/plain"] {
        let url = format!("{base}{path}");
        let (_, h, body) = send("GET", &url, &[], "").await;
        assert_eq!(
            body, page,
            "{path}: identity to a client without Accept-Encoding"
        );
        assert!(h.get("content-encoding").is_none(), "{path}");
        // Raw gzip bytes are not text: read them as bytes.
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let req = http::Request::get(&url)
            .header("accept-encoding", "gzip, br")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = within(&url, client.request(req)).await.unwrap();
        assert_eq!(res.headers()["content-encoding"], "gzip", "{path}");
        assert!(is_hit(res.headers()), "{path}: {:?}", res.headers());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, page, "{path}");
        let (_, h, body) = send("GET", &url, &[], "").await;
        assert!(is_hit(&h), "{path}");
        assert_eq!(body, page, "{path}: decoded on the fly");
        assert!(h.get("content-encoding").is_none(), "{path}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one inner call per resource"
    );
}
