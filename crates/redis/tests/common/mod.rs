//! Helpers for the Redis store's tests: objects built the way the engine builds them, and
//! store configurations pointing at test servers.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use vanish_engine::store::Inserted;
use vanish_engine::store::Resource;
use vanish_engine::{CacheConfig, CachedObject, ResourceKey, Selector, Store};
use vanish_memory::MemoryStore;
use vanish_redis::{RedisConfig, RedisStore};

/// An object for `url`, requested with `lang` (varies on Accept-Language), carrying `tags`.
pub fn object(url: &str, lang: Option<&str>, tags: &[&str], max_age: u32) -> CachedObject {
    let key = ResourceKey::parse_url(url).unwrap();
    let mut req = HeaderMap::new();
    if let Some(l) = lang {
        req.insert("accept-language", l.parse().unwrap());
    }
    let mut res = http::Response::builder()
        .header("cache-control", format!("max-age={max_age}"))
        .header("vary", "Accept-Language");
    if !tags.is_empty() {
        res = res.header("surrogate-key", tags.join(" "));
    }
    let res = res.body(Bytes::from(format!("{url} {lang:?}"))).unwrap();
    CachedObject::from_response(key, &req, res, &CacheConfig::default(), SystemTime::now()).unwrap()
}

pub fn lang_headers(lang: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(l) = lang {
        h.insert("accept-language", l.parse().unwrap());
    }
    h
}

/// Config for a standalone server, without L1 unless asked.
pub fn standalone(url: &str, prefix: &str, l1: bool) -> RedisConfig {
    RedisConfig {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        l1_capacity: if l1 { 16 * 1024 * 1024 } else { 0 },
        ..Default::default()
    }
}

pub fn cluster(addrs: &[String], prefix: &str, l1: bool) -> RedisConfig {
    RedisConfig {
        cluster_nodes: addrs.to_vec(),
        prefix: prefix.to_owned(),
        l1_capacity: if l1 { 16 * 1024 * 1024 } else { 0 },
        ..Default::default()
    }
}

pub async fn connect(cfg: RedisConfig) -> RedisStore {
    tokio::time::timeout(Duration::from_secs(20), RedisStore::connect(cfg))
        .await
        .expect("connect within 20 s")
        .expect("connects")
}

/// The resource, if stored.
pub async fn look<S: Store>(s: &S, url: &str) -> Option<Arc<Resource>> {
    s.lookup(&ResourceKey::parse_url(url).unwrap())
        .await
        .expect("lookup")
}

/// True when the variant for `lang` is stored and fresh.
pub async fn has<S: Store>(s: &S, url: &str, lang: Option<&str>) -> bool {
    match look(s, url).await {
        Some(r) => r.select(&lang_headers(lang)).is_some(),
        None => false,
    }
}

/// How long the tests wait for something that only has to happen (a lease to hold, a
/// reconnection, a message to arrive): generous, the machine may be busy.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Waits (bounded) until `f` holds.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The L1 bound: looks up with `served` (true while the copy that must go is still served)
/// until it is gone, and fails if a lookup that *started* more than `bound` after `since` (a
/// purge's acknowledgement, or the moment the node lost its proof) still got it.
///
/// Only when each lookup starts is measured, so this test's own scheduling delays never count
/// against the store; and the loop ends by itself, every lookup after the bound must miss.
pub async fn gone_within<F, Fut>(what: &str, bound: Duration, since: Instant, mut served: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        let asked = since.elapsed();
        if !served().await {
            return;
        }
        assert!(
            asked <= bound,
            "{what}: still served to a lookup started {asked:?} after (bound {bound:?})"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `attempt` (it fills `node`'s L1 and says whether the L1 then served the copy) until it
/// succeeds. A failed attempt is accepted only when the node emptied its L1 meanwhile, as it
/// must when proof of a complete purge stream comes later than the lease (a heartbeat delayed on
/// a busy machine); any other miss fails the test.
pub async fn in_l1<F, Fut>(what: &str, node: &RedisStore, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    const ATTEMPTS: usize = 20;
    for _ in 0..ATTEMPTS {
        let drops = node.l1_drops();
        if attempt().await {
            return;
        }
        assert!(
            node.l1_drops() > drops,
            "{what}: not served from the L1, though the L1 was not emptied"
        );
        eventually("the lease holds again", PATIENCE, || async {
            node.l1_valid()
        })
        .await;
    }
    panic!("{what}: the L1 was emptied (its lease lapsed) during each of {ATTEMPTS} attempts");
}

// The shared corpus: three hosts (two sharing a name), paths, queries and languages.

pub const HOSTS: [&str; 3] = ["a.example", "b.example:8080", "b.example"];
pub const PATHS: [&str; 5] = ["/", "/blog/1", "/blog/2", "/blogger", "/p"];
pub const QUERIES: [Option<&str>; 3] = [None, Some("x=1"), Some("x=2")];
pub const LANGS: [Option<&str>; 3] = [None, Some("en"), Some("fr")];

pub fn url(h: &str, p: &str, q: Option<&str>) -> String {
    match q {
        Some(q) => format!("http://{h}{p}?{q}"),
        None => format!("http://{h}{p}"),
    }
}

pub fn tags_for(i: usize) -> Vec<&'static str> {
    let all = ["t1", "t2", "t3"];
    all.iter()
        .enumerate()
        .filter(|(j, _)| (i >> j) & 1 == 1)
        .map(|(_, t)| *t)
        .collect()
}

pub fn corpus() -> Vec<(String, Option<&'static str>, Vec<&'static str>)> {
    let mut out = Vec::new();
    let mut i = 0;
    for h in HOSTS {
        for p in PATHS {
            for q in QUERIES {
                for l in LANGS {
                    i += 1;
                    out.push((url(h, p, q), l, tags_for(i % 8)));
                }
            }
        }
    }
    out
}

pub fn selectors() -> Vec<Selector> {
    vec![
        Selector::url("http://a.example/blog/1").unwrap(),
        Selector::url("https://a.example/blog/1?x=1").unwrap(),
        Selector::url("http://b.example:8080/p")
            .unwrap()
            .any_query(),
        Selector::url("http://b.example/p").unwrap().any_query(),
        Selector::path("/blog/2"),
        Selector::path("/p").query("x=2"),
        Selector::path("/p")
            .any_query()
            .header("accept-language", "fr"),
        Selector::path("/").header("accept-language", ""),
        Selector::prefix("/blog"),
        Selector::prefix("/blog/"),
        Selector::prefix("/blog/").on_host("b.example"),
        Selector::prefix("/").on_host("b.example:8080"),
        Selector::tag("t1"),
        Selector::tag("t3").header("accept-language", "en"),
        Selector::tag("nope"),
        Selector::host("b.example"),
        Selector::host("b.example:8080"),
        Selector::host("a.example").header("accept-language", "en"),
        Selector::all().header("accept-language", "fr"),
        Selector::all(),
    ]
}

pub async fn fill_both(redis: &impl Store, mem: &MemoryStore) {
    for (u, l, tags) in corpus() {
        let e = redis.epoch();
        assert_eq!(
            redis.insert(object(&u, l, &tags, 300), e).await.unwrap(),
            Inserted::Fresh,
            "{u}"
        );
        let e = mem.epoch();
        mem.insert(object(&u, l, &tags, 300), e).await.unwrap();
    }
}

pub async fn stored(s: &impl Store) -> Vec<(String, Option<&'static str>)> {
    let mut out = Vec::new();
    for (u, l, _) in corpus() {
        if has(s, &u, l).await {
            out.push((u, l));
        }
    }
    out
}
