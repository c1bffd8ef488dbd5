//! Vanish nodes over a shared Redis, for the `redis_*` tests: each node is a real proxy and
//! admin listener with its own L1, all in front of one test origin. Needs `mod common;` beside it
//! (its `test_settings`).

#![allow(dead_code)]

use std::time::Duration;

use vanish::server::{self, Running};
use vanish_redis::{RedisConfig, RedisStore};

/// One Vanish node over Redis.
pub struct RedisNode {
    pub running: Running<RedisStore>,
}

impl RedisNode {
    /// Starts a node in front of `origin` with this Redis configuration.
    pub async fn start(origin: &str, redis: RedisConfig) -> RedisNode {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let running = tokio::time::timeout(
            Duration::from_secs(20),
            server::start_redis(super::common::test_settings(origin, ""), redis),
        )
        .await
        .expect("node starts within 20 s")
        .expect("node starts");
        RedisNode { running }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.running.proxy_addr, path)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{}", self.running.admin_addr, path)
    }

    pub fn store(&self) -> &RedisStore {
        self.running.cache.store()
    }
}

/// Redis settings for tests: a short lease so the bound is quick to check, and the default
/// command timeout (2 s): a command slowed down by a busy machine must not fail (a failed
/// lookup is a miss, a failed purge a 503), and an outage is noticed at once anyway (a killed
/// server's connections close, reconnections are refused).
pub fn redis_config(url: Option<&str>, cluster: &[String], prefix: &str) -> RedisConfig {
    RedisConfig {
        url: url.unwrap_or_default().to_owned(),
        cluster_nodes: cluster.to_vec(),
        prefix: prefix.to_owned(),
        l1_capacity: 16 * 1024 * 1024,
        l1_lease: Duration::from_millis(300),
        heartbeat: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        ..Default::default()
    }
}
