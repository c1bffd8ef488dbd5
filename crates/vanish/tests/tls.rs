//! The TLS listener: HTTP/1.1 and HTTP/2 by ALPN with hits, certificates chosen by SNI,
//! one-line errors with exit 2 for unusable certificates, and reloading the certificates
//! (in process, and with SIGHUP to the real binary) while a download on the old certificate
//! goes on.

mod common;
mod common_tls;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use common_tls::*;
use http_body_util::BodyExt;

fn cacheable(s: &Seen, n: usize) -> Reply {
    Reply::ok(format!("page {} #{n}", s.path_and_query)).header("cache-control", "max-age=300")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_hits_through_tls_as_alpn_chooses() {
    let origin = TestOrigin::start(cacheable).await;
    let v = TlsVanish::start(&origin.url(), &["site.test"], "").await;

    let s = tls_connect(
        v.tls_addr,
        "site.test",
        client_config(&[&v.cert], &[b"h2", b"http/1.1"]),
    )
    .await;
    assert_eq!(alpn(&s).as_deref(), Some(&b"h2"[..]));
    let h = h2(s).await;
    let first = h2_get(&h, "site.test", "/a").await;
    let second = h2_get(&h, "site.test", "/a").await;
    assert_eq!((first.status, second.status), (200, 200));
    assert!(!first.is_hit(), "{}", first.cache_status());
    assert!(second.is_hit(), "{}", second.cache_status());
    assert_eq!(second.body, "page /a #0");

    // HTTP/1.1 by ALPN, keep-alive: the object HTTP/2 stored is a hit here too.
    let s = tls_connect(
        v.tls_addr,
        "site.test",
        client_config(&[&v.cert], &[b"http/1.1"]),
    )
    .await;
    assert_eq!(alpn(&s).as_deref(), Some(&b"http/1.1"[..]));
    let mut h = h1(s).await;
    let third = h1_get(&mut h, "site.test", "/a").await;
    assert!(third.is_hit(), "{}", third.cache_status());
    assert!(!h1_get(&mut h, "site.test", "/b").await.is_hit());
    assert!(h1_get(&mut h, "site.test", "/b").await.is_hit());

    // No ALPN at all: HTTP/1.1.
    let s = tls_connect(v.tls_addr, "site.test", client_config(&[&v.cert], &[])).await;
    assert_eq!(alpn(&s), None);
    let mut h = h1(s).await;
    assert!(h1_get(&mut h, "site.test", "/a").await.is_hit());
    assert_eq!(origin.count("/a"), 1);
    let proto = |path: &str| {
        let seen = origin.seen.lock().unwrap();
        let s = seen.iter().find(|s| s.path_and_query == path).unwrap();
        s.headers["x-forwarded-proto"].to_str().unwrap().to_owned()
    };
    assert_eq!(proto("/a"), "https");

    // The plain listener's clients speak http: their pages are their own (an origin's
    // redirect to https is never served to a TLS client, nor the other way round).
    let plain = get_with(&v.vanish.url("/a"), &[("host", "site.test")]).await;
    assert_eq!(plain.body, "page /a #1");
    assert_eq!(origin.count("/a"), 2);
    let seen = origin.last();
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate_and_no_sni_gets_the_first() {
    let origin = TestOrigin::start(cacheable).await;
    let dir = temp_dir("sni");
    let a = make_cert(&["a.test", "127.0.0.1"]);
    let b = make_cert(&["b.test", "*.b.test"]);
    let (ac, ak) = write_cert(&dir, "a", &a);
    let (bc, bk) = write_cert(&dir, "b", &b);
    let toml = format!(
        "{}[[server.certs]]\ncert = {:?}\nkey = {:?}\n",
        tls_toml(&ac, &ak),
        bc.to_str().unwrap(),
        bk.to_str().unwrap()
    );
    let v = TestVanish::start_with(&origin.url(), &toml).await;
    let addr = v.running.tls_addr.unwrap();
    let config = || client_config(&[&a, &b], &[b"h2"]);
    for (sni, want) in [
        ("a.test", &a),
        ("b.test", &b),
        ("www.b.test", &b),
        // An IP address sends no SNI: the first certificate, the default.
        ("127.0.0.1", &a),
    ] {
        let s = tls_connect(addr, sni, config()).await;
        assert!(peer_cert(&s) == want.der, "{sni} got the wrong certificate");
        let h = h2(s).await;
        let got = h2_get(&h, sni, "/p").await;
        assert_eq!(got.status, 200, "{sni}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_ends_is_closed_at_the_header_read_timeout() {
    let origin = TestOrigin::start(cacheable).await;
    let v = TlsVanish::start(
        &origin.url(),
        &["site.test"],
        "[limits]\nheader_read_timeout = \"1s\"\n",
    )
    .await;
    // The start of a ClientHello, then nothing.
    let s = connect_and_send(v.tls_addr, b"\x16\x03\x01\x02\x00\x01").await;
    assert_eq!(read_to_close(s).await, "");
    // Nothing at all.
    let s = connect_and_send(v.tls_addr, b"").await;
    assert_eq!(read_to_close(s).await, "");
    // The listener goes on serving.
    let s = tls_connect(v.tls_addr, "site.test", client_config(&[&v.cert], &[b"h2"])).await;
    let h = h2(s).await;
    assert_eq!(h2_get(&h, "site.test", "/after").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_the_certificate_while_a_download_on_the_old_one_finishes() {
    const BIG: usize = 24 << 20;
    let body: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    let expected = body.clone();
    let origin = TestOrigin::start(move |s, n| match s.path_and_query.as_str() {
        "/big" => Reply::ok(body.clone()).header("cache-control", "no-store"),
        _ => cacheable(s, n),
    })
    .await;
    let v = TlsVanish::start(&origin.url(), &["site.test"], "").await;
    let new = make_cert(&["site.test"]);
    // A client configuration per connection: a shared one would resume the first session,
    // and a resumed session shows the certificate of the session it resumes.
    let config = || client_config(&[&v.cert, &new], &[b"http/1.1"]);

    // A long download starts on the old certificate; the client reads only its beginning.
    let s = tls_connect(v.tls_addr, "site.test", config()).await;
    assert!(peer_cert(&s) == v.cert.der);
    let mut old = h1(s).await;
    old.ready().await.unwrap();
    let res = old
        .send_request(get_req("site.test", "/big", false))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut res_body = res.into_body();
    let mut got = Vec::with_capacity(BIG);
    while got.is_empty() {
        let frame = res_body.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            got.extend_from_slice(&data);
        }
    }
    assert!(got.len() < BIG, "the download is still going");

    // The files change and the reload picks them up: new handshakes see the new certificate.
    write_cert(&v.dir, "site", &new);
    v.vanish.running.reload().expect("the new files load");
    let s = tls_connect(v.tls_addr, "site.test", config()).await;
    assert!(
        peer_cert(&s) == new.der,
        "a new connection sees the new certificate"
    );
    let mut fresh = h1(s).await;
    assert_eq!(h1_get(&mut fresh, "site.test", "/a").await.status, 200);

    // A bad file: the reload fails naming it, and the certificate in use stays.
    std::fs::write(v.dir.join("site.key"), "not a key\n").unwrap();
    let e = v.vanish.running.reload().unwrap_err().to_string();
    assert!(e.contains("server.tls_key") && e.contains("keeping"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    let s = tls_connect(v.tls_addr, "site.test", config()).await;
    assert!(peer_cert(&s) == new.der);

    // The old connection's download ends intact, and the connection goes on serving.
    while let Some(frame) = res_body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            got.extend_from_slice(&data);
        }
    }
    assert_eq!(got.len(), BIG);
    assert!(got == expected, "the download arrived intact");
    assert_eq!(h1_get(&mut old, "site.test", "/a").await.status, 200);
}

/// Runs the binary to its end (a configuration it refuses ends at once).
fn vanish(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vanish"))
        .args(args)
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
            panic!("{args:?}: still running after 30s (the configuration was accepted)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn unusable_certificates_are_one_line_and_exit_2_in_serve_and_check_config() {
    let dir = temp_dir("badcert");
    let a = make_cert(&["a.test"]);
    let b = make_cert(&["b.test"]);
    let (ac, ak) = write_cert(&dir, "a", &a);
    let (_, bk) = write_cert(&dir, "b", &b);
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    let missing = dir.join("missing.pem");
    let p = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let pair = |c: &str, k: &str| {
        format!("listen_tls = \"127.0.0.1:0\"\ntls_cert = {c:?}\ntls_key = {k:?}\n")
    };
    let cases = [
        (
            pair(&p(&ac), &p(&bk)),
            format!(
                "server.tls_key: {} is not the private key of {}",
                p(&bk),
                p(&ac)
            ),
        ),
        (
            pair(&p(&missing), &p(&ak)),
            format!("server.tls_cert: cannot read {}", p(&missing)),
        ),
        (
            pair(&p(&junk), &p(&ak)),
            format!("server.tls_cert: {}: no certificate in it", p(&junk)),
        ),
        (
            pair(&p(&ac), &p(&ac)),
            format!("server.tls_key: {}: no private key in it", p(&ac)),
        ),
        (
            pair(&p(&ac), &p(&junk)),
            format!("server.tls_key: {}: no private key in it", p(&junk)),
        ),
        (
            "listen_tls = \"127.0.0.1:0\"\n".to_owned(),
            "server.listen_tls: the TLS listener needs a certificate".to_owned(),
        ),
        (
            format!("tls_cert = {:?}\ntls_key = {:?}\n", p(&ac), p(&ak)),
            "server.tls_cert: a certificate without a TLS listener".to_owned(),
        ),
        (
            format!("tls_cert = {:?}\n", p(&ac)),
            "server.tls_cert: a certificate needs its key".to_owned(),
        ),
        (
            format!(
                "{}[[server.certs]]\ncert = {:?}\nkey = {:?}\n",
                pair(&p(&ac), &p(&ak)),
                p(&ac),
                p(&bk)
            ),
            format!(
                "server.certs[0].key: {} is not the private key of {}",
                p(&bk),
                p(&ac)
            ),
        ),
    ];
    for (i, (server, needle)) in cases.iter().enumerate() {
        let f = dir.join(format!("case{i}.toml"));
        std::fs::write(
            &f,
            format!("[upstream]\nurl = \"http://127.0.0.1:9\"\n[server]\n{server}"),
        )
        .unwrap();
        let path = p(&f);
        let (code, checked) = vanish(&["check-config", &path]);
        assert_eq!(code, 2, "{server}: {checked}");
        assert_eq!(checked.trim().lines().count(), 1, "{checked}");
        assert!(
            checked.contains(&format!("{path}: {needle}")),
            "{server}: {checked}"
        );
        let (code, served) = vanish(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
            &path,
        ]);
        assert_eq!(code, 2, "{server}: {served}");
        assert_eq!(served, checked, "serve and check-config say the same");
    }
    // A good pair: the check names the listener and the certificate's names.
    let good = dir.join("good.toml");
    std::fs::write(&good, format!("[server]\n{}", pair(&p(&ac), &p(&ak)))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vanish"))
        .args(["check-config", &p(&good)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("listen tls    127.0.0.1:0") && text.contains("a.test"),
        "{text}"
    );

    // The same from the flags.
    let (code, err) = vanish(&[
        "serve",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen-tls",
        "127.0.0.1:0",
        "--tls-cert",
        &p(&ac),
        "--tls-key",
        &p(&bk),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("--tls-key: {} is not the private key of", p(&bk))),
        "{err}"
    );
    let (code, err) = vanish(&[
        "serve",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen-tls",
        "127.0.0.1:0",
        "--tls-cert",
        &p(&ac),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--tls-cert: a certificate needs its key"),
        "{err}"
    );
}

/// `vanish serve` with a TLS listener; its stderr lines arrive on the channel.
fn spawn_tls_serve(
    upstream: &str,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vanish"))
        .args([
            "serve",
            "--upstream",
            upstream,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--listen-tls",
            "127.0.0.1:0",
        ])
        .args([
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// The next stderr line containing `needle` (within 30 s).
fn line_with(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needle:?} within 30s ({e})"),
        }
    }
}

/// A child process killed if the test ends early (a failed assertion), so none is left behind.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn kill(sig: &str, child: &Reaped) {
    let child = &child.0;
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificates_of_the_real_binary() {
    let origin = TestOrigin::start(cacheable).await;
    let dir = temp_dir("sighup");
    let old = make_cert(&["site.test"]);
    let new = make_cert(&["site.test"]);
    let (c, k) = write_cert(&dir, "site", &old);
    let (child, lines) = spawn_tls_serve(&origin.url(), &c, &k);
    let mut child = Reaped(child);
    let started = line_with(&lines, "vanish started");
    let addr: std::net::SocketAddr = started
        .split("tls_addr=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the start line names tls_addr")
        .parse()
        .expect("tls_addr is IP:PORT");
    let config = || client_config(&[&old, &new], &[b"h2"]);
    let s = tls_connect(addr, "site.test", config()).await;
    assert!(peer_cert(&s) == old.der);
    // A connection opened before the reload keeps working after it.
    let before = h2(s).await;
    assert_eq!(h2_get(&before, "site.test", "/x").await.status, 200);

    write_cert(&dir, "site", &new);
    kill("-HUP", &child);
    line_with(&lines, "certificates reloaded");
    let s = tls_connect(addr, "site.test", config()).await;
    assert!(
        peer_cert(&s) == new.der,
        "after SIGHUP new connections get the new certificate"
    );
    let got = h2_get(&before, "site.test", "/x").await;
    assert!(got.is_hit(), "{}", got.cache_status());

    // A bad key: one error line, and the certificate in use stays.
    std::fs::write(
        &k,
        "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    kill("-HUP", &child);
    let failed = line_with(&lines, "reload failed");
    assert!(
        failed.contains("--tls-key") && failed.contains("keeping the certificates in use"),
        "{failed}"
    );
    let s = tls_connect(addr, "site.test", config()).await;
    assert!(peer_cert(&s) == new.der);

    kill("-TERM", &child);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}
