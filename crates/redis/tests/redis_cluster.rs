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
use vanish_redis::RedisConfig;

fn dbsize(port: u16) -> u64 {
    let r = raw_command(port, "DBSIZE").expect("DBSIZE answered");
    r.trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("DBSIZE reply {r:?}"))
}

/// The L1 lease of these nodes (the default).
const LEASE: Duration = Duration::from_millis(500);

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
    assert_eq!(RedisConfig::default().l1_lease, LEASE);
    eventually("both leases hold", PATIENCE, || async {
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
    let mut applied = b.applied_purges();
    let before = *applied.borrow_and_update();
    let report = a
        .purge(Arc::new(PurgeRequest::new(vec![Selector::tag("posts")])))
        .await
        .unwrap();
    let acked = Instant::now();
    assert_eq!(report.matched, 60);
    // No lookup on b that starts more than the lease after the ack finds a purged object.
    for u in &urls {
        gone_within("b forgets the purged object", LEASE, acked, || async {
            has(&b, u, None).await
        })
        .await;
    }
    // And the purge reached b's L1 as a message, not only by the lease running out.
    tokio::time::timeout(PATIENCE, applied.wait_for(|seq| *seq > before))
        .await
        .expect("b applies a's purge message")
        .expect("b's store is alive");
}
