//! Settings of the Redis store: their defaults, the `[redis]` section of `vanish.toml` with its
//! validation, and the client configuration they make (so a bad URL is a settings error, found
//! before connecting). Owns nothing else; sizes and durations are [`vanish_engine::settings`].

use std::time::Duration;

use fred::prelude::{Config, ServerConfig};
use vanish_engine::settings::{get, Setting, SettingError, Size, Span};

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

/// The `[redis]` section of `vanish.toml`, as written (every key optional). Sizes and
/// durations are spelled as everywhere else ([`vanish_engine::settings`]).
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
    pub l1_capacity: Option<Setting<Size>>,
    /// Longest time an L1 copy may be served after a purge, e.g. `"500ms"`.
    pub l1_lease: Option<Setting<Span>>,
    /// Heartbeat period, e.g. `"100ms"`.
    pub heartbeat: Option<Setting<Span>>,
    /// Timeout of one Redis command.
    pub timeout: Option<Setting<Span>>,
    /// Purges remembered per bucket for fills still running.
    pub purge_log_len: Option<usize>,
    /// Largest body stored in Redis.
    pub max_object_size: Option<Setting<Size>>,
    /// Extra time objects stay in Redis after their last possible use.
    pub grace: Option<Setting<Span>>,
}

impl RedisSection {
    /// The effective settings; errors name the key (`redis.timeout: ...`).
    ///
    /// `max_variants` is `[limits] max_variants`, the bound every store keeps (not a key of
    /// `[redis]`).
    pub fn resolve(&self, max_variants: usize) -> Result<RedisConfig, SettingError> {
        let d = RedisConfig::default();
        let cfg = RedisConfig {
            url: self.url.clone().unwrap_or(d.url),
            cluster_nodes: self.cluster_nodes.clone().unwrap_or_default(),
            prefix: self.prefix.clone().unwrap_or(d.prefix),
            buckets: self.buckets.unwrap_or(d.buckets),
            l1_capacity: get(&self.l1_capacity, "redis.l1_capacity", d.l1_capacity)?,
            l1_lease: get(&self.l1_lease, "redis.l1_lease", d.l1_lease)?,
            heartbeat: get(&self.heartbeat, "redis.heartbeat", d.heartbeat)?,
            timeout: get(&self.timeout, "redis.timeout", d.timeout)?,
            purge_log_len: self.purge_log_len.unwrap_or(d.purge_log_len),
            max_variants,
            max_object_size: get(
                &self.max_object_size,
                "redis.max_object_size",
                d.max_object_size as u64,
            )? as usize,
            grace: get(&self.grace, "redis.grace", d.grace)?,
        };
        let fail = |key: &str, reason: &str| Err(SettingError::new(key, reason));
        if cfg.prefix.is_empty() || cfg.prefix.contains(['{', '}']) {
            return fail("redis.prefix", "must be non-empty, without '{' or '}'");
        }
        if !(1..=16384).contains(&cfg.buckets) {
            return fail("redis.buckets", "must be between 1 and 16384");
        }
        if cfg.heartbeat.is_zero() || cfg.l1_lease < cfg.heartbeat.saturating_mul(2) {
            return fail("redis.l1_lease", "must be at least twice redis.heartbeat");
        }
        if cfg.purge_log_len == 0 {
            return fail("redis.purge_log_len", "must be at least 1");
        }
        if cfg.max_variants == 0 {
            return fail("limits.max_variants", "must be at least 1");
        }
        cfg.fred_config()?;
        Ok(cfg)
    }
}

impl RedisConfig {
    /// The client's configuration: the standalone URL, or the Cluster nodes; errors name the
    /// key (`redis.url`, `redis.cluster_nodes[1]`).
    pub(crate) fn fred_config(&self) -> Result<Config, SettingError> {
        if self.cluster_nodes.is_empty() {
            return Config::from_url(&self.url).map_err(|e| {
                SettingError::new(
                    "redis.url",
                    format!("{:?} is not a Redis URL ({e})", self.url),
                )
            });
        }
        let mut hosts = Vec::new();
        for (i, n) in self.cluster_nodes.iter().enumerate() {
            let bad = |why: &str| SettingError::new(format!("redis.cluster_nodes[{i}]"), why);
            let n = n
                .trim_start_matches("redis://")
                .trim_start_matches("valkey://");
            let (h, p) = n
                .rsplit_once(':')
                .ok_or_else(|| bad(&format!("{n:?} is not HOST:PORT")))?;
            let p: u16 = p.parse().map_err(|_| bad(&format!("{n:?}: bad port")))?;
            hosts.push((h.to_owned(), p));
        }
        Ok(Config {
            server: ServerConfig::new_clustered(hosts),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_resolve_with_errors_naming_the_key() {
        let s = RedisSection {
            cluster_nodes: Some(vec!["127.0.0.1:7000".into()]),
            l1_capacity: Some("8MiB".into()),
            l1_lease: Some("1s".into()),
            ..Default::default()
        };
        let c = s.resolve(7).unwrap();
        assert_eq!(c.l1_capacity, 8 << 20);
        assert_eq!(c.l1_lease, Duration::from_secs(1));
        assert_eq!(c.cluster_nodes.len(), 1);
        let bad = RedisSection {
            timeout: Some("soon".into()),
            ..Default::default()
        };
        assert!(bad
            .resolve(200)
            .unwrap_err()
            .to_string()
            .starts_with("redis.timeout"));
        let bad = RedisSection {
            l1_lease: Some("100ms".into()),
            ..Default::default()
        };
        assert!(bad
            .resolve(200)
            .unwrap_err()
            .to_string()
            .starts_with("redis.l1_lease"));
    }

    #[test]
    fn the_variant_limit_is_the_one_given() {
        let c = RedisSection::default().resolve(3).unwrap();
        assert_eq!(c.max_variants, 3);
        let e = RedisSection::default().resolve(0).unwrap_err();
        assert_eq!(e.key, "limits.max_variants");
    }

    #[test]
    fn endpoints_are_checked_before_connecting() {
        let s = |url: Option<&str>, nodes: &[&str]| RedisSection {
            url: url.map(str::to_owned),
            cluster_nodes: Some(nodes.iter().map(|n| n.to_string()).collect()),
            ..Default::default()
        };
        let e = s(Some("10.0.0.5:6379"), &[]).resolve(200).unwrap_err();
        assert_eq!(e.key, "redis.url");
        let e = s(None, &["10.0.0.1:7000", "nohost"])
            .resolve(200)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "redis.cluster_nodes[1]: \"nohost\" is not HOST:PORT"
        );
        let e = s(None, &["h:port"]).resolve(200).unwrap_err();
        assert_eq!(
            e.to_string(),
            "redis.cluster_nodes[0]: \"h:port\": bad port"
        );
        assert!(s(Some("redis://10.0.0.5:6379/2"), &[]).resolve(200).is_ok());
        assert!(s(None, &["valkey://10.0.0.5:7000"]).resolve(200).is_ok());
    }
}
