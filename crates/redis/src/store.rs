//! The `Store` implementation over Redis (with the optional L1), and its connection.
//!
//! Owns connecting (standalone or Cluster, reconnecting by itself), the lookup, insert and
//! purge paths described in the crate docs, the health state, and the cached sizes. Purge
//! messages, heartbeats and housekeeping run in [`crate::notify`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use futures_util::future::{join_all, Either};
use futures_util::FutureExt;
use vanish_engine::store::{Inserted, PurgeReport, Resource, Store, StoreError, StoreStats};
use vanish_engine::{CachedObject, PurgeRequest, ResourceKey};
use vanish_memory::MemoryStore;

use crate::codec;
use crate::config::RedisConfig;
use crate::epochs::Epochs;
use crate::error::{
    corrupt, from_client, is_outage, misconfigured, not_applied, unavailable, NOT_CONNECTED,
};
use crate::l1::Lease;
use crate::layout::Layout;
use crate::messages::{now_us, Message};
use crate::scripts::Scripts;
use crate::wire;

/// Objects unindexed by an insert on its way (keeps the expiry queue short between sweeps).
const PRUNE_ON_INSERT: u32 = 4;

/// The Redis store. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: RedisConfig,
    pub(crate) layout: Layout,
    pub(crate) client: Client,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) scripts: Scripts,
    pub(crate) l1: Option<MemoryStore>,
    pub(crate) epochs: Epochs,
    pub(crate) lease: Lease,
    pub(crate) node: String,
    pub(crate) clustered: bool,
    /// False from a connection error until the next success.
    pub(crate) up: AtomicBool,
    pub(crate) last_error: Mutex<String>,
    pub(crate) stats: Mutex<StoreStats>,
    pub(crate) l1_drops: AtomicU64,
    /// Highest purge sequence number applied to this node's L1.
    pub(crate) applied: tokio::sync::watch::Sender<u64>,
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let (c, s) = (self.client.clone(), self.subscriber.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = c.quit().await;
                let _ = s.quit().await;
            });
        }
    }
}

fn fred_config(cfg: &RedisConfig) -> Result<Config, StoreError> {
    if cfg.cluster_nodes.is_empty() {
        return Config::from_url(&cfg.url)
            .map_err(|e| misconfigured(format!("bad url {:?}: {e}", cfg.url)));
    }
    let mut hosts = Vec::new();
    for n in &cfg.cluster_nodes {
        let n = n
            .trim_start_matches("redis://")
            .trim_start_matches("valkey://");
        let (h, p) = n
            .rsplit_once(':')
            .ok_or_else(|| misconfigured(format!("cluster node {n:?} is not HOST:PORT")))?;
        let p: u16 = p
            .parse()
            .map_err(|_| misconfigured(format!("cluster node {n:?}: bad port")))?;
        hosts.push((h.to_owned(), p));
    }
    Ok(Config {
        server: ServerConfig::new_clustered(hosts),
        ..Default::default()
    })
}

fn builder(cfg: &RedisConfig) -> Result<Builder, StoreError> {
    let mut b = Builder::from_config(fred_config(cfg)?);
    let timeout = cfg.timeout;
    b.with_connection_config(|c| {
        c.connection_timeout = timeout;
        c.internal_command_timeout = timeout;
        c.max_command_attempts = 2;
        c.unresponsive.max_timeout = Some(timeout * 2);
        c.unresponsive.interval = Duration::from_millis(500);
        c.tcp.nodelay = Some(true);
    })
    .with_performance_config(|p| {
        p.default_command_timeout = timeout;
        p.broadcast_channel_capacity = 65_536;
    })
    .set_policy(ReconnectPolicy::new_exponential(0, 50, 1000, 2));
    Ok(b)
}

fn node_id() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:x}-{:x}", std::process::id(), t & 0xffff_ffff_ffff)
}

