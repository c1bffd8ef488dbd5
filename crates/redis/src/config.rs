//! Settings of the Redis store. Owns their defaults and nothing else.

use std::time::Duration;

/// How to reach Redis and how to use it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port[/db]` (or `rediss://`, `redis-sentinel://`, `valkey://`) of a
    /// standalone server. Ignored when `cluster_nodes` is not empty.
    pub url: String,
    /// `host:port` of one or more Cluster nodes: selects Cluster mode.
    pub cluster_nodes: Vec<String>,
    /// Prefix of every key and channel (several deployments may share one Redis).
    pub prefix: String,
    /// Buckets the keyspace is split into (each a hash-tagged slot; the same on every node).
    pub buckets: usize,
    /// Bytes of the in-memory L1 in front of Redis on this node (0: no L1).
    pub l1_capacity: u64,
    /// Longest time an L1 copy may be served after a purge was acknowledged (the lease).
    pub l1_lease: Duration,
    /// How often each node checks it still receives every purge message.
    pub heartbeat: Duration,
    /// Timeout of one Redis command.
    pub timeout: Duration,
    /// Purges remembered per bucket for fills still running.
    pub purge_log_len: usize,
    /// Most variants kept per resource.
    pub max_variants: usize,
    /// Largest body stored in Redis; larger objects stay in the L1 only (if there is one).
    pub max_object_size: usize,
    /// Extra time objects stay in Redis after they may no longer be served or revalidated.
    pub grace: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster_nodes: Vec::new(),
            prefix: "vanish".into(),
            buckets: 16,
            l1_capacity: 64 * 1024 * 1024,
            l1_lease: Duration::from_millis(500),
            heartbeat: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            purge_log_len: 1024,
            max_variants: 200,
            max_object_size: 4 * 1024 * 1024,
            grace: Duration::from_secs(10),
        }
    }
}
