//! The store's errors: [`StoreError`]s naming this backend, and which one a client error is.
//!
//! Owns the words of every error the store returns (so they read the same everywhere) and the
//! rule that says which client errors mean "Redis cannot be reached" (the store then reports
//! itself unavailable). Talks to no server; depends on no other module of the crate.

use std::fmt::Display;

use fred::error::{Error, ErrorKind};
use vanish_engine::StoreError;

/// The backend name in every error.
pub(crate) const BACKEND: &str = "redis";

/// What the store says while its client is reconnecting.
pub(crate) const NOT_CONNECTED: &str = "not connected (reconnecting)";

/// Redis cannot be reached.
pub(crate) fn unavailable(reason: impl Display) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason: reason.to_string(),
    }
}

/// A setting does not fit.
pub(crate) fn misconfigured(reason: impl Display) -> StoreError {
    StoreError::Misconfigured {
        backend: BACKEND,
        reason: reason.to_string(),
    }
}

/// Data that does not encode or decode.
pub(crate) fn corrupt(reason: impl Display) -> StoreError {
    StoreError::Corrupt {
        backend: BACKEND,
        reason: reason.to_string(),
    }
}

/// A purge that was not (wholly) applied because of `cause`.
pub(crate) fn not_applied(cause: StoreError, outcome: impl Into<String>) -> StoreError {
    StoreError::NotApplied {
        cause: Box::new(cause),
        outcome: outcome.into(),
    }
}

/// True for client errors that mean the server cannot be reached (now).
pub(crate) fn is_outage(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Cluster
            | ErrorKind::Backpressure
    )
}

/// The store error for a client error.
pub(crate) fn from_client(e: &Error) -> StoreError {
    if is_outage(e) {
        unavailable(e)
    } else if matches!(e.kind(), ErrorKind::Config | ErrorKind::Url) {
        misconfigured(e)
    } else {
        StoreError::Command {
            backend: BACKEND,
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_one_line_naming_redis() {
        assert_eq!(
            unavailable(NOT_CONNECTED).to_string(),
            "store error: redis unreachable: not connected (reconnecting)"
        );
        let e = not_applied(
            unavailable(NOT_CONNECTED),
            "the purge was not applied (retry when Redis is back)",
        );
        assert_eq!(
            e.to_string(),
            "store error: redis unreachable: not connected (reconnecting); the purge was not applied (retry when Redis is back)"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            misconfigured("bad url").to_string(),
            "store error: redis: bad url"
        );
        let io = Error::new(ErrorKind::IO, "reset");
        assert!(matches!(from_client(&io), StoreError::Unavailable { .. }));
        let refused = Error::new(ErrorKind::Unknown, "ERR wrong");
        assert!(matches!(from_client(&refused), StoreError::Command { .. }));
        let url = Error::new(ErrorKind::Url, "bad");
        assert!(matches!(
            from_client(&url),
            StoreError::Misconfigured { .. }
        ));
    }
}