impl RedisStore {
    /// Connects, loads the scripts, checks the layout and starts the background tasks.
    ///
    /// Fails when Redis cannot be reached now; afterwards the store reconnects by itself.
    pub async fn connect(cfg: RedisConfig) -> Result<RedisStore, StoreError> {
        if cfg.prefix.contains(['{', '}']) || cfg.prefix.is_empty() {
            return Err(misconfigured(
                "prefix must be non-empty, without '{' or '}'",
            ));
        }
        let b = builder(&cfg)?;
        let client = b.build().map_err(|e| from_client(&e))?;
        let subscriber = b.build_subscriber_client().map_err(|e| from_client(&e))?;
        let where_ = if cfg.cluster_nodes.is_empty() {
            cfg.url.clone()
        } else {
            cfg.cluster_nodes.join(",")
        };
        let connect = async {
            client.init().await?;
            subscriber.init().await?;
            Ok::<_, Error>(())
        };
        match tokio::time::timeout(cfg.timeout * 3, connect).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(unavailable(format!("cannot connect to {where_}: {e}"))),
            Err(_) => {
                return Err(unavailable(format!(
                    "cannot connect to {where_}: timed out"
                )))
            }
        }
        let clustered = client.is_clustered();
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
        let scripts = Scripts::load(&client).await.map_err(|e| from_client(&e))?;
        let seq: Option<u64> = client
            .get(layout.seq_key())
            .await
            .map_err(|e| from_client(&e))?;
        let l1 = (cfg.l1_capacity > 0)
            .then(|| MemoryStore::with_max_variants(cfg.l1_capacity, cfg.max_variants));
        let l1_epoch = l1.as_ref().map_or(0, |l| l.epoch());
        let (stop, _) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Inner {
            lease: Lease::new(cfg.l1_lease),
            epochs: Epochs::new(l1_epoch, seq.unwrap_or(0)),
            layout,
            client,
            subscriber,
            scripts,
            l1,
            node: node_id(),
            clustered,
            up: AtomicBool::new(true),
            last_error: Mutex::new(String::new()),
            stats: Mutex::new(StoreStats::default()),
            l1_drops: AtomicU64::new(0),
            applied: tokio::sync::watch::channel(0).0,
            stop,
            cfg,
        });
        crate::notify::start(&inner).await?;
        metrics::gauge!("vanish_redis_up").set(1.0);
        Ok(RedisStore { inner })
    }

    /// This node's id (in purge messages).
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    /// True when an L1 is configured.
    pub fn has_l1(&self) -> bool {
        self.inner.l1.is_some()
    }

    /// True while the L1 may be served (its lease holds).
    pub fn l1_valid(&self) -> bool {
        self.inner.l1.is_some() && self.inner.lease.valid()
    }

    /// How many times this node emptied its L1 for lack of proof it saw every purge.
    pub fn l1_drops(&self) -> u64 {
        self.inner.l1_drops.load(Ordering::Relaxed)
    }

    /// Watches the highest purge sequence number applied to this node's L1 (benchmarks and
    /// tests measure propagation with it).
    pub fn applied_purges(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.applied.subscribe()
    }

    /// Refreshes the cached sizes now (they are refreshed every second anyway).
    pub async fn refresh_stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.refresh_stats().await
    }

    /// Unindexes every expired object now (tests; a sweep runs every second anyway).
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        self.inner.sweep(u32::MAX).await
    }
}

