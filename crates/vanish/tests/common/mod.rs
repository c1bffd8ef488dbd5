//! Test harness: a real origin on a loopback socket that counts and records its requests,
//! a real Vanish (proxy + admin listeners) in front of it, and a small HTTP client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use vanish::config::{FileConfig, Overrides, Settings};
use vanish::server::{self, Running};

/// What the origin answers.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait before answering.
    pub delay: Duration,
    /// Send the headers and this part of the body, then reset the connection.
    pub truncate_after: Option<usize>,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: 200,
            body: body.into(),
            ..Default::default()
        }
    }
    pub fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// A request the origin received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

type Handler = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

/// A real HTTP origin on 127.0.0.1.
pub struct TestOrigin {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TestOrigin {
    /// Starts an origin; `handler(request, n)` gets the request and how many requests this
    /// path (with query) has seen before (0 for the first).
    pub async fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), Arc::new(handler)).await
    }

    pub async fn start_on(addr: SocketAddr, handler: Handler) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::new(Mutex::new(HashMap::new()));
        let (s2, c2) = (seen.clone(), counts.clone());
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let conns2 = conns.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors and similar: back off instead of spinning a
                    // worker thread the test's own tasks need.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (seen, counts, handler) = (s2.clone(), c2.clone(), handler.clone());
                let conn = tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (seen, counts, handler) =
                            (seen.clone(), counts.clone(), handler.clone());
                        async move {
                            let method = req.method().to_string();
                            let path_and_query = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default();
                            let headers = req.headers().clone();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            let s = Seen {
                                method,
                                path_and_query,
                                headers,
                                body,
                            };
                            let n = {
                                let mut c = counts.lock().unwrap();
                                let e = c.entry(s.path_and_query.clone()).or_insert(0);
                                *e += 1;
                                *e - 1
                            };
                            seen.lock().unwrap().push(s.clone());
                            let reply = handler(&s, n);
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            Ok::<_, Infallible>(build(reply))
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                conns2.lock().unwrap().push(conn.abort_handle());
            }
        });
        TestOrigin {
            addr,
            seen,
            counts,
            task,
            conns,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen for this path and query.
    pub fn count(&self, path_and_query: &str) -> usize {
        *self
            .counts
            .lock()
            .unwrap()
            .get(path_and_query)
            .unwrap_or(&0)
    }

    /// All requests seen.
    pub fn total(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("origin saw a request")
    }

    /// Stops accepting connections (existing pooled connections are closed too).
    ///
    /// The listener closes when the aborted task is next scheduled, not at once: a test that
    /// needs the port to refuse connections uses [`TestOrigin::stop_and_hold`].
    pub fn stop(&self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Stops the origin and waits (up to 20 s) until its listener is closed; then holds the
    /// port with a bound socket that never listens, so connections to the origin's address are
    /// refused while the returned socket lives and no other test's listener (and no
    /// self-connecting client) can take the port meanwhile.
    pub async fn stop_and_hold(&self) -> tokio::net::TcpSocket {
        self.stop();
        let limit = Duration::from_secs(20);
        let start = Instant::now();
        loop {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            // Connections the aborted origin closed linger in TIME_WAIT on this port.
            s.set_reuseaddr(true).unwrap();
            match s.bind(self.addr) {
                Ok(()) => return s,
                Err(e) => assert!(
                    start.elapsed() < limit,
                    "the stopped origin's listener on {} did not close within {limit:?}: {e}",
                    self.addr
                ),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A loopback address where connections are refused: the returned socket is bound to it but
/// never listens. Keep the socket alive as long as the address must stay dead: while it is
/// bound no listener (and no client's ephemeral port, so no TCP self-connect) can take the
/// port, which a port that was bound and then released does not guarantee.
pub fn refusing_addr() -> (tokio::net::TcpSocket, SocketAddr) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = s.local_addr().unwrap();
    (s, addr)
}

type OriginBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn build(reply: Reply) -> Response<OriginBody> {
    let mut b = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (k, v) in &reply.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let body: OriginBody = match reply.truncate_after {
        None => Full::new(Bytes::from(reply.body))
            .map_err(|n| match n {})
            .boxed(),
        Some(n) => {
            // Send the headers and the first part (hyper flushes them while the body
            // pauses), then fail: the connection is reset mid-body.
            let first = Bytes::copy_from_slice(&reply.body[..n]);
            let stream = futures_util::stream::unfold(0u8, move |step| {
                let first = first.clone();
                async move {
                    match step {
                        0 => Some((Ok(Frame::data(first)), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Some((Err(std::io::Error::other("origin reset mid-body")), 2))
                        }
                        _ => None,
                    }
                }
            });
            StreamBody::new(stream).boxed()
        }
    };
    b.body(body).unwrap()
}

/// A page of the "site on two hosts" the invalidation tests share: the body names the host,
/// URL, `Accept-Language` and `render` (which fill served it); the response is cacheable,
/// varies on `Accept-Language` and is tagged `path:<path>` (and `blog` under `/blog/`).
pub fn site_page(s: &Seen, render: &str) -> Reply {
    let header = |name: &str| {
        s.headers
            .get(name)
            .map(|h| h.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (host, lang) = (header("host"), header("accept-language"));
    let path = s.path_and_query.split('?').next().unwrap();
    let mut tags = vec![format!("path:{path}")];
    if path.starts_with("/blog/") {
        tags.push("blog".into());
    }
    Reply::ok(format!("{host}{} {lang} {render}", s.path_and_query))
        .header("cache-control", "public, max-age=300")
        .header("vary", "Accept-Language")
        .header("surrogate-key", &tags.join(" "))
}

/// Settings of a test node in front of `origin`: ephemeral loopback ports, a 1 s shutdown
/// grace, plus the given TOML.
pub fn test_settings(origin: &str, toml: &str) -> Settings {
    let file: FileConfig = vanish::config::parse_file(toml).expect("test config parses");
    let o = Overrides {
        upstream: Some(origin.to_owned()),
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let mut settings = Settings::from_parts(file, &o).expect("valid settings");
    settings.shutdown_grace = Duration::from_secs(1);
    settings
}

/// Vanish in front of an origin.
pub struct TestVanish {
    pub running: Running,
}

impl TestVanish {
    pub async fn start(origin: &str) -> Self {
        Self::start_with(origin, "").await
    }

    /// Starts Vanish with extra TOML configuration.
    pub async fn start_with(origin: &str, toml: &str) -> Self {
        TestVanish {
            running: server::start(test_settings(origin, toml))
                .await
                .expect("vanish starts"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.running.proxy_addr, path)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{}", self.running.admin_addr, path)
    }
}

/// A response as the tests see it.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn cache_status(&self) -> &str {
        self.header("cache-status").unwrap_or("")
    }
    pub fn is_hit(&self) -> bool {
        self.cache_status().contains("; hit")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends a request; `headers` are added as given.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Got {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .expect("response within 20s")
        .expect("request succeeds");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(20), res.into_body().collect())
        .await
        .unwrap_or_else(|_| panic!("{method} {url}: response body not complete within 20s"))
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Got {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(url: &str) -> Got {
    send("GET", url, &[], "").await
}

pub async fn get_with(url: &str, headers: &[(&str, &str)]) -> Got {
    send("GET", url, headers, "").await
}

/// `POST /invalidate` with a JSON body.
pub async fn purge(v: &TestVanish, json: &str) -> Got {
    send(
        "POST",
        &v.admin("/invalidate"),
        &[("content-type", "application/json")],
        json,
    )
    .await
}

/// Waits until `f` holds, checking every 10 ms; fails naming `what` if it does not hold within
/// `limit`. Tests wait for conditions this way, never for a fixed time.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads from a raw connection until a whole message head (`\r\n\r\n`) has arrived; `None`
/// if the peer closed first or no whole head came within 20 s. Raw test origins read the whole
/// request head before they answer (unread bytes would turn their close into a reset).
pub async fn read_head(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await;
        match read {
            Err(_) | Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// Sends raw bytes and reads until the server closes the connection.
pub async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    read_to_close(connect_and_send(addr, bytes).await).await
}

/// Connects and sends raw bytes.
pub async fn connect_and_send(addr: std::net::SocketAddr, bytes: &[u8]) -> tokio::net::TcpStream {
    let mut s = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .expect("connected within 20s")
    .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, bytes)
        .await
        .unwrap();
    s
}

/// Reads until the server closes the connection (or resets it), which it must within 20 s.
pub async fn read_to_close(mut s: tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut out),
    )
    .await;
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(
        read.is_ok(),
        "the server did not close the connection within 20s; got: {}",
        &out[..out.len().min(200)]
    );
    out
}

/// A real origin with `handler` and a real `vanish` proxy in front of it.
pub async fn pair(
    handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
) -> (TestOrigin, TestVanish) {
    let origin = TestOrigin::start(handler).await;
    let vanish = TestVanish::start(&origin.url()).await;
    (origin, vanish)
}

/// An origin on a raw socket that answers every request by writing `parts` in turn (each
/// flushed: e.g. an interim response, then the final one), then closes (the final part should
/// say `Connection: close`, so the proxy never reuses a connection it is closing). Returns its
/// URL and a count of the requests it read.
pub async fn raw_origin(
    parts: Vec<&'static [u8]>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let parts = Arc::new(parts);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let (c, parts) = (c.clone(), parts.clone());
            tokio::spawn(async move {
                if read_head(&mut s).await.is_none() {
                    return;
                }
                c.fetch_add(1, Ordering::SeqCst);
                for part in parts.iter() {
                    let _ = s.write_all(part).await;
                    let _ = s.flush().await;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), count)
}
