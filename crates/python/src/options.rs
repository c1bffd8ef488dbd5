//! [`Options`]: what Django's `VANISH` setting tells the embedded cache, as JSON.
//!
//! Owns reading and checking them (errors name the key, as `VANISH['CAPACITY']: ...`) and
//! turning them into the engine's and the stores' own settings; sizes and durations are
//! spelled as in `vanish.toml` ([`vanish_engine::settings`]), and the `REDIS` options are the
//! `[redis]` section of `vanish.toml` ([`RedisSection`]), so a proxy and Django configured
//! alike share one cache.

use serde::Deserialize;
use vanish_engine::settings::{get, Setting, Size};
use vanish_engine::CacheConfig;
use vanish_redis::config::RedisSection;
use vanish_redis::RedisConfig;

/// Default `CAPACITY`: the memory store's size, or the Redis store's L1.
pub const DEFAULT_CAPACITY: u64 = 64 << 20;

/// The options as Python sends them (`vanish_client.django.embedded` builds the JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `"memory"`, or a Redis URL (`redis://`, `rediss://`, `redis-cluster://`, `valkey://`).
    pub store: String,
    /// Bytes kept in this process: the memory store, or the Redis store's L1.
    pub capacity: Option<Setting<Size>>,
    /// Largest body stored.
    pub max_object_size: Option<Setting<Size>>,
    /// Most variants per resource.
    pub max_variants: Option<usize>,
    /// The `[redis]` section of `vanish.toml`, for a Redis `store` (its `url` is `store`).
    pub redis: Option<RedisSection>,
}

/// Where objects live, resolved.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// The memory store of this process, of this many bytes.
    Memory {
        /// Capacity in bytes.
        capacity: u64,
        /// Most variants per resource.
        max_variants: usize,
    },
    /// The Redis store.
    Redis(RedisConfig),
}

/// Everything a process needs to start its cache.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The engine's settings.
    pub cache: CacheConfig,
    /// The store's.
    pub store: StoreSettings,
}

impl Options {
    /// Parses and checks the JSON; the error is one line naming the key.
    pub fn parse(json: &str) -> Result<Resolved, String> {
        let o: Options =
            serde_json::from_str(json).map_err(|e| format!("VANISH: invalid options: {e}"))?;
        o.resolve()
    }

    fn resolve(self) -> Result<Resolved, String> {
        let capacity = get(&self.capacity, "VANISH['CAPACITY']", DEFAULT_CAPACITY)
            .map_err(|e| e.to_string())?;
        let defaults = CacheConfig::default();
        let max_object_size = get(
            &self.max_object_size,
            "VANISH['MAX_OBJECT_SIZE']",
            defaults.max_object_size as u64,
        )
        .map_err(|e| e.to_string())? as usize;
        let max_variants = self
            .max_variants
            .unwrap_or(vanish_memory::DEFAULT_MAX_VARIANTS);
        if max_variants == 0 {
            return Err("VANISH['MAX_VARIANTS']: must be at least 1".into());
        }
        let cache = CacheConfig {
            max_object_size,
            ..defaults
        };
        let store = if self.store == "memory" {
            if self.redis.is_some() {
                return Err("VANISH['REDIS']: only with a Redis STORE".into());
            }
            StoreSettings::Memory {
                capacity,
                max_variants,
            }
        } else if [
            "redis://",
            "rediss://",
            "redis-cluster://",
            "valkey://",
            "valkeys://",
            "redis+unix://",
            "unix://",
        ]
        .iter()
        .any(|s| self.store.starts_with(s))
        {
            let mut section = self.redis.unwrap_or_default();
            if section.url.is_some() {
                return Err("VANISH['REDIS']: give the URL as STORE, not REDIS['url']".into());
            }
            section.url = Some(self.store.clone());
            let explicit_l1 = section.l1_capacity.is_some();
            let mut cfg = section
                .resolve(max_variants)
                .map_err(|e| format!("VANISH['REDIS']: {e}"))?;
            if !explicit_l1 {
                cfg.l1_capacity = capacity;
            }
            StoreSettings::Redis(cfg)
        } else {
            return Err(format!(
                "VANISH['STORE']: expected \"memory\" or a redis:// URL, got {:?}",
                self.store
            ));
        };
        Ok(Resolved { cache, store })
    }
}