impl Inner {
    pub(crate) fn mark_down(&self, e: &dyn std::fmt::Display) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %e, "redis store unavailable; serving from the L1 and the origin until it is back");
            metrics::gauge!("vanish_redis_up").set(0.0);
        }
        metrics::counter!("vanish_redis_errors_total").increment(1);
    }

    pub(crate) fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!("redis store reachable again");
            metrics::gauge!("vanish_redis_up").set(1.0);
        }
    }

    /// Fails fast while the client is reconnecting.
    fn ensure_connected(&self) -> Result<(), StoreError> {
        if self.client.is_connected() {
            Ok(())
        } else {
            self.mark_down(&NOT_CONNECTED);
            Err(unavailable(NOT_CONNECTED))
        }
    }

    /// Records the outcome of a command.
    fn note<T>(&self, r: Result<T, Error>) -> Result<T, StoreError> {
        match r {
            Ok(v) => {
                self.mark_up();
                Ok(v)
            }
            Err(e) => {
                let se = from_client(&e);
                if is_outage(&e) {
                    self.mark_down(&e);
                } else {
                    metrics::counter!("vanish_redis_errors_total").increment(1);
                }
                Err(se)
            }
        }
    }

    /// Empties the L1 (it may have missed purges) and records it as a purge of everything.
    pub(crate) fn drop_l1(&self, why: &str) {
        let Some(l1) = &self.l1 else { return };
        let all = Arc::new(PurgeRequest::new(vec![vanish_engine::Selector::all()]));
        self.epochs.advance(0, || {
            let _ = l1.purge(all).now_or_never();
            l1.epoch()
        });
        self.lease.emptied();
        self.l1_drops.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("vanish_redis_l1_drops_total").increment(1);
        tracing::debug!(reason = why, "L1 emptied");
    }

    /// Applies a purge learned from Redis (ours or another node's) to the L1.
    pub(crate) fn apply_to_l1(&self, seq: u64, req: Arc<PurgeRequest>) {
        match &self.l1 {
            Some(l1) => {
                self.epochs.advance(seq, || {
                    let _ = l1.purge(req).now_or_never();
                    l1.epoch()
                });
            }
            None => {
                self.epochs.advance(seq, || 0);
            }
        }
        self.applied.send_modify(|v| *v = (*v).max(seq));
    }

    async fn l2_lookup(&self, key: &ResourceKey) -> Result<Vec<CachedObject>, StoreError> {
        let rkey = codec::resource_key(key);
        let bucket = self.layout.bucket_of(key.host(), key.path());
        let out: Vec<Value> = self.note(
            self.scripts
                .lookup
                .call(&self.client, self.layout.control_key(bucket), rkey)
                .await,
        )?;
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

    /// Copies objects read from Redis into the L1, unless a purge reached the L1 since
    /// `l1_epoch` (taken before the read) and matches them.
    fn promote(&self, objects: &[CachedObject], l1_epoch: u64) {
        let Some(l1) = &self.l1 else { return };
        for o in objects {
            // Shares body and headers; keeps the soft-purge mark.
            let _ = l1.insert(o.clone(), l1_epoch).now_or_never();
        }
    }

    /// The L1's copy, if the lease allows serving it (no await, no allocation).
    fn l1_hit(&self, key: &ResourceKey) -> Option<Arc<Resource>> {
        let l1 = self.l1.as_ref()?;
        if !self.lease.valid() {
            // No proof this node saw every purge for a whole lease: start afresh now rather
            // than at the next heartbeat tick.
            self.drop_l1("no proof of a complete purge stream within the lease");
        }
        l1.lookup(key).now_or_never()?.ok()?
    }

    async fn lookup_l2(&self, key: &ResourceKey) -> Result<Option<Arc<Resource>>, StoreError> {
        if !self.client.is_connected() {
            self.mark_down(&NOT_CONNECTED);
            // A miss: the request goes to the origin. Health and metrics report the outage.
            return Ok(None);
        }
        let l1_epoch = self.l1.as_ref().map_or(0, |l| l.epoch());
        let objects = self.l2_lookup(key).await?;
        if objects.is_empty() {
            return Ok(None);
        }
        self.promote(&objects, l1_epoch);
        Ok(Some(Arc::new(Resource {
            variants: objects.into_iter().map(Arc::new).collect(),
        })))
    }

    async fn insert(&self, object: CachedObject, fill_epoch: u64) -> Result<Inserted, StoreError> {
        let snap = self.epochs.resolve(fill_epoch);
        let l1_insert = |obj: CachedObject| -> Option<Inserted> {
            let (l1, snap) = (self.l1.as_ref()?, snap?);
            l1.insert(obj, snap.l1).now_or_never()?.ok()
        };
        if object.body.len() > self.cfg.max_object_size {
            // Too large for Redis: kept in this node's L1 only.
            return Ok(l1_insert(object).unwrap_or(Inserted::Dropped));
        }
        if !self.client.is_connected() {
            self.mark_down(&NOT_CONNECTED);
            return match l1_insert(object) {
                Some(outcome) => Ok(outcome),
                None => Err(unavailable(NOT_CONNECTED)),
            };
        }
        let now = SystemTime::now();
        let ttl = object
            .retain_until()
            .duration_since(now)
            .unwrap_or_default()
            + self.cfg.grace;
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let key = object.key().clone();
        let rkey = codec::resource_key(&key);
        let vfield = codec::variant_field(&object);
        let blob = codec::encode(&object).map_err(corrupt)?;
        let record = codec::record(&object, &rkey, &vfield, blob.len() + rkey.len() + 256);
        let bucket = self.layout.bucket_of(key.host(), key.path());
        // Without a snapshot the fill is older than anything remembered: check every purge
        // the bucket still logs (and drop it if the log no longer reaches back).
        let fill_seq = snap.map_or(0, |s| s.seq);
        let args: Vec<Value> = vec![
            Value::from(fill_seq as i64),
            Value::from(rkey),
            Value::from(vfield),
            Value::from(record),
            Value::Bytes(blob),
            Value::from(ttl_ms as i64),
            Value::from(self.cfg.max_variants as i64),
            Value::from(PRUNE_ON_INSERT as i64),
        ];
        let (state, variants, added): (i64, i64, i64) = self.note(
            self.scripts
                .insert
                .call(&self.client, self.layout.control_key(bucket), args)
                .await,
        )?;
        let outcome = match state {
            0 => Inserted::Fresh,
            1 => Inserted::MarkedStale,
            _ => return Ok(Inserted::Dropped),
        };
        if added == 1 && variants > 1 {
            // Other nodes' L1 copies of this resource lack the new variant: make them
            // read the resource from Redis again.
            let sel = vanish_engine::Selector {
                target: vanish_engine::selector::Target::Url {
                    host: key.host().to_owned(),
                    path: key.path().to_owned(),
                    query: vanish_engine::selector::QueryMatch::Exact(
                        key.query().map(str::to_owned),
                    ),
                },
                headers: Vec::new(),
            };
            let msg = Message::Variant {
                node: self.node.clone(),
                request: Arc::new(PurgeRequest::new(vec![sel])),
            };
            let _ = self
                .publish(self.layout.purge_channel(), msg.encode())
                .await;
        }
        if self.l1.is_some() {
            if outcome == Inserted::MarkedStale {
                object.mark_soft_purged(now);
            }
            if variants <= 1 {
                l1_insert(object);
            } else if let Some(s) = snap {
                // Other variants live in Redis: refresh the whole resource in the L1, so the
                // L1 never holds a partial set of variants this node just extended.
                if let Ok(objects) = self.l2_lookup(&key).await {
                    self.promote(&objects, s.l1);
                }
            }
        }
        Ok(outcome)
    }

    fn target_buckets(&self, req: &PurgeRequest) -> Vec<usize> {
        if wire::url_only(req) {
            let mut b: Vec<usize> = req
                .selectors
                .iter()
                .filter_map(|s| match &s.target {
                    vanish_engine::selector::Target::Url { host, path, .. } => {
                        Some(self.layout.bucket_of(host, path))
                    }
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

    async fn run_buckets(
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
                Value::from(self.cfg.purge_log_len as i64),
            ];
            self.scripts
                .purge
                .call::<i64, _, _>(&self.client, self.layout.control_key(b), args)
        });
        let mut matched = 0u64;
        let mut first_err = None;
        for r in join_all(calls).await {
            match self.note(r) {
                Ok(n) => matched += n.max(0) as u64,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        (matched, first_err)
    }

    async fn purge(&self, req: Arc<PurgeRequest>) -> Result<PurgeReport, StoreError> {
        self.ensure_connected()
            .map_err(|e| not_applied(e, "the purge was not applied (retry when Redis is back)"))?;
        let wire = wire::encode(&req);
        let buckets = self.target_buckets(&req);
        if req.dry_run {
            let (matched, e) = self.run_buckets(&buckets, 0, &wire, true).await;
            return match e {
                Some(e) => Err(e),
                None => Ok(PurgeReport { matched }),
            };
        }
        let seq: String = self
            .note(
                self.scripts
                    .next_seq
                    .call(&self.client, self.layout.seq_key(), Vec::<Value>::new())
                    .await,
            )
            .map_err(|e| not_applied(e, "the purge was not applied"))?;
        let seq: u64 = seq
            .parse()
            .map_err(|_| corrupt(format!("bad purge sequence number {seq:?}")))?;
        let (matched, bucket_err) = self.run_buckets(&buckets, seq, &wire, false).await;
        // This node's L1 first, then every other node's.
        self.apply_to_l1(seq, req.clone());
        let msg = Message::Purge {
            node: self.node.clone(),
            seq,
            sent_us: now_us(),
            request: req,
        };
        let published = self
            .publish(self.layout.purge_channel(), msg.encode())
            .await;
        if let Some(e) = bucket_err {
            return Err(not_applied(
                e,
                format!("purge {seq} may be only partly applied (retry it)"),
            ));
        }
        if let Err(e) = published {
            return Err(not_applied(
                e,
                format!("purge {seq} is applied in Redis but could not be announced to the other nodes' L1 (retry it)"),
            ));
        }
        Ok(PurgeReport { matched })
    }

    pub(crate) async fn publish(&self, channel: String, msg: String) -> Result<(), StoreError> {
        let r = if self.clustered {
            self.client.spublish::<i64, _, _>(channel, msg).await
        } else {
            self.client.publish::<i64, _, _>(channel, msg).await
        };
        self.note(r).map(|_| ())
    }

    pub(crate) async fn sweep(&self, max_rounds: u32) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for b in 0..self.layout.buckets() {
            for _ in 0..max_rounds.min(1000) {
                let n: i64 = self.note(
                    self.scripts
                        .prune
                        .call(&self.client, self.layout.control_key(b), 1000i64)
                        .await,
                )?;
                total += n.max(0) as u64;
                if n < 1000 {
                    break;
                }
            }
        }
        Ok(total)
    }

    pub(crate) async fn refresh_stats(&self) -> Result<StoreStats, StoreError> {
        let calls = (0..self.layout.buckets()).map(|b| {
            self.scripts.stats.call::<(i64, i64), _, _>(
                &self.client,
                self.layout.control_key(b),
                Vec::<Value>::new(),
            )
        });
        let mut s = StoreStats::default();
        for r in join_all(calls).await {
            let (n, bytes) = self.note(r)?;
            s.objects += n.max(0) as u64;
            s.bytes += bytes.max(0) as u64;
        }
        s.resources = s.objects;
        if let Some(l1) = &self.l1 {
            s.capacity = l1.stats().capacity;
        }
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = s;
        Ok(s)
    }
}

fn value_bytes(v: Value) -> Option<Bytes> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::String(s) => Some(s.into_inner()),
        _ => None,
    }
}

