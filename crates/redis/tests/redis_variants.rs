//! `RedisConfig::max_variants` on every insert path: a resource keeps at most that many
//! variants, in Redis and in the L1, and the variant stored first goes first, exactly as in
//! the memory store (the reference).

mod common;

use std::sync::Arc;

use common::*;
use vanish_engine::store::Resource;
use vanish_engine::Store;
use vanish_memory::MemoryStore;
use vanish_redis::testing::RedisServer;
use vanish_redis::RedisConfig;

const URL: &str = "http://h.example/v";

/// The bodies of a resource's variants, oldest first (each body names its language).
fn bodies(r: Option<Arc<Resource>>) -> Vec<String> {
    r.map(|r| {
        r.variants
            .iter()
            .map(|o| String::from_utf8_lossy(&o.body).into_owned())
            .collect()
    })
    .unwrap_or_default()
}

/// Stores the variants for `langs`, in order.
async fn fill<S: Store>(s: &S, langs: &[&str]) {
    for l in langs {
        let e = s.epoch();
        s.insert(object(URL, Some(l), &[], 300), e).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_variant_goes_first_as_in_the_memory_store() {
    let server = RedisServer::start();
    for (max, l1) in [(2, false), (2, true), (0, false)] {
        let prefix = format!("mv{max}{l1}");
        let cfg = RedisConfig {
            max_variants: max,
            ..standalone(&server.url(), &prefix, l1)
        };
        let redis = connect(cfg).await;
        let mem = MemoryStore::with_max_variants(64 << 20, max);
        fill(&redis, &["en", "fr", "de"]).await;
        fill(&mem, &["en", "fr", "de"]).await;
        let want = bodies(look(&mem, URL).await);
        let kept = max.max(1);
        assert_eq!(want.len(), kept, "the reference keeps {kept}: {want:?}");
        assert!(want.last().unwrap().contains("de"), "{want:?}");
        assert_eq!(bodies(look(&redis, URL).await), want, "max {max}, L1 {l1}");
        // Storing a variant again replaces it (it becomes the newest); nothing else goes.
        fill(&redis, &["fr"]).await;
        fill(&mem, &["fr"]).await;
        let want = bodies(look(&mem, URL).await);
        assert_eq!(bodies(look(&redis, URL).await), want, "max {max}, L1 {l1}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_l1_keeps_at_most_max_variants_too() {
    let server = RedisServer::start();
    let cfg = RedisConfig {
        max_variants: 2,
        // Every body here is over the limit: the variants live in the L1 only.
        max_object_size: 4,
        ..standalone(&server.url(), "mvl1", true)
    };
    let s = connect(cfg).await;
    let mem = MemoryStore::with_max_variants(64 << 20, 2);
    fill(&mem, &["en", "fr", "de"]).await;
    let want = bodies(look(&mem, URL).await);
    assert_eq!(want.len(), 2, "{want:?}");
    eventually("lease holds", PATIENCE, || async { s.l1_valid() }).await;
    in_l1("two variants in the L1", &s, || async {
        fill(&s, &["en", "fr", "de"]).await;
        bodies(look(&s, URL).await) == want
    })
    .await;
}
