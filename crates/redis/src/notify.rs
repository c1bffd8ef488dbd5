//! The store's background tasks: purge messages, heartbeats, and housekeeping.
//!
//! Owns the subscription to the purge channel (every other node's purge is applied to this
//! node's L1 as its message arrives), the heartbeats that prove the subscription is complete
//! (see [`crate::l1`]), emptying the L1 whenever that proof is missing or a message may have
//! been lost (reconnection, lagging receiver), and the one-second sweep that unindexes expired
//! objects, refreshes the sizes, and notices when Redis is back.
//!
//! The messages themselves are [`crate::messages::Message`]s.

use std::sync::{Arc, Weak};
use std::time::Duration;

use fred::prelude::*;
use tokio::sync::broadcast::error::RecvError;
use vanish_engine::StoreError;

use crate::error::{unavailable, NOT_CONNECTED};
use crate::messages::{now_us, Kind, Message, MessageError};
use crate::store::Inner;

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    }
}

/// Subscribes and spawns the tasks; they end when the store is dropped.
pub(crate) async fn start(inner: &Arc<Inner>) -> Result<(), StoreError> {
    let purge = inner.layout.purge_channel();
    let hb = inner.layout.heartbeat_channel(&inner.node);
    // Take the receivers before subscribing, so no message is missed.
    let messages = inner.subscriber.message_rx();
    let reconnects = inner.subscriber.reconnect_rx();
    let sub = if inner.clustered {
        inner.subscriber.ssubscribe(vec![purge, hb]).await
    } else {
        inner.subscriber.subscribe(vec![purge, hb]).await
    };
    sub.map_err(|e| unavailable(format!("cannot subscribe to purge messages: {e}")))?;
    // Re-subscribes after every reconnection (the task runs detached).
    drop(inner.subscriber.manage_subscriptions());
    let weak = Arc::downgrade(inner);
    tokio::spawn(message_loop(weak.clone(), messages));
    tokio::spawn(reconnect_loop(weak.clone(), reconnects));
    tokio::spawn(heartbeat_loop(weak.clone(), inner.stop.subscribe()));
    tokio::spawn(housekeeping_loop(weak, inner.stop.subscribe()));
    Ok(())
}

fn handle(inner: &Inner, channel: &str, msg: &str) {
    match Message::parse(msg) {
        Ok(Message::Heartbeat { session, sent_ms }) => inner.lease.confirmed(session, sent_ms),
        Ok(Message::Variant { node, request }) => {
            // A resource gained a variant on another node: drop this node's (now partial) L1
            // copy. Not a purge: recorded in the L1's own log only, so a concurrent promotion
            // of the partial copy is refused too.
            if let (true, Some(l1)) = (node != inner.node, &inner.l1) {
                let _ =
                    futures_util::FutureExt::now_or_never(vanish_engine::Store::purge(l1, request));
            }
        }
        Ok(Message::Purge {
            node,
            seq,
            sent_us,
            request,
        }) => {
            if node == inner.node {
                return; // applied before it was published
            }
            inner.apply_to_l1(seq, request);
            let delay = now_us().saturating_sub(sent_us) as f64 / 1e6;
            metrics::histogram!("vanish_redis_purge_propagation_seconds").record(delay);
        }
        Err(MessageError::BadRequest {
            kind: Kind::Purge,
            node,
            reason,
        }) if node != inner.node => {
            // Cannot tell what it matched: forget everything rather than serve it.
            tracing::warn!(error = %reason, "undecodable purge message; emptying the L1");
            inner.drop_l1("undecodable purge message");
        }
        Err(e) => tracing::debug!(channel, error = %e, "message ignored"),
    }
}

async fn message_loop(
    weak: Weak<Inner>,
    mut rx: tokio::sync::broadcast::Receiver<fred::types::Message>,
) {
    loop {
        let msg = rx.recv().await;
        let Some(inner) = weak.upgrade() else { return };
        match msg {
            Ok(m) => {
                if let Some(t) = text(&m.value) {
                    handle(&inner, &m.channel, &t);
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    lost = n,
                    "purge messages lost (receiver lagged); emptying the L1"
                );
                inner.lease.new_session();
                inner.drop_l1("lagged");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn reconnect_loop(weak: Weak<Inner>, mut rx: tokio::sync::broadcast::Receiver<Server>) {
    loop {
        let r = rx.recv().await;
        let Some(inner) = weak.upgrade() else { return };
        match r {
            Ok(server) => {
                // Messages published while we were away are lost: what the L1 holds may
                // have been purged.
                tracing::info!(%server, "purge subscription reconnected; emptying the L1");
                inner.lease.new_session();
                inner.drop_l1("reconnected");
            }
            Err(RecvError::Lagged(_)) => {
                inner.lease.new_session();
                inner.drop_l1("reconnect events lagged");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn heartbeat_loop(weak: Weak<Inner>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let period = match weak.upgrade() {
        Some(i) => i.cfg.heartbeat,
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.l1.is_none() {
            continue;
        }
        if inner.lease.expired() {
            inner.drop_l1("no proof of a complete purge stream within the lease");
        }
        if !inner.subscriber.is_connected() || !inner.client.is_connected() {
            continue;
        }
        let msg = Message::Heartbeat {
            session: inner.lease.session(),
            sent_ms: inner.lease.now_ms(),
        }
        .encode();
        let channel = inner.layout.heartbeat_channel(&inner.node);
        let publish = inner.publish(channel, msg);
        let _ = tokio::time::timeout(period * 5, publish).await;
    }
}

async fn housekeeping_loop(weak: Weak<Inner>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(inner) = weak.upgrade() else { return };
        if !inner.client.is_connected() {
            inner.mark_down(&NOT_CONNECTED);
            continue;
        }
        let _ = inner.sweep(1).await;
        let _ = inner.refresh_stats().await;
        // Learn the purge sequence even if messages were lost, so fills are checked
        // against few log entries.
        if let Ok(Some(seq)) = inner
            .client
            .get::<Option<u64>, _>(inner.layout.seq_key())
            .await
        {
            if seq > inner.epochs.known_seq() {
                let l1 = inner.l1.clone();
                inner
                    .epochs
                    .advance(seq, || l1.as_ref().map_or(0, vanish_engine::Store::epoch));
            }
        }
    }
}
