//! `https://` origins: a real TLS origin started by the test (rcgen certificates, tokio-rustls
//! around a hyper origin that counts its TCP connections and handshakes), verified against
//! `[upstream] ca_file` or refused; `tls_server_name`; and one-line errors for a bad CA file
//! from the real binary.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// A certificate authority made by the test.
struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `names` (DNS names or IP addresses) signed by this CA.
    fn leaf(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], der)
    }

    /// Writes the CA certificate to a fresh file.
    fn write(&self, dir: &Path) -> PathBuf {
        let p = dir.join("origin-ca.pem");
        std::fs::write(&p, &self.pem).unwrap();
        p
    }
}

/// A self-signed certificate (its own issuer) for `names`: chain, key and its PEM.
fn self_signed(names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (vec![cert.der().clone()], der, cert.pem())
}

/// What the TLS origin received: method, path, `Host`, `X-Forwarded-Proto`.
#[derive(Debug, Clone)]
struct SeenTls {
    method: String,
    path: String,
    host: String,
    proto: String,
}

/// A real HTTPS origin on 127.0.0.1 answering cacheable pages (`max-age=300`) that name the
/// path and how many times it was rendered.
struct TlsOrigin {
    addr: SocketAddr,
    /// TCP connections accepted.
    accepted: Arc<AtomicUsize>,
    /// TLS handshakes completed.
    handshakes: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<SeenTls>>>,
}

