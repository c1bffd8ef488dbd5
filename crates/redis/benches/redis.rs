//! Benchmarks of the Redis store (run by `bench/redis.sh`; results in
//! `docs/benchmarks-redis.md`). Starts its own `redis-server` processes on loopback ports:
//!
//! 1. L1 hit throughput next to the memory store (lookups per second, 2 threads);
//! 2. L2 hit latency (no L1) next to one Redis round trip (`PING`, and `GET` of a same-size
//!    value);
//! 3. purge propagation: three nodes on one Redis, purges issued in turn by each node; the
//!    acknowledgement latency, and the delay after it until the other two nodes' L1s applied
//!    the purge;
//! 4. a tag purge of 10,000 objects among 100,000 (standalone and a 3-shard Cluster);
//! 5. the `SCAN MATCH` + `DEL` delete users do today, on the same number of keys.
//!
//! Env: `OBJECTS` (10000 tagged), `FILLER` (90000 others), `PURGES` (600), `LOOKUPS`
//! (300000 per round), `ROUNDS` (3), `SKIP_CLUSTER=1`, `PARTS` (`1,2,3,4`: parts 4 and 5 run
//! together).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use fred::prelude::*;
use fred::types::scan::Scanner;
use futures_util::StreamExt;
use http::HeaderMap;
use vanish_engine::{CacheConfig, CachedObject, PurgeRequest, ResourceKey, Selector, Store};
use vanish_memory::MemoryStore;
use vanish_redis::testing::{RedisCluster, RedisServer};
use vanish_redis::{RedisConfig, RedisStore};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn object(url: &str, tags: &str, body: &Bytes) -> CachedObject {
    let res = http::Response::builder()
        .header("cache-control", "max-age=3600")
        .header("surrogate-key", tags)
        .body(body.clone())
        .unwrap();
    CachedObject::from_response(
        ResourceKey::parse_url(url).unwrap(),
        &HeaderMap::new(),
        res,
        &CacheConfig::default(),
        SystemTime::now(),
    )
    .unwrap()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn connect(cfg: RedisConfig) -> RedisStore {
    RedisStore::connect(cfg).await.expect("connects")
}

/// Inserts objects concurrently (64 in flight).
async fn fill<S: Store + Clone>(s: &S, objects: Vec<CachedObject>) {
    let mut it = objects.into_iter();
    loop {
        let batch: Vec<_> = it.by_ref().take(64).collect();
        if batch.is_empty() {
            return;
        }
        let calls = batch.into_iter().map(|o| {
            let s = s.clone();
            async move {
                let e = s.epoch();
                s.insert(o, e).await.expect("insert")
            }
        });
        futures_util::future::join_all(calls).await;
    }
}

/// Lookups per second over `keys`, on two tasks.
async fn hit_rate<S: Store + Clone>(s: &S, keys: &Arc<Vec<ResourceKey>>, lookups: usize) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..2)
        .map(|t| {
            let (s, keys) = (s.clone(), keys.clone());
            tokio::spawn(async move {
                for i in 0..lookups / 2 {
                    let k = &keys[(i * 2 + t) % keys.len()];
                    let r = s.lookup(k).await.unwrap();
                    assert!(r.is_some(), "hit");
                    if i % 256 == 0 {
                        // A proxy yields at every socket read; so does this loop, now and then,
                        // letting the heartbeat task run.
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    lookups as f64 / start.elapsed().as_secs_f64()
}

async fn l1_vs_memory(url: &str, lookups: usize, rounds: usize) {
    let body = Bytes::from(vec![b'x'; 1024]);
    let mem = MemoryStore::new(256 << 20);
    let cfg = RedisConfig {
        url: url.to_owned(),
        prefix: "bench-l1".into(),
        ..Default::default()
    };
    let redis = connect(cfg).await;
    let urls: Vec<String> = (0..1000).map(|i| format!("http://site/page/{i}")).collect();
    fill(&mem, urls.iter().map(|u| object(u, "t", &body)).collect()).await;
    fill(&redis, urls.iter().map(|u| object(u, "t", &body)).collect()).await;
    let keys: Arc<Vec<ResourceKey>> = Arc::new(
        urls.iter()
            .map(|u| ResourceKey::parse_url(u).unwrap())
            .collect(),
    );
    while !redis.l1_valid() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for k in keys.iter() {
        redis.lookup(k).await.unwrap(); // promote into the L1
    }
    let drops_before = redis.l1_drops();
    let (mut m, mut r) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate the order, so neither store always runs first.
        if round % 2 == 0 {
            m.push(hit_rate(&mem, &keys, lookups).await);
            r.push(hit_rate(&redis, &keys, lookups).await);
        } else {
            r.push(hit_rate(&redis, &keys, lookups).await);
            m.push(hit_rate(&mem, &keys, lookups).await);
        }
    }
    let rounds_m: Vec<String> = m.iter().map(|x| format!("{x:.0}")).collect();
    let rounds_r: Vec<String> = r.iter().map(|x| format!("{x:.0}")).collect();
    let (m, r) = (median(m), median(r));
    println!("## 1. Hit throughput: L1 vs memory store (store level, 2 tasks, 1 KiB objects)\n");
    println!("| store | lookups/s (median of {rounds}) | rounds |\n| --- | --- | --- |");
    println!("| memory store | {m:.0} | {} |", rounds_m.join(", "));
    println!("| Redis store, L1 hit | {r:.0} | {} |", rounds_r.join(", "));
    println!(
        "\nL1 / memory: {:.1}% (target: within 10%: {}); L1 emptied {} times during the run\n",
        100.0 * r / m,
        if r >= 0.9 * m { "met" } else { "not met" },
        redis.l1_drops() - drops_before
    );
}

async fn l2_latency(url: &str, n: usize) {
    let body = Bytes::from(vec![b'x'; 1024]);
    let cfg = RedisConfig {
        url: url.to_owned(),
        prefix: "bench-l2".into(),
        l1_capacity: 0,
        ..Default::default()
    };
    let redis = connect(cfg).await;
    let mem = MemoryStore::new(64 << 20);
    let urls: Vec<String> = (0..1000).map(|i| format!("http://site/l2/{i}")).collect();
    fill(&redis, urls.iter().map(|u| object(u, "t", &body)).collect()).await;
    fill(&mem, urls.iter().map(|u| object(u, "t", &body)).collect()).await;
    let keys: Vec<ResourceKey> = urls
        .iter()
        .map(|u| ResourceKey::parse_url(u).unwrap())
        .collect();
    let client = Builder::from_config(Config::from_url(url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    let blob = Bytes::from(vec![b'y'; 1500]);
    let _: () = client
        .set("bench-l2-blob", blob, None, None, false)
        .await
        .unwrap();
    let trivial: String = client
        .script_load("return redis.call('GET', KEYS[1])")
        .await
        .unwrap();
    let mut lua = Vec::new();
    let (mut l2, mut memt, mut ping, mut get) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let k = &keys[i % keys.len()];
        let t = Instant::now();
        assert!(redis.lookup(k).await.unwrap().is_some());
        l2.push(t.elapsed());
        let t = Instant::now();
        assert!(mem.lookup(k).await.unwrap().is_some());
        memt.push(t.elapsed());
        let t = Instant::now();
        let _: String = client.ping(None).await.unwrap();
        ping.push(t.elapsed());
        let t = Instant::now();
        let _: Bytes = client.get("bench-l2-blob").await.unwrap();
        get.push(t.elapsed());
        let t = Instant::now();
        let _: Bytes = client
            .evalsha(trivial.as_str(), "bench-l2-blob", Vec::<Value>::new())
            .await
            .unwrap();
        lua.push(t.elapsed());
    }
    for v in [&mut l2, &mut memt, &mut ping, &mut get, &mut lua] {
        v.sort();
    }
    println!("## 2. L2 hit latency (no L1) vs one Redis round trip ({n} sequential calls)\n");
    println!("| operation | p50 | p99 |\n| --- | --- | --- |");
    for (name, v) in [
        ("memory store lookup", &memt),
        ("Redis store lookup (L2 hit: EVALSHA + decode)", &l2),
        ("PING round trip", &ping),
        ("GET of a 1.5 KB value", &get),
        ("EVALSHA of a script doing only that GET", &lua),
    ] {
        println!("| {name} | {} | {} |", us(pct(v, 0.5)), us(pct(v, 0.99)));
    }
    let added = pct(&l2, 0.5).saturating_sub(pct(&memt, 0.5));
    println!(
        "\nAdded latency at p50: {} = {:.2} PING round trips; {:.2} GETs of the same size (target: within one round trip: {})\n",
        us(added),
        added.as_secs_f64() / pct(&ping, 0.5).as_secs_f64(),
        added.as_secs_f64() / pct(&get, 0.5).as_secs_f64(),
        if added <= pct(&get, 0.5) { "met" } else { "not met" }
    );
    let _ = client.quit().await;
}

async fn propagation(url: &str, purges: usize) {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let cfg = RedisConfig {
            url: url.to_owned(),
            prefix: "bench-prop".into(),
            ..Default::default()
        };
        nodes.push(connect(cfg).await);
    }
    let mut watches: Vec<_> = nodes.iter().map(|n| n.applied_purges()).collect();
    let (mut acks, mut after, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..purges {
        let from = i % 3;
        let req = Arc::new(PurgeRequest::new(vec![Selector::tag(&format!("t{i}"))]));
        let t0 = Instant::now();
        nodes[from].purge(req).await.unwrap();
        let acked = Instant::now();
        let seq = *watches[from].borrow_and_update();
        for (j, w) in watches.iter_mut().enumerate() {
            if j != from {
                tokio::time::timeout(Duration::from_secs(2), w.wait_for(|v| *v >= seq))
                    .await
                    .expect("propagated within 2 s")
                    .unwrap();
            }
        }
        let done = Instant::now();
        acks.push(acked - t0);
        after.push(done - acked);
        total.push(done - t0);
    }
    for v in [&mut acks, &mut after, &mut total] {
        v.sort();
    }
    println!("## 3. Purge propagation to 3 nodes on one Redis ({purges} tag purges, issued in turn by each node)\n");
    println!("| measure | p50 | p99 | max |\n| --- | --- | --- | --- |");
    for (name, v) in [
        ("acknowledgement (purge call, durable in Redis)", &acks),
        ("after the ack, until all 3 L1s applied it", &after),
        ("purge start until all 3 L1s applied it", &total),
    ] {
        println!(
            "| {name} | {} | {} | {} |",
            ms(pct(v, 0.5)),
            ms(pct(v, 0.99)),
            ms(*v.last().unwrap())
        );
    }
    println!(
        "\nTarget p99 < 10 ms (start to all 3 L1s): {}\n",
        if pct(&total, 0.99) < Duration::from_millis(10) {
            "met"
        } else {
            "not met"
        }
    );
}

async fn tag_purge(cfg: RedisConfig, label: &str, objects: usize, filler: usize, rounds: usize) {
    let store = connect(cfg).await;
    let body = Bytes::from(vec![b'x'; 512]);
    let mut times = Vec::new();
    for round in 0..rounds {
        let mut all: Vec<CachedObject> = (0..filler)
            .map(|i| {
                object(
                    &format!("http://h{}.example/other/{round}/{i}", i % 50),
                    &format!("o{i}"),
                    &body,
                )
            })
            .collect();
        all.extend((0..objects).map(|i| {
            object(
                &format!("http://h{}.example/bulk/{round}/{i}", i % 50),
                "bulk",
                &body,
            )
        }));
        fill(&store, all).await;
        let t = Instant::now();
        let report = store
            .purge(Arc::new(PurgeRequest::new(vec![Selector::tag("bulk")])))
            .await
            .unwrap();
        times.push(t.elapsed());
        assert_eq!(report.matched, objects as u64, "{label}");
        // Clear the filler for the next round (O(1)).
        store
            .purge(Arc::new(PurgeRequest::new(vec![Selector::all()])))
            .await
            .unwrap();
    }
    times.sort();
    println!(
        "| Vanish tag purge, {label} | {objects} of {} | {} | {} |",
        objects + filler,
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap())
    );
}

async fn scan_delete(url: &str, objects: usize, filler: usize, rounds: usize) {
    let client = Builder::from_config(Config::from_url(url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    let value = Bytes::from(vec![b'x'; 512]);
    let mut times = Vec::new();
    for _ in 0..rounds {
        let _: () = client.flushall(false).await.unwrap();
        let keys: Vec<String> = (0..filler)
            .map(|i| format!("cache:views.decorators.cache.cache_page.other.{i}"))
            .chain(
                (0..objects).map(|i| format!("cache:views.decorators.cache.cache_page.bulk.{i}")),
            )
            .collect();
        for chunk in keys.chunks(1000) {
            let sets = chunk
                .iter()
                .map(|k| client.set::<(), _, _>(k.as_str(), value.clone(), None, None, false));
            for r in futures_util::future::join_all(sets).await {
                r.unwrap();
            }
        }
        let t = Instant::now();
        let mut deleted = 0i64;
        let mut pages = client.scan("cache:*bulk*", Some(1000), None);
        while let Some(page) = pages.next().await {
            let mut page = page.unwrap();
            if let Some(found) = page.take_results() {
                if !found.is_empty() {
                    deleted += client.del::<i64, _>(found).await.unwrap();
                }
            }
            page.next();
        }
        times.push(t.elapsed());
        assert_eq!(deleted as usize, objects);
    }
    times.sort();
    println!(
        "| `SCAN MATCH cache:*bulk* COUNT 1000` + `DEL`, standalone | {objects} of {} | {} | {} |",
        objects + filler,
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap())
    );
    let _ = client.quit().await;
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs benches without `--bench`: nothing to measure then.
        println!("redis benchmarks: run with `cargo bench -p vanish-redis --bench redis` or bench/redis.sh");
        return;
    }
    let objects = env("OBJECTS", 10_000);
    let filler = env("FILLER", 90_000);
    let purges = env("PURGES", 600);
    let lookups = env("LOOKUPS", 300_000);
    let rounds = env("ROUNDS", 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = RedisServer::start();
        let url = server.url();
        println!(
            "# Redis store benchmarks\n\nredis-server {} on 127.0.0.1, {} CPUs\n",
            redis_version(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let parts = std::env::var("PARTS").unwrap_or_else(|_| "1,2,3,4".into());
        let part = |p: &str| parts.split(',').any(|x| x.trim() == p);
        if part("1") {
            l1_vs_memory(&url, lookups, rounds).await;
        }
        if part("2") {
            l2_latency(&url, 5000).await;
        }
        if part("3") {
            propagation(&url, purges).await;
        }
        if !part("4") {
            return;
        }
        println!("## 4–5. Purging {objects} objects by tag, vs the SCAN-pattern delete\n");
        println!("| method | matched of total | median | max |\n| --- | --- | --- | --- |");
        let cfg = RedisConfig {
            url: url.clone(),
            prefix: "bench-tag".into(),
            l1_capacity: 0,
            ..Default::default()
        };
        tag_purge(cfg, "standalone", objects, filler, rounds).await;
        if std::env::var("SKIP_CLUSTER").is_err() {
            let cluster = RedisCluster::start();
            let cfg = RedisConfig {
                cluster_nodes: cluster.addrs(),
                prefix: "bench-tag".into(),
                l1_capacity: 0,
                ..Default::default()
            };
            tag_purge(cfg, "3-shard Cluster", objects, filler, rounds).await;
        }
        scan_delete(&url, objects, filler, rounds).await;
        println!("\nTarget: tag purge of {objects} objects under 100 ms.");
    });
}

fn redis_version() -> String {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .find(|w| w.starts_with("v="))
                .map(|w| w.trim_start_matches("v=").to_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}
