//! Key policy: how a request becomes a cache key, per route.
//!
//! Owns the [`KeyPolicy`] trait (for code), the declarative [`RulesPolicy`] (from
//! configuration), and the per-route overrides they hand to the later stages (TTL, cacheable
//! statuses, grace). It rewrites the request (query, negotiation headers, cookies) before
//! lookup, so the origin sees what the key says; it never touches storage.
//!
//! Purges go through the same policy ([`KeyPolicy::normalize_selector`]), so purging
//! `https://h/p?utm_source=x&a=1` or `https://h/p?a=1` reaches the object stored under the
//! normalised key.

pub mod key_policy;
pub mod negotiation;
pub mod query;
pub mod rules;

pub use crate::freshness::Overrides;
pub use key_policy::{default_rule, DefaultPolicy, KeyPolicy, Prepared, RuleInfo};
pub use rules::{PolicyError, PolicySpec, RuleSpec, RulesPolicy};
