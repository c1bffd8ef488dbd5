//! Redis as the shared tier (the L2): reading a resource, storing an object, running a purge
//! in its buckets, sweeping expired objects, and counting.
//!
//! Owns the calls to the Lua scripts ([`crate::scripts`]) over the [`crate::connection`], with
//! the keys of [`crate::layout`] and the object form of [`crate::codec`]; the check at start
//! that every node splits the keyspace the same way; and the cached sizes. It knows nothing of
//! the L1 or of messages.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fred::prelude::*;
use fred::types::MultipleValues;
use futures_util::future::join_all;
use vanish_engine::purge::selector::Target;
use vanish_engine::store::{Inserted, StoreError, StoreStats};
use vanish_engine::{CachedObject, PurgeRequest, ResourceKey};

use crate::codec;
use crate::config::RedisConfig;
use crate::connection::Connection;
use crate::error::{corrupt, from_client, misconfigured, not_applied};
use crate::layout::Layout;
use crate::scripts::{Script, Scripts};
use crate::wire;

/// Objects unindexed by an insert on its way (keeps the expiry queue short between sweeps).
const PRUNE_ON_INSERT: u32 = 4;

/// The Redis side of the store.
pub(crate) struct L2 {
    conn: Arc<Connection>,
    layout: Layout,
    scripts: Scripts,
    max_variants: usize,
    purge_log_len: usize,
    grace: Duration,
    stats: Mutex<StoreStats>,
}

/// What the insert script did.
pub(crate) struct Stored {
    /// Fresh, marked stale (a soft purge ran during the fill), or dropped (a hard one did).
    pub(crate) outcome: Inserted,
    /// Variants the resource has now.
    pub(crate) variants: i64,
    /// True when this variant is new to the resource.
    pub(crate) added: bool,
}

fn value_bytes(v: Value) -> Option<Bytes> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::String(s) => Some(s.into_inner()),
        _ => None,
    }
}

