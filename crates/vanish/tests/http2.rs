//! HTTP/2 (over TLS by ALPN, and h2c with prior knowledge) has HTTP/1.1's semantics:
//! requests on many streams of one connection are coalesced into one origin fetch, a purge
//! makes the next request a miss; and a rapid-reset flood (a client opening and cancelling
//! streams in a loop) neither starves other clients nor costs more than ordinary requests.

mod common;
mod common_tls;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use common_tls::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_of_one_connection_are_coalesced_and_a_purge_makes_a_miss() {
    let origin = TestOrigin::start(|s, n| {
        Reply::ok(format!("{} #{n}", s.path_and_query))
            .header("cache-control", "max-age=300")
            .header("surrogate-key", "slow")
            .delay(Duration::from_millis(300))
    })
    .await;
    let v = TlsVanish::start(&origin.url(), &["site.test"], "").await;
    let over_tls = tls_connect(v.tls_addr, "site.test", client_config(&[&v.cert], &[b"h2"])).await;
    let tls = h2(over_tls).await;
    let h2c = h2(tokio::net::TcpStream::connect(v.vanish.running.proxy_addr)
        .await
        .unwrap())
    .await;
    for (name, h) in [("tls", &tls), ("h2c", &h2c)] {
        let path = format!("/slow/{name}");
        let all =
            futures_util::future::join_all((0..64).map(|_| h2_get(h, "site.test", &path))).await;
        for got in &all {
            assert_eq!(got.status, 200, "{name}");
            assert_eq!(
                got.body,
                format!("{path} #0"),
                "{name}: one fill served everyone"
            );
        }
        assert_eq!(origin.count(&path), 1, "{name}: the origin was asked once");
        assert!(h2_get(h, "site.test", &path).await.is_hit());

        let purged = purge(&v.vanish, r#"{"selectors":[{"type":"tag","tag":"slow"}]}"#).await;
        assert_eq!(purged.status, 200, "{}", purged.body);
        let after = h2_get(h, "site.test", &path).await;
        assert!(!after.is_hit(), "{name}: {}", after.cache_status());
        assert_eq!(after.body, format!("{path} #1"));
        assert_eq!(origin.count(&path), 2);
    }
}

/// What the attacker saw.
#[derive(Debug, Default)]
struct Attack {
    connections: usize,
    resets: usize,
    closed_by_server: usize,
}

/// Opens streams and cancels each at once (HEADERS then RST_STREAM), on one connection
/// after another, until `stop` or `budget` streams; each connection at most `per_conn`.
async fn rapid_reset(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicUsize>,
    budget: usize,
    per_conn: usize,
) -> Attack {
    let mut a = Attack::default();
    while !stop.load(Ordering::Relaxed) && a.resets < budget {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let Ok((client, conn)) = h2::client::handshake(tcp).await else {
            a.closed_by_server += 1;
            continue;
        };
        let conn = tokio::spawn(conn);
        a.connections += 1;
        let mut on_this = 0;
        let mut client = Some(client);
        let closed = loop {
            if on_this >= per_conn || stop.load(Ordering::Relaxed) {
                break false;
            }
            let Some(ready) = client.take() else {
                break true;
            };
            let mut ready = match ready.ready().await {
                Ok(c) => c,
                Err(_) => break true,
            };
            let req = http::Request::get(format!("http://site.test/attack/{}", a.resets))
                .body(())
                .unwrap();
            let sent = ready.send_request(req, true);
            client = Some(ready);
            match sent {
                Ok((response, mut stream)) => {
                    stream.send_reset(h2::Reason::CANCEL);
                    drop(response);
                    a.resets += 1;
                    on_this += 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => break true,
            }
        };
        // Without the client handle the connection task can end.
        drop(client);
        // The connection task ends with the server's GOAWAY (or our own end).
        let ended = tokio::time::timeout(Duration::from_secs(20), conn).await;
        if closed || matches!(ended, Ok(Ok(Err(_)))) {
            a.closed_by_server += 1;
        }
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_does_not_starve_another_client() {
    let origin = TestOrigin::start(|s, n| match s.path_and_query.starts_with("/attack") {
        true => Reply::ok("target").delay(Duration::from_millis(200)),
        false => Reply::ok(format!("ok {n}")).header("cache-control", "no-store"),
    })
    .await;
    const STREAMS: usize = 50;
    let v = TestVanish::start_with(
        &origin.url(),
        &format!("[limits]\nmax_streams_per_connection = {STREAMS}\n"),
    )
    .await;
    let addr = v.running.proxy_addr;
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    const BUDGET: usize = 20_000;
    const PER_CONN: usize = 5_000;
    let attacker = tokio::spawn(rapid_reset(
        addr,
        stop.clone(),
        progress.clone(),
        BUDGET,
        PER_CONN,
    ));
    eventually("the flood has started", Duration::from_secs(20), || {
        let p = progress.clone();
        async move { p.load(Ordering::Relaxed) >= 50 }
    })
    .await;

    // Another client, HTTP/1.1 and HTTP/2 side by side, while the flood goes on.
    let victim_h2 = h2(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
    for i in 0..30 {
        let got = get(&v.url(&format!("/ok/h1/{i}"))).await;
        assert_eq!(got.status, 200, "{}", got.body);
        let got = h2_get(&victim_h2, "site.test", &format!("/ok/h2/{i}")).await;
        assert_eq!(got.status, 200, "{}", got.body);
    }
    let during = progress.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let attack = attacker.await.unwrap();
    eprintln!("{attack:?}, {during} resets before the victim finished");

    // What the flood cost is bounded by the connection's stream limit, not by the number of
    // streams it opened and cancelled: a cancelled stream's work stops with it (and one
    // cancelled before the server took it up costs no request at all).
    let attack_fetches = origin
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.path_and_query.starts_with("/attack"))
        .count();
    eprintln!("origin fetches for the flood: {attack_fetches}");
    assert!(attack.resets >= 50, "{attack:?}");
    assert!(
        attack_fetches <= STREAMS * attack.connections,
        "{attack_fetches} origin fetches for {attack:?}"
    );
}
