//! The Redis store against a real standalone `redis-server`: objects round-trip, every
//! selector matches exactly what the memory store (the reference) matches, read-after-purge
//! for fills overlapping a purge, soft and `all` purges, and no index entry outlives its
//! object.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use vanish_engine::store::Inserted;
use vanish_engine::{PurgeMode, PurgeRequest, Selector, Store};
use vanish_memory::MemoryStore;
use vanish_redis::testing::{raw_command, RedisServer};
use vanish_redis::RedisConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_and_selectors_match_the_memory_store() {
    let server = RedisServer::start();
    let redis = connect(standalone(&server.url(), "diff", false)).await;
    let mem = MemoryStore::new(64 << 20);
    fill_both(&redis, &mem).await;
    let r = look(&redis, "http://a.example/blog/1")
        .await
        .expect("stored");
    assert_eq!(r.variants.len(), 3, "three variants");
    let fr = r.select(&lang_headers(Some("fr"))).expect("fr variant");
    assert_eq!(&fr.body[..], b"http://a.example/blog/1 Some(\"fr\")");
    assert_eq!(
        redis.refresh_stats().await.unwrap().objects,
        corpus().len() as u64
    );

    // Dry runs: every selector counts what the reference counts.
    for sel in selectors() {
        let mut req = PurgeRequest::new(vec![sel.clone()]);
        req.dry_run = true;
        let req = Arc::new(req);
        let want = mem.purge(req.clone()).await.unwrap().matched;
        let got = redis.purge(req).await.unwrap().matched;
        assert_eq!(got, want, "dry run of {sel:?}");
    }
    // A union counts each object once.
    let mut union = PurgeRequest::new(vec![Selector::tag("t1"), Selector::prefix("/blog")]);
    union.dry_run = true;
    let union = Arc::new(union);
    assert_eq!(
        redis.purge(union.clone()).await.unwrap().matched,
        mem.purge(union).await.unwrap().matched
    );

    // Real purges, one after the other: the same objects remain.
    for sel in selectors() {
        let req = Arc::new(PurgeRequest::new(vec![sel.clone()]));
        let want = mem.purge(req.clone()).await.unwrap().matched;
        let got = redis.purge(req).await.unwrap().matched;
        assert_eq!(got, want, "purge of {sel:?}");
        assert_eq!(stored(&redis).await, stored(&mem).await, "after {sel:?}");
    }
    assert!(stored(&redis).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_overlapping_a_purge_are_not_stored_fresh() {
    let server = RedisServer::start();
    let cfg = RedisConfig {
        purge_log_len: 4,
        ..standalone(&server.url(), "rap", false)
    };
    let s = connect(cfg).await;
    let hard = |sel: Selector| Arc::new(PurgeRequest::new(vec![sel]));
    let soft = |sel: Selector| {
        let mut r = PurgeRequest::new(vec![sel]);
        r.mode = PurgeMode::Soft;
        Arc::new(r)
    };

    // Hard purge while the fill runs: dropped.
    let e = s.epoch();
    s.purge(hard(Selector::tag("news"))).await.unwrap();
    let o = object("http://h/a", None, &["news"], 60);
    assert_eq!(s.insert(o, e).await.unwrap(), Inserted::Dropped);
    assert!(!has(&s, "http://h/a", None).await);
    // A purge that does not match: stored.
    let e = s.epoch();
    s.purge(hard(Selector::path("/other"))).await.unwrap();
    assert_eq!(
        s.insert(object("http://h/a", None, &["news"], 60), e)
            .await
            .unwrap(),
        Inserted::Fresh
    );
    // Soft purge while the fill runs: stored stale.
    let e = s.epoch();
    s.purge(soft(Selector::host("h"))).await.unwrap();
    assert_eq!(
        s.insert(object("http://h/b", None, &[], 60), e)
            .await
            .unwrap(),
        Inserted::MarkedStale
    );
    let r = look(&s, "http://h/b").await.unwrap();
    assert!(r.variants[0].soft_purged_at().is_some(), "stale in Redis");
    // A fill started after the purge is stored fresh.
    let e = s.epoch();
    assert_eq!(
        s.insert(object("http://h/c", None, &["news"], 60), e)
            .await
            .unwrap(),
        Inserted::Fresh
    );
    // A fill older than the bucket's purge log (4 entries): conservatively dropped.
    let e = s.epoch();
    for i in 0..6 {
        s.purge(hard(Selector::path(&format!("/x{i}"))))
            .await
            .unwrap();
    }
    assert_eq!(
        s.insert(object("http://h/d", None, &[], 60), e)
            .await
            .unwrap(),
        Inserted::Dropped
    );
    // Soft purge of stored objects marks them; a later hard `all` removes everything in O(1).
    s.purge(soft(Selector::tag("news"))).await.unwrap();
    let a = look(&s, "http://h/a").await.unwrap();
    assert!(a.variants[0].soft_purged_at().is_some());
    let e = s.epoch();
    assert_eq!(
        s.insert(object("http://h/e", None, &[], 60), e)
            .await
            .unwrap(),
        Inserted::Fresh
    );
    let report = s.purge(hard(Selector::all())).await.unwrap();
    assert_eq!(report.matched, 4, "a, b, c, e");
    for p in ["a", "b", "c", "e"] {
        assert!(look(&s, &format!("http://h/{p}")).await.is_none(), "{p}");
    }
    // Soft `all`: objects stored before it are stale, later ones fresh.
    let e = s.epoch();
    s.insert(object("http://h/f", None, &[], 60), e)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.purge(soft(Selector::all())).await.unwrap();
    let f = look(&s, "http://h/f").await.unwrap();
    assert!(f.variants[0].soft_purged_at().is_some());
}

fn keys(port: u16) -> Vec<String> {
    let r = raw_command(port, "KEYS *").expect("KEYS answered");
    r.lines()
        .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_entries_expire_with_their_objects() {
    let server = RedisServer::start();
    let cfg = RedisConfig {
        grace: Duration::ZERO,
        ..standalone(&server.url(), "leak", false)
    };
    let s = connect(cfg).await;
    // Long enough that none expires (and no background sweep unindexes one) before they are
    // counted below, however slowly the fills run on a busy machine.
    const MAX_AGE: u32 = 5;
    // When Redis has let every object go: its expiry, plus the time its insert took (the TTL
    // is counted from when the store computed it, Redis counts from when it runs the script).
    let mut all_gone_by = std::time::SystemTime::now();
    let mut objects = Vec::new();
    for i in 0..50 {
        let u = format!("http://h{}/p/{}?q={i}", i % 3, i % 7);
        objects.push(object(&u, Some("en"), &["t", &format!("u{i}")], MAX_AGE));
    }
    // Replacing a variant leaves one object, not two.
    for _ in 0..3 {
        objects.push(object("http://h0/p/0?q=0", Some("en"), &["t"], MAX_AGE));
    }
    for o in objects {
        let e = s.epoch();
        let expiry = o.retain_until();
        let t = Instant::now();
        s.insert(o, e).await.unwrap();
        all_gone_by = all_gone_by.max(expiry + t.elapsed());
    }
    assert_eq!(s.refresh_stats().await.unwrap().objects, 50);
    assert!(keys(server.port).len() > 50);
    // Let them all expire (time must pass: a sleep), then sweep.
    let wait = all_gone_by
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(300)).await;
    s.sweep().await.unwrap();
    let left: Vec<String> = keys(server.port)
        .into_iter()
        .filter(|k| !k.ends_with(":m") && !k.ends_with(":seq") && !k.ends_with(":layout"))
        .filter(|k| !k.ends_with(":log") && !k.ends_with(":c"))
        .collect();
    assert!(left.is_empty(), "leaked keys: {left:?}");
    assert_eq!(s.refresh_stats().await.unwrap().objects, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_must_agree_on_the_layout() {
    let server = RedisServer::start();
    let _a = connect(standalone(&server.url(), "lay", false)).await;
    let cfg = RedisConfig {
        buckets: 8,
        ..standalone(&server.url(), "lay", false)
    };
    let e = tokio::time::timeout(
        Duration::from_secs(20),
        vanish_redis::RedisStore::connect(cfg),
    )
    .await
    .expect("answers within 20 s")
    .err()
    .expect("refused");
    assert!(e.to_string().contains("buckets"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_objects_leave_no_index_entries() {
    let server = RedisServer::start();
    let s = connect(standalone(&server.url(), "bury", false)).await;
    for i in 0..200 {
        let u = format!("http://h{}/sec{}/p{i}?q={}", i % 4, i % 3, i % 5);
        let e = s.epoch();
        s.insert(
            object(
                &u,
                Some("en"),
                &["all-of-them", &format!("t{}", i % 7)],
                300,
            ),
            e,
        )
        .await
        .unwrap();
    }
    let purge = |sel: Selector| {
        let s = s.clone();
        async move {
            s.purge(Arc::new(PurgeRequest::new(vec![sel])))
                .await
                .unwrap()
                .matched
        }
    };
    let a = purge(Selector::tag("t3")).await;
    let b = purge(Selector::prefix("/sec1/")).await;
    let c = purge(Selector::host("h2").header("accept-language", "en")).await;
    let d = purge(Selector::path("/sec0/p0").any_query()).await;
    let e = purge(Selector::tag("all-of-them")).await;
    assert_eq!(a + b + c + d + e, 200, "every object purged exactly once");
    // Re-fill one URL while its old object's entries wait in the graveyard.
    let ep = s.epoch();
    s.insert(
        object("http://h0/sec0/p0?q=0", Some("en"), &["again"], 300),
        ep,
    )
    .await
    .unwrap();
    s.sweep().await.unwrap();
    assert!(
        has(&s, "http://h0/sec0/p0?q=0", Some("en")).await,
        "the new object survives the sweep"
    );
    let left: Vec<String> = keys(server.port)
        .into_iter()
        .filter(|k| !k.ends_with(":m") && !k.ends_with(":seq") && !k.ends_with(":layout"))
        .filter(|k| !k.ends_with(":log") && !k.ends_with(":c"))
        .collect();
    // Only the new object's own keys remain: its body, resource, record, expiry, path, host
    // and tag entries (all in one bucket).
    assert_eq!(left.len(), 7, "{left:?}");
    assert!(left.iter().any(|k| k.ends_with(":t:again")), "{left:?}");
    assert_eq!(s.refresh_stats().await.unwrap().objects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_through_a_sentinel() {
    let sentinel = vanish_redis::testing::RedisSentinel::start();
    let s = connect(standalone(&sentinel.url(), "sentinel", true)).await;
    let e = s.epoch();
    s.insert(object("http://h/s", Some("fr"), &["t"], 60), e)
        .await
        .unwrap();
    assert!(has(&s, "http://h/s", Some("fr")).await);
    let report = s
        .purge(Arc::new(PurgeRequest::new(vec![Selector::tag("t")])))
        .await
        .unwrap();
    assert_eq!(report.matched, 1);
    assert!(!has(&s, "http://h/s", Some("fr")).await);
    assert!(
        keys(sentinel.primary.port)
            .iter()
            .any(|k| k.contains("{sentinel")),
        "the keys live on the primary the Sentinel named"
    );
}
