//! Helpers for the Redis store's tests: objects built the way the engine builds them, and
//! store configurations pointing at test servers.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use vanish_engine::store::Resource;
use vanish_engine::{CacheConfig, CachedObject, ResourceKey, Store};
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
    let res = res
        .body(Bytes::from(format!("{url} {lang:?}")))
        .unwrap();
    CachedObject::from_response(key, &req, res, &CacheConfig::default(), SystemTime::now())
        .unwrap()
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