impl L2 {
    /// Checks this node's layout against the one Redis holds (recording it if none), loads
    /// the scripts, and reads the purge sequence reached so far.
    pub(crate) async fn open(
        conn: Arc<Connection>,
        cfg: &RedisConfig,
    ) -> Result<(L2, u64), StoreError> {
        let client = conn.client();
        let layout = Layout::new(&cfg.prefix, cfg.buckets);
        // Every node must split the keyspace the same way.
        let _: Value = client
            .set(
                layout.layout_key(),
                layout.buckets() as i64,
                None,
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(|e| from_client(&e))?;
        let stored: i64 = client
            .get(layout.layout_key())
            .await
            .map_err(|e| from_client(&e))?;
        if stored as usize != layout.buckets() {
            return Err(misconfigured(format!(
                "this Redis holds a Vanish cache with {stored} buckets under prefix {:?}; this node is configured with {} (buckets must be the same on every node)",
                cfg.prefix,
                layout.buckets()
            )));
        }
        let scripts = Scripts::load(client).await.map_err(|e| from_client(&e))?;
        let seq: Option<u64> = client
            .get(layout.seq_key())
            .await
            .map_err(|e| from_client(&e))?;
        let l2 = L2 {
            layout,
            scripts,
            // At least one, as in the memory store (and the L1).
            max_variants: cfg.max_variants.max(1),
            purge_log_len: cfg.purge_log_len,
            grace: cfg.grace,
            stats: Mutex::new(StoreStats::default()),
            conn,
        };
        Ok((l2, seq.unwrap_or(0)))
    }

    /// Runs `script` on `key` (a bucket's control hash, or the sequence counter), recording
    /// the outcome in the connection's health.
    async fn call<R, V>(&self, script: &Script, key: String, args: V) -> Result<R, StoreError>
    where
        R: FromValue,
        V: TryInto<MultipleValues> + Send,
        V::Error: Into<Error> + Send,
    {
        self.conn
            .note(script.call(self.conn.client(), key, args).await)
    }

    /// The connection.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The key layout.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The live variants of a resource, oldest first, with their soft-purge marks.
    pub(crate) async fn lookup(&self, key: &ResourceKey) -> Result<Vec<CachedObject>, StoreError> {
        let rkey = codec::resource_key(key);
        let bucket = self.layout.bucket_of(key.host(), key.path());
        let out: Vec<Value> = self
            .call(&self.scripts.lookup, self.layout.control_key(bucket), rkey)
            .await?;
        let mut it = out.into_iter();
        let soft_all = it.next().and_then(|v| v.as_u64()).unwrap_or(0);
        let now = SystemTime::now();
        let mut objects = Vec::new();
        while let (Some(blob), Some(soft)) = (it.next(), it.next()) {
            let Some(blob) = value_bytes(blob) else {
                continue;
            };
            let obj = match codec::decode(blob) {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, %key, "undecodable object in redis; ignored");
                    continue;
                }
            };
            if obj.retain_until() <= now {
                continue;
            }
            if let Some(ms) = soft.as_u64().filter(|ms| *ms > 0) {
                obj.mark_soft_purged(UNIX_EPOCH + Duration::from_millis(ms));
            }
            if soft_all > 0 {
                let at = UNIX_EPOCH + Duration::from_millis(soft_all);
                if obj.timing.stored_at < at {
                    obj.mark_soft_purged(at);
                }
            }
            objects.push(obj);
        }
        Ok(objects)
    }

    /// Stores `object` unless a purge the bucket logged after `fill_seq` matches it (0: check
    /// every purge the bucket still logs, and drop it if the log no longer reaches back).
    pub(crate) async fn insert(
        &self,
        object: &CachedObject,
        fill_seq: u64,
        now: SystemTime,
    ) -> Result<Stored, StoreError> {
        let ttl = object
            .retain_until()
            .duration_since(now)
            .unwrap_or_default()
            + self.grace;
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let key = object.key();
        let rkey = codec::resource_key(key);
        let vfield = codec::variant_field(object);
        let blob = codec::encode(object).map_err(corrupt)?;
        let record = codec::record(object, &rkey, &vfield, blob.len() + rkey.len() + 256);
        let bucket = self.layout.bucket_of(key.host(), key.path());
        let args: Vec<Value> = vec![
            Value::from(fill_seq as i64),
            Value::from(rkey),
            Value::from(vfield),
            Value::from(record),
            Value::Bytes(blob),
            Value::from(ttl_ms as i64),
            Value::from(self.max_variants as i64),
            Value::from(PRUNE_ON_INSERT as i64),
        ];
        let (state, variants, added): (i64, i64, i64) = self
            .call(&self.scripts.insert, self.layout.control_key(bucket), args)
            .await?;
        let outcome = match state {
            0 => Inserted::Fresh,
            1 => Inserted::MarkedStale,
            _ => Inserted::Dropped,
        };
        Ok(Stored {
            outcome,
            variants,
            added: added == 1,
        })
    }

    /// The buckets a purge may touch: the URLs' own when it names only URLs, else all.
    pub(crate) fn target_buckets(&self, req: &PurgeRequest) -> Vec<usize> {
        if wire::url_only(req) {
            let mut b: Vec<usize> = req
                .selectors
                .iter()
                .filter_map(|s| match &s.target {
                    Target::Url { host, path, .. } => Some(self.layout.bucket_of(host, path)),
                    _ => None,
                })
                .collect();
            b.sort_unstable();
            b.dedup();
            b
        } else {
            (0..self.layout.buckets()).collect()
        }
    }

    /// Runs purge `seq` (`wire`: its [`wire`] form) in `buckets`, or counts what it matches
    /// (`dry`). Returns the objects matched, and the first error if a bucket failed.
    pub(crate) async fn purge_buckets(
        &self,
        buckets: &[usize],
        seq: u64,
        wire: &str,
        dry: bool,
    ) -> (u64, Option<StoreError>) {
        let calls = buckets.iter().map(|&b| {
            let args: Vec<Value> = vec![
                Value::from(seq as i64),
                Value::from(wire),
                Value::from(if dry { "1" } else { "0" }),
                Value::from(self.purge_log_len as i64),
            ];
            self.call::<i64, _>(&self.scripts.purge, self.layout.control_key(b), args)
        });
        let mut matched = 0u64;
        let mut first_err = None;
        for r in join_all(calls).await {
            match r {
                Ok(n) => matched += n.max(0) as u64,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        (matched, first_err)
    }

    /// Takes the next purge sequence number.
    pub(crate) async fn next_seq(&self) -> Result<u64, StoreError> {
        let seq: String = self
            .call(
                &self.scripts.next_seq,
                self.layout.seq_key(),
                Vec::<Value>::new(),
            )
            .await
            .map_err(|e| not_applied(e, "the purge was not applied"))?;
        seq.parse()
            .map_err(|_| corrupt(format!("bad purge sequence number {seq:?}")))
    }

    /// The purge sequence reached so far, if it can be read now.
    pub(crate) async fn current_seq(&self) -> Option<u64> {
        self.conn
            .client()
            .get::<Option<u64>, _>(self.layout.seq_key())
            .await
            .ok()
            .flatten()
    }

    /// Unindexes expired objects, up to `max_rounds` batches of 1000 per bucket.
    pub(crate) async fn sweep(&self, max_rounds: u32) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for b in 0..self.layout.buckets() {
            for _ in 0..max_rounds.min(1000) {
                let n: i64 = self
                    .call(&self.scripts.prune, self.layout.control_key(b), 1000i64)
                    .await?;
                total += n.max(0) as u64;
                if n < 1000 {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Counts objects and bytes in every bucket and caches the sizes (with `capacity`, the
    /// L1's).
    pub(crate) async fn refresh_stats(&self, capacity: u64) -> Result<StoreStats, StoreError> {
        let (client, script) = (self.conn.client(), &self.scripts.stats);
        let calls = (0..self.layout.buckets()).map(|b| {
            script.call::<(i64, i64), _, _>(client, self.layout.control_key(b), Vec::<Value>::new())
        });
        let mut s = StoreStats::default();
        // Outcomes are recorded up to the first failure only (one error per refresh).
        for r in join_all(calls).await {
            let (n, bytes) = self.conn.note(r)?;
            s.objects += n.max(0) as u64;
            s.bytes += bytes.max(0) as u64;
        }
        s.resources = s.objects;
        s.capacity = capacity;
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = s;
        Ok(s)
    }

    /// The sizes cached by the last [`L2::refresh_stats`].
    pub(crate) fn stats(&self) -> StoreStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}
