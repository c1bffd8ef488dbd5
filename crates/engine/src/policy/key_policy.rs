//! The [`KeyPolicy`] contract: what a policy hands the cache for a request (its key, rule
//! and bypass), and the default policy (the URL, canonical).
//!
//! Owns the trait and the types it returns; the declarative policy is in [`super::rules`].

use std::sync::{Arc, OnceLock};

use http::request::Parts;

use crate::key::{KeyError, ResourceKey};
use crate::purge::selector::Selector;
use crate::url::Scheme;

use crate::freshness::Overrides;

/// The rule a request matched: its name (for `explain` and logs) and its overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule's name (`default` for the default rule).
    pub name: String,
    /// Its storage overrides.
    pub overrides: Overrides,
}

/// A request prepared for lookup.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The key to look up and store under.
    pub key: ResourceKey,
    /// Pass to the origin without caching (e.g. a session cookie is present).
    pub bypass: bool,
    /// The rule that applied.
    pub rule: Arc<RuleInfo>,
}

/// Turns requests into keys, and purge selectors into the same normal form.
///
/// Implement it for anything the configuration cannot say:
///
/// ```
/// use std::sync::Arc;
/// use vanish_engine::policy::{DefaultPolicy, KeyPolicy, Prepared};
/// use vanish_engine::{key::KeyError, Scheme};
///
/// /// Every mobile user agent shares one cache partition.
/// struct DeviceSplit;
/// impl KeyPolicy for DeviceSplit {
///     fn prepare(&self, req: &mut http::request::Parts, scheme: Scheme) -> Result<Prepared, KeyError> {
///         let mobile = req.headers.get("user-agent")
///             .and_then(|v| v.to_str().ok())
///             .is_some_and(|ua| ua.contains("Mobile"));
///         let mut p = DefaultPolicy.prepare(req, scheme)?;
///         p.key = p.key.with_extra(mobile.then(|| "device=mobile".to_owned()));
///         Ok(p)
///     }
/// }
/// let (mut parts, ()) = http::Request::get("/").header("host", "h").header("user-agent", "X Mobile")
///     .body(()).unwrap().into_parts();
/// let p = DeviceSplit.prepare(&mut parts, Scheme::Http).unwrap();
/// assert_eq!(p.key.extra(), Some("device=mobile"));
/// ```
pub trait KeyPolicy: Send + Sync + 'static {
    /// Rewrites the request as the policy wants it (query, headers, cookies) and returns its
    /// key, or an error for a request that names no resource (answered 400).
    fn prepare(&self, req: &mut Parts, scheme: Scheme) -> Result<Prepared, KeyError>;

    /// Brings a purge selector to the same normal form as keys (host aliases, query rules).
    fn normalize_selector(&self, _selector: &mut Selector) {}

    /// The selectors a purge runs for `selector`: its normal form, or several when objects it
    /// names may have been keyed by different rules (a `path` selector names every host, and
    /// hosts can have rules of their own). The purge matches any of them. By default, the one
    /// form [`KeyPolicy::normalize_selector`] gives.
    fn normalize_selector_forms(&self, selector: Selector) -> Vec<Selector> {
        let mut selector = selector;
        self.normalize_selector(&mut selector);
        vec![selector]
    }

    /// Normalises a request header value the way [`KeyPolicy::prepare`] would for a URL (for
    /// purge `headers` filters); `None` when the policy leaves it as received.
    fn normalize_header(
        &self,
        _url: &ResourceKey,
        _name: &http::HeaderName,
        _value: &str,
    ) -> Option<String> {
        None
    }
}

/// The default policy: the key is the request's scheme, host (lower-cased, default port
/// dropped), path and query, after [`crate::url::normalize_target`] (canonical
/// percent-encoding, no dot segments), which the origin then receives too.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

/// The rule info of the default policy.
pub fn default_rule() -> Arc<RuleInfo> {
    static DEFAULT: OnceLock<Arc<RuleInfo>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            Arc::new(RuleInfo {
                name: "default".to_owned(),
                overrides: Overrides::default(),
            })
        })
        .clone()
}

impl KeyPolicy for DefaultPolicy {
    fn prepare(&self, req: &mut Parts, scheme: Scheme) -> Result<Prepared, KeyError> {
        crate::url::normalize_target(req);
        Ok(Prepared {
            key: ResourceKey::from_request(req, scheme)?,
            bypass: false,
            rule: default_rule(),
        })
    }
}
