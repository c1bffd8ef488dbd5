//! The Redis store against a real three-shard Redis Cluster: objects land on every shard,
//! each script touches one slot (no CROSSSLOT error, ever), purges whose matches span all
//! shards remove exactly what the memory store removes, and a purge on one node reaches
//! another node's L1.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use vanish_engine::{PurgeRequest, Selector, Store};
use vanish_memory::MemoryStore;
use vanish_redis::testing::{raw_command, RedisCluster};

fn dbsize(port: u16) -> u64 {
    raw_command(port, "DBSIZE")
        .and_then(|r| r.trim().trim_start_matches(':').parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_span_all_shards_and_match_the_memory_store() {
    let servers = RedisCluster::start();
    let redis = connect(cluster(&servers.addrs(), "cl", false)).await;
    let mem = MemoryStore::new(64 << 20);
    fill_both(&redis, &mem).await;
    for n in &servers.nodes {
        assert!(dbsize(n.port) > 10, "shard {} holds objects", n.port);
    }
    // Tags are spread over every bucket, so over every shard.
    let mut by_tag = PurgeRequest::new(vec![Selector::tag("t2")]);
    by_tag.dry_run = true;
    let by_tag = Arc::new(by_tag);
    assert_eq!(
        redis.purge(by_tag.clone()).await.unwrap().matched,
        mem.purge(by_tag).await.unwrap().matched
    );
    for sel in selectors() {
        let req = Arc::new(PurgeRequest::new(vec![sel.clone()]));
        let want = mem.purge(req.clone()).await.unwrap().matched;
        let got = redis.purge(req).await.unwrap().matched;
        assert_eq!(got, want, "purge of {sel:?}");
        assert_eq!(stored(&redis).await, stored(&mem).await, "after {sel:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_on_one_node_reaches_another_nodes_l1() {
    let servers = RedisCluster::start();
    let a = connect(cluster(&servers.addrs(), "cl1", true)).await;
    let b = connect(cluster(&servers.addrs(), "cl1", true)).await;
    eventually("both leases hold", Duration::from_secs(5), || async {
        a.l1_valid() && b.l1_valid()
    })
    .await;
    let mut urls = Vec::new();
    for i in 0..60 {
        let u = format!("http://site{}/post/{i}", i % 4);
        let e = a.epoch();
        a.insert(object(&u, None, &["posts"], 300), e)
            .await
            .unwrap();
        assert!(
            has(&b, &u, None).await,
            "b reads {u} (and keeps it in its L1)"
        );
        urls.push(u);
    }
    let t = Instant::now();
    let report = a
        .purge(Arc::new(PurgeRequest::new(vec![Selector::tag("posts")])))
        .await
        .unwrap();
    assert_eq!(report.matched, 60);
    for u in &urls {
        eventually(
            "b forgets the purged object",
            Duration::from_millis(600),
            || {
                let u = u.clone();
                let b = &b;
                async move { !has(b, &u, None).await }
            },
        )
        .await;
    }
    assert!(t.elapsed() < Duration::from_secs(5));
}
