//! The messages nodes send each other through Redis pub/sub, and their text form.
//!
//! Owns [`Message`] (every kind there is), its [`Message::encode`] and its
//! [`Message::parse`], which refuses anything else with a [`MessageError`] and never panics.
//! Purge requests inside messages are in the [`crate::wire`] form. It talks to no server and
//! knows nothing of channels, the L1 or the store.
//!
//! | kind | text | channel |
//! |---|---|---|
//! | [`Message::Purge`] | `P|node|seq|sent-unix-µs|wire-request` | the purge channel |
//! | [`Message::Variant`] | `V|node|wire-request` | the purge channel |
//! | [`Message::Heartbeat`] | `H|session|sent-ms` | the node's heartbeat channel |
//!
//! Node ids never contain `|` (see [`Message::encode`]).

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use vanish_engine::PurgeRequest;

use crate::wire;

/// One node-to-node message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A purge acknowledged by `node`: every other node applies it to its L1.
    Purge {
        /// The node that ran it (it applied the purge before publishing).
        node: String,
        /// Its sequence number in Redis.
        seq: u64,
        /// When it was published, in microseconds since the Unix epoch ([`now_us`]).
        sent_us: u128,
        /// The purge.
        request: Arc<PurgeRequest>,
    },
    /// A resource gained a variant on `node`: the other nodes drop their (now partial) L1
    /// copy of it. Not a purge: the request is a `url` selector naming the resource.
    Variant {
        /// The node that stored the variant.
        node: String,
        /// Selects the resource.
        request: Arc<PurgeRequest>,
    },
    /// A node's heartbeat to itself: received, it proves every purge published before it
    /// was received first (see `l1`).
    Heartbeat {
        /// The subscription session it was sent in.
        session: u64,
        /// When it was sent, on the lease's clock (milliseconds).
        sent_ms: u64,
    },
}

/// Which kind a message said it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `P|`
    Purge,
    /// `V|`
    Variant,
    /// `H|`
    Heartbeat,
}

/// Why a text is not a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// It starts with no known kind.
    UnknownKind,
    /// A field is missing, or a number does not parse.
    Malformed {
        /// The kind it said it was.
        kind: Kind,
        /// The field at fault.
        field: &'static str,
    },
    /// Its purge request does not decode. For a [`Kind::Purge`] from another node this is
    /// serious: what the purge matched cannot be known.
    BadRequest {
        /// The kind it said it was.
        kind: Kind,
        /// The node that sent it.
        node: String,
        /// Why the request does not decode.
        reason: String,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::UnknownKind => write!(f, "unknown message kind"),
            MessageError::Malformed { kind, field } => {
                write!(f, "{kind:?} message: missing or bad {field}")
            }
            MessageError::BadRequest { kind, node, reason } => {
                write!(
                    f,
                    "{kind:?} message from {node:?}: undecodable request ({reason})"
                )
            }
        }
    }
}

impl std::error::Error for MessageError {}

/// Microseconds since the Unix epoch: the clock [`Message::Purge`] is stamped with.
pub fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

impl Message {
    /// The text form. `node` must not contain `|` (node ids are hexadecimal).
    pub fn encode(&self) -> String {
        match self {
            Message::Purge {
                node,
                seq,
                sent_us,
                request,
            } => format!("P|{node}|{seq}|{sent_us}|{}", wire::encode(request)),
            Message::Variant { node, request } => {
                format!("V|{node}|{}", wire::encode(request))
            }
            Message::Heartbeat { session, sent_ms } => format!("H|{session}|{sent_ms}"),
        }
    }

    /// Reads [`Message::encode`]'s form back; refuses anything else.
    pub fn parse(text: &str) -> Result<Message, MessageError> {
        let (kind, rest) = match text.split_once('|') {
            Some(("P", rest)) => (Kind::Purge, rest),
            Some(("V", rest)) => (Kind::Variant, rest),
            Some(("H", rest)) => (Kind::Heartbeat, rest),
            _ => return Err(MessageError::UnknownKind),
        };
        let mut fields = Fields { kind, rest };
        match kind {
            Kind::Heartbeat => {
                let session = fields.number("session")?;
                let sent_ms = fields.last().parse().map_err(|_| fields.bad("sent"))?;
                Ok(Message::Heartbeat { session, sent_ms })
            }
            Kind::Variant => {
                let node = fields.next("node")?.to_owned();
                let request = fields.request(&node)?;
                Ok(Message::Variant { node, request })
            }
            Kind::Purge => {
                let node = fields.next("node")?.to_owned();
                let seq = fields.number("seq")?;
                let sent_us = fields.number("sent")?;
                let request = fields.request(&node)?;
                Ok(Message::Purge {
                    node,
                    seq,
                    sent_us,
                    request,
                })
            }
        }
    }
}

/// The `|`-separated fields after the kind, read left to right (the last takes the rest).
struct Fields<'a> {
    kind: Kind,
    rest: &'a str,
}

impl<'a> Fields<'a> {
    fn bad(&self, field: &'static str) -> MessageError {
        MessageError::Malformed {
            kind: self.kind,
            field,
        }
    }

