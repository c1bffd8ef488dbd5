//! The L1 tier on a real standalone server: two nodes share Redis; a purge on one reaches the
//! other's L1 well within the lease; an outage keeps the node serving (L1, then misses), fails
//! purges with an error instead of a false success, and recovers by itself.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use vanish_engine::{PurgeRequest, Selector, Store};
use vanish_redis::testing::{raw_command, RedisServer};
use vanish_redis::RedisConfig;

/// The L1 lease of these nodes (the default).
const LEASE: Duration = Duration::from_millis(500);

#[test]
fn the_nodes_run_the_default_lease() {
    assert_eq!(RedisConfig::default().l1_lease, LEASE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_copies_are_purged_by_other_nodes() {
    let server = RedisServer::start();
    let a = connect(standalone(&server.url(), "l1", true)).await;
    let b = connect(standalone(&server.url(), "l1", true)).await;
    eventually("leases hold", PATIENCE, || async {
        a.l1_valid() && b.l1_valid()
    })
    .await;
    in_l1("the copy on b", &b, || async {
        let e = a.epoch();
        a.insert(object("http://h/p", Some("fr"), &["t"], 300), e)
            .await
            .unwrap();
        assert!(has(&b, "http://h/p", Some("fr")).await, "L2 hit on b");
        // Remove it behind the store's back: b still has it, so it comes from b's L1.
        assert!(raw_command(server.port, "FLUSHALL").is_some());
        has(&b, "http://h/p", Some("fr")).await
    })
    .await;
    // A purge through a reaches b's L1 (Redis itself holds nothing any more).
    let url = Selector::url("http://h/p").unwrap();
    a.purge(Arc::new(PurgeRequest::new(vec![url])))
        .await
        .unwrap();
    let acked = Instant::now();
    // No lookup that starts more than the lease (500 ms) after the ack finds it.
    gone_within("the purged copy on b", LEASE, acked, || async {
        has(&b, "http://h/p", Some("fr")).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_degrades_and_recovers() {
    let mut server = RedisServer::start();
    let cfg = RedisConfig {
        timeout: Duration::from_millis(500),
        ..standalone(&server.url(), "out", true)
    };
    let s = connect(cfg).await;
    eventually("lease holds", PATIENCE, || async { s.l1_valid() }).await;
    let e = s.epoch();
    s.insert(object("http://h/a", None, &[], 300), e)
        .await
        .unwrap();
    assert!(has(&s, "http://h/a", None).await);
    assert!(s.health().is_ok());
    // Purges before the outage raise what the node knows of the purge sequence; a fill that
    // starts now and ends after the restart must still see purges made after the restart.
    for i in 0..3 {
        let sel = Selector::tag(&format!("before-{i}"));
        s.purge(Arc::new(PurgeRequest::new(vec![sel])))
            .await
            .unwrap();
    }
    let long_fill = s.epoch();

    server.kill();
    // No heartbeat sent from now on comes back: the lease runs out at most one lease from now.
    let killed = Instant::now();
    eventually("health reports the outage", PATIENCE, || async {
        s.health().is_err()
    })
    .await;
    let msg = s.health().unwrap_err().to_string();
    assert!(msg.contains("redis unreachable"), "{msg}");
    // Purges fail, quickly and clearly.
    let t = Instant::now();
    let err = s
        .purge(Arc::new(PurgeRequest::new(vec![Selector::tag("x")])))
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        err.to_string().contains("not applied") || err.to_string().contains("redis"),
        "{err}"
    );
    // Lookups never fail: the L1 is emptied within the lease, then they miss.
    gone_within("the L1 copy without proof", LEASE, killed, || async {
        look(&s, "http://h/a").await.is_some()
    })
    .await;
    // Fills during the outage are kept in the L1 (for at most one lease each: an attempt
    // whose lease runs out between the fill and the lookup misses, and is made again).
    eventually("an L1 hit during the outage", PATIENCE, || async {
        let e = s.epoch();
        s.insert(object("http://h/b", None, &[], 300), e)
            .await
            .unwrap();
        has(&s, "http://h/b", None).await
    })
    .await;

    server.restart();
    eventually("reconnects by itself", PATIENCE, || async {
        s.health().is_ok()
    })
    .await;
    let report = s
        .purge(Arc::new(PurgeRequest::new(vec![Selector::all()])))
        .await
        .expect("purges work again");
    assert_eq!(report.matched, 0, "the restarted server is empty");
    s.purge(Arc::new(PurgeRequest::new(vec![Selector::tag("late")])))
        .await
        .unwrap();
    let late = object("http://h/late", None, &["late"], 300);
    assert_eq!(
        s.insert(late, long_fill).await.unwrap(),
        vanish_engine::store::Inserted::Dropped,
        "a fill spanning a restart and a purge is not stored"
    );
    let e = s.epoch();
    s.insert(object("http://h/c", None, &[], 300), e)
        .await
        .unwrap();
    assert!(has(&s, "http://h/c", None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_stay_in_the_l1() {
    let server = RedisServer::start();
    let cfg = |l1| RedisConfig {
        max_object_size: 10,
        ..standalone(&server.url(), "big", l1)
    };
    let a = connect(cfg(true)).await;
    let b = connect(cfg(false)).await;
    eventually("lease holds", PATIENCE, || async { a.l1_valid() }).await;
    in_l1("kept in a's L1", &a, || async {
        let e = a.epoch();
        // The body ("http://h/big None", 17 bytes) is over the 10-byte limit.
        a.insert(object("http://h/big", None, &["t"], 300), e)
            .await
            .unwrap();
        has(&a, "http://h/big", None).await
    })
    .await;
    assert!(
        !has(&b, "http://h/big", None).await,
        "never written to Redis"
    );
    // And purges still reach it.
    b.purge(Arc::new(PurgeRequest::new(vec![Selector::tag("t")])))
        .await
        .unwrap();
    let acked = Instant::now();
    gone_within("purged from a's L1", LEASE, acked, || async {
        has(&a, "http://h/big", None).await
    })
    .await;
}
