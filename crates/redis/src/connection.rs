//! The connection to Redis: the command client, the subscriber client, and whether Redis can
//! be reached.
//!
//! Owns building both clients from the settings (standalone or Cluster, timeouts, the
//! reconnect policy: they reconnect by themselves), connecting them at start, the health state
//! (down from a connection error until the next success, with the last error), turning client
//! results into store errors, subscribing and publishing. It knows nothing of keys, scripts,
//! the L1 or what messages say.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use vanish_engine::StoreError;

use crate::config::RedisConfig;
use crate::error::{from_client, is_outage, misconfigured, unavailable, NOT_CONNECTED};

/// Both clients and the health state.
pub(crate) struct Connection {
    client: Client,
    subscriber: SubscriberClient,
    clustered: bool,
    /// False from a connection error until the next success.
    up: AtomicBool,
    last_error: Mutex<String>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let (c, s) = (self.client.clone(), self.subscriber.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = c.quit().await;
                let _ = s.quit().await;
            });
        }
    }
}

fn builder(cfg: &RedisConfig) -> Result<Builder, StoreError> {
    // The section was checked when it was resolved; a config built in code is checked here.
    let mut b = Builder::from_config(cfg.fred_config().map_err(misconfigured)?);
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

impl Connection {
    /// Builds both clients and connects them; fails when Redis cannot be reached now.
    pub(crate) async fn open(cfg: &RedisConfig) -> Result<Connection, StoreError> {
        let b = builder(cfg)?;
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
        Ok(Connection {
            clustered: client.is_clustered(),
            client,
            subscriber,
            up: AtomicBool::new(true),
            last_error: Mutex::new(String::new()),
        })
    }

    /// The command client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The subscriber client.
    pub(crate) fn subscriber(&self) -> &SubscriberClient {
        &self.subscriber
    }

    /// True while the command client is connected (it may be reconnecting otherwise).
    pub(crate) fn connected(&self) -> bool {
        self.client.is_connected()
    }

    /// True while both clients are connected.
    pub(crate) fn both_connected(&self) -> bool {
        self.subscriber.is_connected() && self.client.is_connected()
    }

    /// Records that Redis cannot be reached (logged once per outage).
    pub(crate) fn mark_down(&self, e: &dyn std::fmt::Display) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %e, "redis store unavailable; serving from the L1 and the origin until it is back");
            metrics::gauge!("vanish_redis_up").set(0.0);
        }
        metrics::counter!("vanish_redis_errors_total").increment(1);
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!("redis store reachable again");
            metrics::gauge!("vanish_redis_up").set(1.0);
        }
    }

    /// Fails fast (and records the outage) while the client is reconnecting.
    pub(crate) fn ensure_connected(&self) -> Result<(), StoreError> {
        if self.client.is_connected() {
            Ok(())
        } else {
            self.mark_down(&NOT_CONNECTED);
            Err(unavailable(NOT_CONNECTED))
        }
    }

    /// Records the outcome of a command.
    pub(crate) fn note<T>(&self, r: Result<T, Error>) -> Result<T, StoreError> {
        match r {
            Ok(v) => {
                self.mark_up();
                Ok(v)
            }
            Err(e) => {
                if is_outage(&e) {
                    self.mark_down(&e);
                } else {
                    metrics::counter!("vanish_redis_errors_total").increment(1);
                }
                Err(from_client(&e))
            }
        }
    }

    /// Subscribes the subscriber client to `channels` (sharded in Cluster mode), and keeps it
    /// subscribed across reconnections.
    pub(crate) async fn subscribe(&self, channels: Vec<String>) -> Result<(), StoreError> {
        let sub = if self.clustered {
            self.subscriber.ssubscribe(channels).await
        } else {
            self.subscriber.subscribe(channels).await
        };
        sub.map_err(|e| unavailable(format!("cannot subscribe to purge messages: {e}")))?;
        // Re-subscribes after every reconnection (the task runs detached).
        drop(self.subscriber.manage_subscriptions());
        Ok(())
    }

    /// Publishes `msg` on `channel` (sharded in Cluster mode).
    pub(crate) async fn publish(&self, channel: String, msg: String) -> Result<(), StoreError> {
        let r = if self.clustered {
            self.client.spublish::<i64, _, _>(channel, msg).await
        } else {
            self.client.publish::<i64, _, _>(channel, msg).await
        };
        self.note(r).map(|_| ())
    }

    /// `Ok` while Redis can be reached; otherwise what went wrong last.
    pub(crate) fn health(&self) -> Result<(), StoreError> {
        if self.client.is_connected() && self.up.load(Ordering::Acquire) {
            return Ok(());
        }
        let last = self
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
