//! The `Store` implementation over Redis with the optional L1: [`RedisStore`].
//!
//! Owns putting the parts together (connecting, then starting the background tasks) and the
//! order of each path described in the crate docs: a lookup tries the L1, then Redis
//! (promoting what it read); an insert goes to Redis, then to the L1, and tells the other
//! nodes when a resource gained a variant; a purge takes a sequence number, runs in Redis,
//! reaches this node's L1, and is published to the others. What each step does belongs to the
//! modules below it ([`crate::l1`], the L2, [`crate::notify`], [`crate::messages`]); this one
//! holds no Redis command, script or message format of its own.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::Either;
use vanish_engine::purge::selector::{QueryMatch, Target};
use vanish_engine::store::{Inserted, PurgeReport, Resource, Store, StoreError, StoreStats};
use vanish_engine::{CachedObject, PurgeRequest, ResourceKey, Selector};

use crate::config::RedisConfig;
use crate::connection::Connection;
use crate::error::{misconfigured, not_applied};
use crate::l1::L1;
use crate::l2::L2;
use crate::messages::{now_us, Message};
use crate::wire;

/// The Redis store. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    max_object_size: usize,
    l1: Arc<L1>,
    l2: Arc<L2>,
    /// Stops the background tasks (they also end when it is dropped).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn node_id() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:x}-{:x}", std::process::id(), t & 0xffff_ffff_ffff)
}

/// Selects one resource exactly (every variant of it).
fn resource_selector(key: &ResourceKey) -> Selector {
    Selector {
        target: Target::Url {
            host: key.host().to_owned(),
            path: key.path().to_owned(),
            query: QueryMatch::Exact(key.query().map(str::to_owned)),
        },
        headers: Vec::new(),
    }
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
        let conn = Arc::new(Connection::open(&cfg).await?);
        let (l2, seq) = L2::open(conn.clone(), &cfg).await?;
        let l2 = Arc::new(l2);
        let l1 = Arc::new(L1::new(
            cfg.l1_capacity,
            cfg.max_variants,
            cfg.l1_lease,
            seq,
        ));
        let (stop, _) = tokio::sync::watch::channel(false);
        let node = node_id();
        crate::notify::start(
            &conn,
            &l1,
            l2.layout(),
            &node,
            cfg.heartbeat,
            stop.subscribe(),
        )
        .await?;
        crate::housekeeping::start(&l1, &l2, stop.subscribe());
        metrics::gauge!("vanish_redis_up").set(1.0);
        let inner = Inner {
            node,
            max_object_size: cfg.max_object_size,
            l1,
            l2,
            stop,
        };
        Ok(RedisStore {
            inner: Arc::new(inner),
        })
    }

    /// This node's id (in purge messages).
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    /// True when an L1 is configured.
    pub fn has_l1(&self) -> bool {
        self.inner.l1.configured()
    }

    /// True while the L1 may be served (its lease holds).
    pub fn l1_valid(&self) -> bool {
        self.inner.l1.valid()
    }

    /// How many times this node emptied its L1 for lack of proof it saw every purge.
    pub fn l1_drops(&self) -> u64 {
        self.inner.l1.drops()
    }

    /// Watches the highest purge sequence number applied to this node's L1 (benchmarks and
    /// tests measure propagation with it).
    pub fn applied_purges(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.l1.applied_purges()
    }

    /// Refreshes the cached sizes now (they are refreshed every second anyway).
    pub async fn refresh_stats(&self) -> Result<StoreStats, StoreError> {
        let i = &self.inner;
        i.l2.refresh_stats(i.l1.capacity()).await
    }

    /// Unindexes every expired object now (tests; a sweep runs every second anyway).
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        self.inner.l2.sweep(u32::MAX).await
    }
}

impl Inner {
    fn connection(&self) -> &Connection {
        self.l2.connection()
    }

    /// Publishes a message on the purge channel.
    async fn announce(&self, msg: Message) -> Result<(), StoreError> {
        let channel = self.l2.layout().purge_channel();
        self.connection().publish(channel, msg.encode()).await
    }

