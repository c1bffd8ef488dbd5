//! Three Vanish nodes sharing one Redis (and, in one test, a three-shard Redis Cluster):
//! pages filled through node 1 and read through all three (so every L1 holds them), purged
//! through node 2 with every selector type; after the acknowledgement plus the stated L1
//! bound, no node serves a purged page, and every other page is still a hit. Then Redis is
//! killed and restarted under load: no failed request, purges answer 503 during the outage,
//! and the nodes recover by themselves.

mod common;
mod common_redis;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use common_redis::*;
use vanish_redis::testing::{RedisCluster, RedisServer};

const HOSTS: [&str; 2] = ["a.example", "b.example"];
const PAGES: [&str; 5] = ["/p?x=1", "/p?x=2", "/p", "/blog/1", "/blog/2"];
const LANGS: [&str; 2] = ["en", "fr"];
/// The L1 bound the test nodes are configured with (`l1_lease`).
const BOUND: Duration = Duration::from_millis(300);
/// How long to wait for what only has to happen (a fill reaching every node, a node noticing
/// the outage or recovering): generous, the machine may be busy.
const PATIENCE: Duration = Duration::from_secs(30);

type Page = (&'static str, &'static str, &'static str);

async fn origin() -> TestOrigin {
    let renders = Arc::new(AtomicU64::new(0));
    TestOrigin::start(move |s, _| {
        let n = renders.fetch_add(1, Ordering::Relaxed);
        site_page(s, &format!("render#{n}"))
    })
    .await
}

fn pages() -> Vec<Page> {
    let mut v = Vec::new();
    for h in HOSTS {
        for p in PAGES {
            for l in LANGS {
                v.push((h, p, l));
            }
        }
    }
    v
}

async fn fetch(node: &RedisNode, (h, p, l): Page) -> Got {
    let g = get_with(&node.url(p), &[("host", h), ("accept-language", l)]).await;
    assert_eq!(g.status, 200, "{h}{p} {l}: {}", g.body);
    g
}

/// Fills every page through node 1, then reads it through the others (L2 hits that land in
/// their L1s). Returns each page's body.
async fn fill(nodes: &[&RedisNode]) -> HashMap<Page, String> {
    let mut bodies = HashMap::new();
    for page in pages() {
        let first = fetch(nodes[0], page).await;
        // The fill's write to Redis may finish just after the response, and a node whose L1
        // holds this resource without the new variant drops it when the fill's announcement
        // arrives: wait until every node sees the variant.
        let (h, p, l) = page;
        let query = format!(
            "/explain?url=http%3A%2F%2F{h}{}&header=accept-language:{l}",
            p.replace('?', "%3F").replace('=', "%3D")
        );
        for n in &nodes[1..] {
            let start = Instant::now();
            loop {
                let e = get(&n.admin(&query)).await;
                let v = e.json();
                if v["variants"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x["selected"] == true))
                {
                    break;
                }
                assert!(
                    start.elapsed() < PATIENCE,
                    "{page:?} did not reach every node within {PATIENCE:?}: {}",
                    e.body
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        for n in &nodes[1..] {
            let g = fetch(n, page).await;
            assert!(
                g.is_hit(),
                "{page:?} is a hit on every node: {}",
                g.cache_status()
            );
            assert_eq!(g.body, first.body);
        }
        bodies.insert(page, first.body);
    }
    bodies
}

async fn invalidate(node: &RedisNode, json: &str) -> Got {
    send(
        "POST",
        &node.admin("/invalidate"),
        &[("content-type", "application/json")],
        json,
    )
    .await
}

struct Case {
    json: &'static str,
    purged: fn(Page) -> bool,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            json: r#"{"type":"url","url":"http://a.example/p?x=1"}"#,
            purged: |(h, p, _)| h == "a.example" && p == "/p?x=1",
        },
        Case {
            json: r#"{"type":"url","url":"http://a.example/p","any_query":true}"#,
            purged: |(h, p, _)| h == "a.example" && p.starts_with("/p"),
        },
        Case {
            json: r#"{"type":"path","path":"/p"}"#,
            purged: |(_, p, _)| p == "/p",
        },
        Case {
            json: r#"{"type":"path","path":"/p","query":"x=2"}"#,
            purged: |(_, p, _)| p == "/p?x=2",
        },
        Case {
            json: r#"{"type":"path","path":"/p","any_query":true,"headers":{"accept-language":"fr"}}"#,
            purged: |(_, p, l)| p.starts_with("/p") && l == "fr",
        },
        Case {
            json: r#"{"type":"prefix","prefix":"/blog/"}"#,
            purged: |(_, p, _)| p.starts_with("/blog/"),
        },
        Case {
            json: r#"{"type":"prefix","prefix":"/blog/","host":"b.example"}"#,
            purged: |(h, p, _)| h == "b.example" && p.starts_with("/blog/"),
        },
        Case {
            json: r#"{"type":"tag","tag":"blog"}"#,
            purged: |(_, p, _)| p.starts_with("/blog/"),
        },
        Case {
            json: r#"{"type":"host","host":"b.example"}"#,
            purged: |(h, _, _)| h == "b.example",
        },
        Case {
            json: r#"{"type":"all"}"#,
            purged: |_| true,
        },
    ]
}

/// Runs every selector case on three nodes; returns the slowest time, after an
/// acknowledgement, until no node served a purged page.
async fn every_selector_on_three_nodes(nodes: &[&RedisNode]) -> Duration {
    let mut slowest = Duration::ZERO;
    for case in cases() {
        let reset = invalidate(nodes[2], r#"{"type":"all"}"#).await;
        assert_eq!(reset.status, 200, "{}", reset.body);
        tokio::time::sleep(BOUND).await;
        let before = fill(nodes).await;
        let expected = pages().into_iter().filter(|p| (case.purged)(*p)).count();
        let r = invalidate(nodes[1], case.json).await;
        let acked = Instant::now();
        assert_eq!(r.status, 200, "{}: {}", case.json, r.body);
        assert_eq!(
            r.json()["matched"].as_u64(),
            Some(expected as u64),
            "{}",
            case.json
        );
        // Measure: how long until node 3 stops serving the purged pages (each read of a
        // purged page refills it with a new render, which is fine).
        for page in pages().into_iter().filter(|p| (case.purged)(*p)) {
            loop {
                // The property: a request that *starts* later than the bound after the ack
                // never gets the purged page.
                let asked = acked.elapsed();
                let g = fetch(nodes[2], page).await;
                if g.body != before[&page] {
                    break;
                }
                assert!(
                    asked <= BOUND,
                    "{}: node 3 served purged {page:?} to a request sent {asked:?} after the ack",
                    case.json
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        slowest = slowest.max(acked.elapsed());
        // After the bound: no node serves a purged page; every other page is still a hit.
        let wait = BOUND.saturating_sub(acked.elapsed());
        tokio::time::sleep(wait).await;
        for page in pages() {
            for (i, n) in nodes.iter().enumerate() {
                let g = fetch(n, page).await;
                if (case.purged)(page) {
                    assert_ne!(
                        g.body,
                        before[&page],
                        "{}: node {} {page:?}",
                        case.json,
                        i + 1
                    );
                } else {
                    assert!(
                        g.is_hit(),
                        "{}: node {} {page:?} still cached",
                        case.json,
                        i + 1
                    );
                    assert_eq!(g.body, before[&page]);
                }
            }
        }
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_redis_every_selector() {
    let redis = RedisServer::start();
    let origin = origin().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(
            RedisNode::start(&origin.url(), redis_config(Some(&redis.url()), &[], "n3")).await,
        );
    }
    let refs: Vec<&RedisNode> = nodes.iter().collect();
    let slowest = every_selector_on_three_nodes(&refs).await;
    eprintln!("slowest convergence after an ack (standalone): {slowest:?}");
    let health = get(&nodes[0].admin("/healthz")).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["store"], "redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_cluster_every_selector() {
    let cluster = RedisCluster::start();
    let origin = origin().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(
            RedisNode::start(&origin.url(), redis_config(None, &cluster.addrs(), "c3")).await,
        );
    }
    let refs: Vec<&RedisNode> = nodes.iter().collect();
    let slowest = every_selector_on_three_nodes(&refs).await;
    eprintln!("slowest convergence after an ack (cluster): {slowest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load() {
    let mut redis = RedisServer::start();
    let origin = origin().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(
            RedisNode::start(&origin.url(), redis_config(Some(&redis.url()), &[], "kill")).await,
        ));
    }
    fill(&nodes.iter().map(|n| &**n).collect::<Vec<_>>()).await;
    // Load: every node, every page, until told to stop (bounded by a deadline).
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for n in &nodes {
        let (n, stop, served) = (n.clone(), stop.clone(), served.clone());
        load.push(tokio::spawn(async move {
            // A safety net only: the test stops the load once Redis is back.
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for page in pages() {
                    fetch(&n, page).await; // asserts 200
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    eventually("the load runs", PATIENCE, || async {
        served.load(Ordering::Relaxed) >= 3 * pages().len() as u64
    })
    .await;
    redis.kill();
    for n in &nodes {
        let start = Instant::now();
        loop {
            let h = get(&n.admin("/healthz")).await;
            assert_eq!(h.status, 200, "a degraded node still serves: {}", h.body);
            if h.json()["status"] == "degraded" {
                let problem = h.json()["problem"].as_str().unwrap_or_default().to_owned();
                assert!(problem.contains("redis"), "{problem}");
                break;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "healthz did not report the outage within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let r = invalidate(&nodes[1], r#"{"type":"tag","tag":"blog"}"#).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("purge not applied"), "{}", r.body);
    let during = served.load(Ordering::Relaxed);
    eventually("still serving during the outage", PATIENCE, || async {
        served.load(Ordering::Relaxed) > during
    })
    .await;

    redis.restart();
    for n in &nodes {
        let start = Instant::now();
        while get(&n.admin("/healthz")).await.json()["status"] != "ok" {
            assert!(
                start.elapsed() < PATIENCE,
                "no recovery within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.expect("no request failed and nothing panicked");
    }
    // Working again, across nodes. (Pages filled during the outage were stored by each node
    // on its own: start from a clean cache.)
    let r = invalidate(&nodes[0], r#"{"type":"all"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::sleep(BOUND).await;
    let before = fill(&nodes.iter().map(|n| &**n).collect::<Vec<_>>()).await;
    let r = invalidate(&nodes[1], r#"{"type":"tag","tag":"blog"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::sleep(BOUND).await;
    for page in pages() {
        let g = fetch(&nodes[2], page).await;
        assert_eq!(
            g.body == before[&page],
            !page.1.starts_with("/blog/"),
            "{page:?}"
        );
    }
}