    fn next(&mut self, field: &'static str) -> Result<&'a str, MessageError> {
        let (value, rest) = self.rest.split_once('|').ok_or_else(|| self.bad(field))?;
        self.rest = rest;
        Ok(value)
    }

    fn number<N: std::str::FromStr>(&mut self, field: &'static str) -> Result<N, MessageError> {
        self.next(field)?.parse().map_err(|_| self.bad(field))
    }

    fn last(&self) -> &'a str {
        self.rest
    }

    fn request(&self, node: &str) -> Result<Arc<PurgeRequest>, MessageError> {
        wire::decode(self.rest)
            .map(Arc::new)
            .map_err(|reason| MessageError::BadRequest {
                kind: self.kind,
                node: node.to_owned(),
                reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vanish_engine::{PurgeMode, Selector};

    fn request() -> Arc<PurgeRequest> {
        let mut r = PurgeRequest::new(vec![
            Selector::tag("post-1"),
            Selector::url("http://h.example/a?b=1").unwrap(),
            Selector::prefix("/blog/").on_host("h.example"),
        ]);
        r.mode = PurgeMode::Soft;
        Arc::new(r)
    }

    #[test]
    fn every_kind_round_trips() {
        for m in [
            Message::Purge {
                node: "1f-2a".into(),
                seq: 1_700_000_000_123_000,
                sent_us: now_us(),
                request: request(),
            },
            Message::Variant {
                node: "1f-2a".into(),
                request: request(),
            },
            Message::Heartbeat {
                session: 3,
                sent_ms: 12_345,
            },
        ] {
            let text = m.encode();
            assert_eq!(Message::parse(&text), Ok(m), "{text}");
        }
    }

    #[test]
    fn the_text_form_is_the_documented_one() {
        let h = Message::Heartbeat {
            session: 2,
            sent_ms: 9,
        };
        assert_eq!(h.encode(), "H|2|9");
        let p = Message::Purge {
            node: "n".into(),
            seq: 7,
            sent_us: 8,
            request: request(),
        };
        assert_eq!(p.encode(), format!("P|n|7|8|{}", wire::encode(&request())));
        let v = Message::Variant {
            node: "n".into(),
            request: request(),
        };
        assert_eq!(v.encode(), format!("V|n|{}", wire::encode(&request())));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let wire = wire::encode(&request());
        let malformed = |kind, field| Err(MessageError::Malformed { kind, field });
        assert_eq!(Message::parse(""), Err(MessageError::UnknownKind));
        assert_eq!(Message::parse("P"), Err(MessageError::UnknownKind));
        assert_eq!(Message::parse("X|a|b"), Err(MessageError::UnknownKind));
        assert_eq!(Message::parse("p|n|1|2|{}"), Err(MessageError::UnknownKind));
        assert_eq!(Message::parse("H|1"), malformed(Kind::Heartbeat, "session"));
        assert_eq!(
            Message::parse("H|x|1"),
            malformed(Kind::Heartbeat, "session")
        );
        assert_eq!(Message::parse("H|1|"), malformed(Kind::Heartbeat, "sent"));
        assert_eq!(
            Message::parse("H|1|2|3"),
            malformed(Kind::Heartbeat, "sent")
        );
        assert_eq!(
            Message::parse("H|-1|2"),
            malformed(Kind::Heartbeat, "session")
        );
        assert_eq!(Message::parse("P|n"), malformed(Kind::Purge, "node"));
        assert_eq!(
            Message::parse(&format!("P|n|x|2|{wire}")),
            malformed(Kind::Purge, "seq")
        );
        assert_eq!(
            Message::parse(&format!("P|n|1|{wire}")),
            malformed(Kind::Purge, "sent")
        );
        assert_eq!(Message::parse("V|n"), malformed(Kind::Variant, "node"));
        // Errors print on one line, whatever the node id holds (found by fuzz/redis_message).
        let e = Message::parse("P|1f\na-9c|7|9|\"{m\":\"h").unwrap_err();
        assert!(!e.to_string().contains('\n'), "{e}");
        for text in ["P|n|1|2|{", "P|n|1|2|", "V|n|{\"m\":\"x\",\"s\":[]}"] {
            match Message::parse(text) {
                Err(MessageError::BadRequest { node, .. }) => assert_eq!(node, "n", "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_what_parses_round_trips(text in "([PVH]\\|)?[-0-9a-z|{}:\",\\[\\]]{0,60}") {
            if let Ok(m) = Message::parse(&text) {
                prop_assert_eq!(Message::parse(&m.encode()), Ok(m));
            }
        }

        #[test]
        fn numbers_and_nodes_round_trip(node in "[0-9a-f-]{0,20}", seq: u64, sent: u128, session: u64) {
            let p = Message::Purge { node: node.clone(), seq, sent_us: sent, request: request() };
            prop_assert_eq!(Message::parse(&p.encode()), Ok(p));
            let h = Message::Heartbeat { session, sent_ms: seq };
            prop_assert_eq!(Message::parse(&h.encode()), Ok(h));
        }
    }
}