    async fn lookup_l2(&self, key: &ResourceKey) -> Result<Option<Arc<Resource>>, StoreError> {
        if self.connection().ensure_connected().is_err() {
            // A miss: the request goes to the origin. Health and metrics report the outage.
            return Ok(None);
        }
        let l1_epoch = self.l1.read_epoch();
        let objects = self.l2.lookup(key).await?;
        if objects.is_empty() {
            return Ok(None);
        }
        self.l1.promote(&objects, l1_epoch);
        Ok(Some(Arc::new(Resource {
            variants: objects.into_iter().map(Arc::new).collect(),
        })))
    }

    async fn insert(&self, object: CachedObject, fill_epoch: u64) -> Result<Inserted, StoreError> {
        let snap = self.l1.snapshot(fill_epoch);
        if object.body.len() > self.max_object_size {
            // Too large for Redis: kept in this node's L1 only.
            return Ok(self.l1.insert(object, snap).unwrap_or(Inserted::Dropped));
        }
        if let Err(e) = self.connection().ensure_connected() {
            return self.l1.insert(object, snap).ok_or(e);
        }
        let now = SystemTime::now();
        // Without a snapshot the fill is older than anything remembered: check every purge
        // the bucket still logs (and drop it if the log no longer reaches back).
        let stored = self
            .l2
            .insert(&object, snap.map_or(0, |s| s.seq), now)
            .await?;
        if stored.outcome == Inserted::Dropped {
            return Ok(Inserted::Dropped);
        }
        let key = object.key().clone();
        if stored.added && stored.variants > 1 {
            // Other nodes' L1 copies of this resource lack the new variant: make them
            // read the resource from Redis again.
            let msg = Message::Variant {
                node: self.node.clone(),
                request: Arc::new(PurgeRequest::new(vec![resource_selector(&key)])),
            };
            let _ = self.announce(msg).await;
        }
        if self.l1.configured() {
            if stored.outcome == Inserted::MarkedStale {
                object.mark_soft_purged(now);
            }
            if stored.variants <= 1 {
                self.l1.insert(object, snap);
            } else if let Some(s) = snap {
                // Other variants live in Redis: refresh the whole resource in the L1, so the
                // L1 never holds a partial set of variants this node just extended.
                if let Ok(objects) = self.l2.lookup(&key).await {
                    self.l1.promote(&objects, s.l1);
                }
            }
        }
        Ok(stored.outcome)
    }

    async fn purge(&self, req: Arc<PurgeRequest>) -> Result<PurgeReport, StoreError> {
        self.connection()
            .ensure_connected()
            .map_err(|e| not_applied(e, "the purge was not applied (retry when Redis is back)"))?;
        let wire = wire::encode(&req);
        let buckets = self.l2.target_buckets(&req);
        if req.dry_run {
            let (matched, e) = self.l2.purge_buckets(&buckets, 0, &wire, true).await;
            return match e {
                Some(e) => Err(e),
                None => Ok(PurgeReport { matched }),
            };
        }
        let seq = self.l2.next_seq().await?;
        let (matched, bucket_err) = self.l2.purge_buckets(&buckets, seq, &wire, false).await;
        // This node's L1 first, then every other node's.
        self.l1.apply_purge(seq, req.clone());
        let msg = Message::Purge {
            node: self.node.clone(),
            seq,
            sent_us: now_us(),
            request: req,
        };
        let published = self.announce(msg).await;
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
}

impl Store for RedisStore {
    fn lookup(
        &self,
        key: &ResourceKey,
    ) -> impl Future<Output = Result<Option<Arc<Resource>>, StoreError>> + Send {
        // L1 hits are answered before any future is built, and the (large) Redis path is
        // boxed: a hit's future is as small and cheap as the memory store's.
        match self.inner.l1.hit(key) {
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
        self.inner.l1.epoch()
    }

    fn stats(&self) -> StoreStats {
        self.inner.l2.stats()
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn health(&self) -> Result<(), StoreError> {
        self.inner.connection().health()
    }
}
