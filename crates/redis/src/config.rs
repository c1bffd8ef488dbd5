//! Settings of the Redis store: their defaults, and the `[redis]` section of `vanish.toml`
//! with its validation. Owns nothing else.

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

/// The `[redis]` section of `vanish.toml`, as written (every key optional).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSection {
    /// `redis://host:port` of a standalone server (or Sentinel/unix/TLS URL).
    pub url: Option<String>,
    /// `host:port` of Cluster nodes (selects Cluster mode).
    pub cluster_nodes: Option<Vec<String>>,
    /// Key and channel prefix.
    pub prefix: Option<String>,
    /// Buckets (hash-tagged slots) the keyspace is split into.
    pub buckets: Option<usize>,
    /// L1 size, e.g. `"64MiB"`; `0` for none.
    pub l1_capacity: Option<toml_like::Size>,
    /// Longest time an L1 copy may be served after a purge, e.g. `"500ms"`.
    pub l1_lease: Option<String>,
    /// Heartbeat period, e.g. `"100ms"`.
    pub heartbeat: Option<String>,
    /// Timeout of one Redis command.
    pub timeout: Option<String>,
    /// Purges remembered per bucket for fills still running.
    pub purge_log_len: Option<usize>,
    /// Largest body stored in Redis.
    pub max_object_size: Option<toml_like::Size>,
    /// Extra time objects stay in Redis after their last possible use.
    pub grace: Option<String>,
}

/// Sizes written as a number of bytes or a string such as `"64MiB"`.
pub mod toml_like {
    /// A size as written.
    #[derive(Debug, Clone, serde::Deserialize)]
    #[serde(untagged)]
    pub enum Size {
        /// Bytes.
        Bytes(u64),
        /// With a unit: `B`, `KiB`/`K`, `MiB`/`M`, `GiB`/`G`, `KB`, `MB`, `GB`.
        Text(String),
    }

    impl Size {
        /// The size in bytes.
        pub fn bytes(&self, name: &str) -> Result<u64, String> {
            match self {
                Size::Bytes(n) => Ok(*n),
                Size::Text(s) => vanish_engine::config::parse_size(name, s),
            }
        }
    }
}

fn duration(name: &str, v: &Option<String>, default: Duration) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("{name}: {s:?} is not a duration such as \"500ms\" ({e})")),
    }
}

impl RedisSection {
    /// The effective settings; errors name the key (`redis.timeout: ...`).
    pub fn resolve(&self) -> Result<RedisConfig, String> {
        let d = RedisConfig::default();
        let cfg = RedisConfig {
            url: self.url.clone().unwrap_or(d.url),
            cluster_nodes: self.cluster_nodes.clone().unwrap_or_default(),
            prefix: self.prefix.clone().unwrap_or(d.prefix),
            buckets: self.buckets.unwrap_or(d.buckets),
            l1_capacity: match &self.l1_capacity {
                Some(s) => s.bytes("redis.l1_capacity")?,
                None => d.l1_capacity,
            },
            l1_lease: duration("redis.l1_lease", &self.l1_lease, d.l1_lease)?,
            heartbeat: duration("redis.heartbeat", &self.heartbeat, d.heartbeat)?,
            timeout: duration("redis.timeout", &self.timeout, d.timeout)?,
            purge_log_len: self.purge_log_len.unwrap_or(d.purge_log_len),
            max_variants: d.max_variants,
            max_object_size: match &self.max_object_size {
                Some(s) => s.bytes("redis.max_object_size")? as usize,
                None => d.max_object_size,
            },
            grace: duration("redis.grace", &self.grace, d.grace)?,
        };
        if cfg.prefix.is_empty() || cfg.prefix.contains(['{', '}']) {
            return Err("redis.prefix: must be non-empty, without '{' or '}'".into());
        }
        if !(1..=16384).contains(&cfg.buckets) {
            return Err("redis.buckets: must be between 1 and 16384".into());
        }
        if cfg.heartbeat.is_zero() || cfg.l1_lease < cfg.heartbeat * 2 {
            return Err("redis.l1_lease: must be at least twice redis.heartbeat".into());
        }
        if cfg.purge_log_len == 0 {
            return Err("redis.purge_log_len: must be at least 1".into());
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_resolve_with_errors_naming_the_key() {
        let s = RedisSection {
            cluster_nodes: Some(vec!["127.0.0.1:7000".into()]),
            l1_capacity: Some(toml_like::Size::Text("8MiB".into())),
            l1_lease: Some("1s".into()),
            ..Default::default()
        };
        let c = s.resolve().unwrap();
        assert_eq!(c.l1_capacity, 8 << 20);
        assert_eq!(c.l1_lease, Duration::from_secs(1));
        assert_eq!(c.cluster_nodes.len(), 1);
        let bad = RedisSection {
            timeout: Some("soon".into()),
            ..Default::default()
        };
        assert!(bad.resolve().unwrap_err().starts_with("redis.timeout"));
        let bad = RedisSection {
            l1_lease: Some("100ms".into()),
            ..Default::default()
        };
        assert!(bad.resolve().unwrap_err().starts_with("redis.l1_lease"));
    }
}