impl Store for RedisStore {
    fn lookup(
        &self,
        key: &ResourceKey,
    ) -> impl Future<Output = Result<Option<Arc<Resource>>, StoreError>> + Send {
        // L1 hits are answered before any future is built, and the (large) Redis path is
        // boxed: a hit's future is as small and cheap as the memory store's.
        match self.inner.l1_hit(key) {
            Some(r) => Either::Left(std::future::ready(Ok(Some(r)))),
            None => Either::Right(Box::pin(self.inner.lookup_l2(key))),
        }
    }

    fn insert(
        &self,
        object: CachedObject,
        fill_epoch: u64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send {
        let inner = self.inner.clone();
        async move { inner.insert(object, fill_epoch).await }
    }

    fn purge(
        &self,
        request: Arc<PurgeRequest>,
    ) -> impl Future<Output = Result<PurgeReport, StoreError>> + Send {
        let inner = self.inner.clone();
        async move { inner.purge(request).await }
    }

    fn epoch(&self) -> u64 {
        self.inner.epochs.current()
    }

    fn stats(&self) -> StoreStats {
        *self.inner.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn health(&self) -> Result<(), StoreError> {
        let i = &self.inner;
        if i.client.is_connected() && i.up.load(Ordering::Acquire) {
            return Ok(());
        }
        let last = i
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let last = if last.is_empty() {
            NOT_CONNECTED.to_owned()
        } else {
            last
        };
        Err(unavailable(format!(
            "{last}; serving from the L1 and the origin, purges fail until it is back"
        )))
    }
}