impl TlsOrigin {
    async fn start(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<SeenTls>>> = Arc::default();
        let (a, h, s) = (accepted.clone(), handshakes.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (acceptor, h, s) = (acceptor.clone(), h.clone(), s.clone());
                tokio::spawn(async move {
                    // A refused handshake (the proxy did not trust us) just ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let s = s.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&s, req)) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        TlsOrigin {
            addr,
            accepted,
            handshakes,
            seen,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn renders(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .count()
    }

    fn seen(&self) -> Vec<SeenTls> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(seen: &Mutex<Vec<SeenTls>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let s = SeenTls {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        host: header("host"),
        proto: header("x-forwarded-proto"),
    };
    let render = {
        let mut all = seen.lock().unwrap();
        all.push(s.clone());
        all.iter().filter(|x| x.path == s.path).count()
    };
    Response::builder()
        .header("cache-control", "public, max-age=300")
        .body(Full::new(Bytes::from(format!(
            "{} render {render}",
            s.path
        ))))
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vanish-origin-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn upstream_toml(ca: Option<&Path>, server_name: Option<&str>) -> String {
    let mut t = String::from("[upstream]\n");
    if let Some(ca) = ca {
        t.push_str(&format!("ca_file = {:?}\n", ca.to_str().unwrap()));
    }
    if let Some(n) = server_name {
        t.push_str(&format!("tls_server_name = {n:?}\n"));
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_and_misses_through_an_https_origin_over_one_handshake() {
    let ca = TestCa::new("Vanish test origin CA");
    let (chain, key) = ca.leaf(&["127.0.0.1"]);
    let origin = TlsOrigin::start(chain, key).await;
    let dir = temp_dir("reuse");
    let toml = upstream_toml(Some(&ca.write(&dir)), None);
    let v = TestVanish::start_with(&origin.url(), &toml).await;

    let first = get_with(&v.url("/a"), &[("host", "www.example.com")]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body, "/a render 1");
    assert!(
        first.cache_status().contains("fwd=miss"),
        "{}",
        first.cache_status()
    );
    let again = get_with(&v.url("/a"), &[("host", "www.example.com")]).await;
    assert!(again.is_hit(), "{}", again.cache_status());
    assert_eq!(again.body, "/a render 1");
    assert_eq!(origin.renders("/a"), 1, "the hit did not reach the origin");

    // Sequential misses ride the same pooled TLS connection.
    for p in ["/b", "/c", "/d", "/e"] {
        let got = get_with(&v.url(p), &[("host", "www.example.com")]).await;
        assert_eq!(got.status, 200, "{p}: {}", got.body);
        assert_eq!(got.body, format!("{p} render 1"));
    }
    assert_eq!(origin.handshakes.load(Ordering::SeqCst), 1, "one handshake");
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 1, "one connection");

    // The origin sees the client's Host and the client's scheme (plain HTTP here), not the
    // upstream's.
    for s in origin.seen() {
        assert_eq!(s.method, "GET");
        assert_eq!(s.host, "www.example.com", "{s:?}");
        assert_eq!(s.proto, "http", "{s:?}");
    }
    // explain reads the stored object as for any origin.
    let explained = get(&v.admin("/explain?url=http%3A%2F%2Fwww.example.com%2Fa")).await;
    assert_eq!(explained.status, 200, "{}", explained.body);
    assert!(
        explained.body.contains("www.example.com"),
        "{}",
        explained.body
    );
    v.running.shutdown().await;
}

/// Requests refused on the TLS handshake with the origin, per reason, from `/metrics`.
async fn tls_errors(v: &TestVanish, reason: &str) -> u64 {
    let m = get(&v.admin("/metrics")).await.body;
    m.lines()
        .find(|l| {
            l.starts_with("vanish_origin_tls_errors_total")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_origin_is_refused_unless_its_certificate_is_the_ca_file() {
    let (chain, key, pem) = self_signed(&["127.0.0.1"]);
    let origin = TlsOrigin::start(chain, key).await;
    // The system's roots do not know it: 502, the cache's own plain-text answer.
    let v = TestVanish::start(&origin.url()).await;
    let refused = get(&v.url("/p")).await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert_eq!(
        refused.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        refused
            .body
            .starts_with("502 Bad Gateway: origin unreachable: TLS handshake"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("ca_file"), "{}", refused.body);
    assert!(
        refused.cache_status().contains("origin-error"),
        "{}",
        refused.cache_status()
    );
    assert!(
        origin.renders("/p") == 0,
        "no request went over an unverified connection"
    );
    assert_eq!(origin.handshakes.load(Ordering::SeqCst), 0);
    assert!(tls_errors(&v, "unknown_issuer").await >= 1);
    v.running.shutdown().await;

    // Configured as the CA file, the same certificate is trusted.
    let dir = temp_dir("self-signed");
    let ca = dir.join("self.pem");
    std::fs::write(&ca, pem).unwrap();
    let v = TestVanish::start_with(&origin.url(), &upstream_toml(Some(&ca), None)).await;
    let ok = get(&v.url("/p")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body, "/p render 1");
    v.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_serving_as_the_origins_own_is_refused_with_a_hint() {
    // What `openssl req -x509` makes by default: self-signed, marked CA:TRUE. webpki refuses
    // a CA certificate as a server's, even when it is the configured root.
    let pair = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&pair).unwrap();
    let chain = vec![cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pair.serialize_der()));
    let origin = TlsOrigin::start(chain, key).await;
    let dir = temp_dir("ca-as-leaf");
    let ca_file = dir.join("self.pem");
    std::fs::write(&ca_file, cert.pem()).unwrap();
    let v = TestVanish::start_with(&origin.url(), &upstream_toml(Some(&ca_file), None)).await;
    let refused = get(&v.url("/p")).await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(refused.body.contains("CA:FALSE"), "{}", refused.body);
    assert!(tls_errors(&v, "bad_certificate").await >= 1);
    assert_eq!(origin.renders("/p"), 0);
    v.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_name_verifies_an_origin_whose_certificate_names_another_host() {
    let ca = TestCa::new("Vanish test origin CA");
    let (chain, key) = ca.leaf(&["origin.internal"]);
    let origin = TlsOrigin::start(chain, key).await;
    let dir = temp_dir("server-name");
    let ca_file = ca.write(&dir);

    // By the URL's host (127.0.0.1), which the certificate does not name: refused.
    let v = TestVanish::start_with(&origin.url(), &upstream_toml(Some(&ca_file), None)).await;
    let refused = get(&v.url("/n")).await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(refused.body.contains("tls_server_name"), "{}", refused.body);
    assert!(tls_errors(&v, "name_mismatch").await >= 1);
    v.running.shutdown().await;

    let toml = upstream_toml(Some(&ca_file), Some("origin.internal"));
    let v = TestVanish::start_with(&origin.url(), &toml).await;
    let ok = get_with(&v.url("/n"), &[("host", "site.example")]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body, "/n render 1");
    // The name verified is not the Host sent: the origin still gets the client's.
    assert_eq!(origin.seen().last().unwrap().host, "site.example");
    assert!(get_with(&v.url("/n"), &[("host", "site.example")])
        .await
        .is_hit());
    v.running.shutdown().await;
}

fn vanish(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vanish"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vanish serve` with a deadline (one that accepted its configuration would not end).
fn serve_bounded(config: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vanish"))
        .args(["serve", "--config", config])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve --config {config}: still running (the configuration was accepted)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn a_bad_ca_file_is_one_line_and_exit_2_from_serve_and_check_config() {
    let dir = temp_dir("bad-ca");
    let not_pem = dir.join("not-pem.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let broken = dir.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    let unterminated = dir.join("unterminated.pem");
    std::fs::write(&unterminated, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
    let cases = [
        (missing, "cannot read"),
        (not_pem, "holds no PEM certificate"),
        (broken, "certificate 1 is not usable"),
        (unterminated, "is not valid PEM"),
    ];
    for (i, (ca, needle)) in cases.iter().enumerate() {
        let config = dir.join(format!("case{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "[upstream]\nurl = \"https://127.0.0.1:9\"\nca_file = {:?}\n",
                ca.to_str().unwrap()
            ),
        )
        .unwrap();
        let path = config.to_str().unwrap();
        let (code, _, checked) = vanish(&["check-config", path]);
        assert_eq!(code, 2, "{needle}: {checked}");
        assert_eq!(checked.trim().lines().count(), 1, "{checked}");
        assert!(
            checked.contains(&format!("{path}: upstream.ca_file: ")) && checked.contains(needle),
            "{needle}: {checked}"
        );
        let (code, served) = serve_bounded(path);
        assert_eq!(code, 2, "{needle}: {served}");
        assert_eq!(served, checked, "serve and check-config say the same");
    }
    // A good one is described.
    let ca = TestCa::new("Vanish test origin CA");
    let ca_file = ca.write(&dir);
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[upstream]\nurl = \"https://app.internal:8443\"\nca_file = {:?}\ntls_server_name = \"origin.internal\"\n",
            ca_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let (code, out, err) = vanish(&["check-config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("origin tls    verified as \"origin.internal\" against ca_file"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
