//! Keeping this node's L1 in step with the others: purge messages in, heartbeats out.
//!
//! Owns the subscription to the purge channel and to this node's heartbeat channel, and the
//! tasks around it: every other node's purge is applied to the L1 as its message arrives; the
//! heartbeats that prove the subscription is complete (see [`crate::l1::lease`]) are sent and
//! confirmed; and the L1 is emptied whenever a message may have been lost (reconnection,
//! lagging receiver, an undecodable purge) or the proof is missing. The messages are
//! [`crate::messages::Message`]s.
//!
//! It receives what it works on (the connection to Redis, the L1, the channel names) and
//! holds them weakly, so its tasks end with the store; it never touches the store itself, the
//! scripts or the objects in Redis.

use std::sync::{Arc, Weak};
use std::time::Duration;

use fred::prelude::*;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use vanish_engine::StoreError;

use crate::connection::Connection;
use crate::l1::L1;
use crate::layout::Layout;
use crate::messages::{now_us, Kind, Message, MessageError};
use crate::ticks::Ticks;

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    }
}

/// Where the heartbeat task sends, and how often.
struct Heartbeats {
    /// This node's heartbeat channel.
    channel: String,
    period: Duration,
}

/// Subscribes and spawns the tasks; they end when the store stops or is dropped.
///
/// `node` is this node's id: its own purges were applied before they were published.
pub(crate) async fn start(
    conn: &Arc<Connection>,
    l1: &Arc<L1>,
    layout: &Layout,
    node: &str,
    heartbeat: Duration,
    stop: watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let hb = Heartbeats {
        channel: layout.heartbeat_channel(node),
        period: heartbeat,
    };
    // Take the receivers before subscribing, so no message is missed.
    let messages = conn.subscriber().message_rx();
    let reconnects = conn.subscriber().reconnect_rx();
    conn.subscribe(vec![layout.purge_channel(), hb.channel.clone()])
        .await?;
    let weak = Arc::downgrade(l1);
    tokio::spawn(message_loop(weak.clone(), node.to_owned(), messages));
    tokio::spawn(reconnect_loop(weak.clone(), reconnects));
    tokio::spawn(heartbeat_loop(weak, Arc::downgrade(conn), hb, stop));
    Ok(())
}

fn handle(l1: &L1, node: &str, channel: &str, msg: &str) {
    match Message::parse(msg) {
        Ok(Message::Heartbeat { session, sent_ms }) => l1.lease().confirmed(session, sent_ms),
        Ok(Message::Variant {
            node: from,
            request,
        }) => {
            // A resource gained a variant on another node: this node's copy is partial.
            if from != node {
                l1.drop_copies(request);
            }
        }
        Ok(Message::Purge {
            node: from,
            seq,
            sent_us,
            request,
        }) => {
            if from == node {
                return; // applied before it was published
            }
            l1.apply_purge(seq, request);
            let delay = now_us().saturating_sub(sent_us) as f64 / 1e6;
            metrics::histogram!("vanish_redis_purge_propagation_seconds").record(delay);
        }
        Err(MessageError::BadRequest {
            kind: Kind::Purge,
            node: from,
            reason,
        }) if from != node => {
            // Cannot tell what it matched: forget everything rather than serve it.
            tracing::warn!(error = %reason, from, "undecodable purge message; emptying the L1");
            l1.drop_all("undecodable purge message");
        }
        Err(e) => tracing::debug!(channel, error = %e, "message ignored"),
    }
}

async fn message_loop(
    weak: Weak<L1>,
    node: String,
    mut rx: tokio::sync::broadcast::Receiver<fred::types::Message>,
) {
    loop {
        let msg = rx.recv().await;
        let Some(l1) = weak.upgrade() else { return };
        match msg {
            Ok(m) => {
                if let Some(t) = text(&m.value) {
                    handle(&l1, &node, &m.channel, &t);
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    lost = n,
                    "purge messages lost (receiver lagged); emptying the L1"
                );
                l1.lost_messages("lagged");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn reconnect_loop(weak: Weak<L1>, mut rx: tokio::sync::broadcast::Receiver<Server>) {
    loop {
        let r = rx.recv().await;
        let Some(l1) = weak.upgrade() else { return };
        match r {
            Ok(server) => {
                // Messages published while we were away are lost: what the L1 holds may
                // have been purged.
                tracing::info!(%server, "purge subscription reconnected; emptying the L1");
                l1.lost_messages("reconnected");
            }
            Err(RecvError::Lagged(_)) => l1.lost_messages("reconnect events lagged"),
            Err(RecvError::Closed) => return,
        }
    }
}

async fn heartbeat_loop(
    l1: Weak<L1>,
    conn: Weak<Connection>,
    hb: Heartbeats,
    stop: watch::Receiver<bool>,
) {
    let mut ticks = Ticks::new(hb.period, stop);
    while ticks.next().await {
        let (Some(l1), Some(conn)) = (l1.upgrade(), conn.upgrade()) else {
            return;
        };
        if !l1.configured() {
            continue;
        }
        l1.check_lease();
        if !conn.both_connected() {
            continue;
        }
        let msg = Message::Heartbeat {
            session: l1.lease().session(),
            sent_ms: l1.lease().now_ms(),
        };
        let publish = conn.publish(hb.channel.clone(), msg.encode());
        let _ = tokio::time::timeout(hb.period * 5, publish).await;
    }
}
