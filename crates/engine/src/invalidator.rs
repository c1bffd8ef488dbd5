//! The `Invalidator`: the one way every front end purges.
//!
//! Owns the check of purge requests built in Rust (parsed ones were checked as they came
//! in), their metrics, and their hand-off to the store; the
//! proxy's admin API, the CLI (through the API) and the `tower` Layer all call it.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::coding::filter_token;
use crate::policy::{DefaultPolicy, KeyPolicy};
use crate::purge::selector::{PurgeRequest, Selector, SelectorError};
use crate::store::{PurgeReport, Store, StoreError};
use crate::vary_normalize::{normalize_str, ValueForm};

/// Why a purge was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeError {
    /// The request is invalid (answered 400).
    Invalid(SelectorError),
    /// The store could not purge (answered 503): nothing may be assumed purged.
    Store(StoreError),
}

impl fmt::Display for PurgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PurgeError::Invalid(e) => write!(f, "invalid purge: {e}"),
            PurgeError::Store(e) => write!(f, "purge failed: {e}"),
        }
    }
}

impl std::error::Error for PurgeError {}

/// Brings a selector's header filter values to the normal form stored variants record theirs
/// in ([`crate::vary_normalize`]), after the key policy's own normalisation, as a request's
/// values are: `en,fr` filters the variants of `en, fr`.
fn normalize_header_filters(mut selector: Selector) -> Selector {
    for (name, value) in &mut selector.headers {
        *value = normalize_str(name, value);
    }
    selector
}

/// Variants record the content coding of their body as their `Accept-Encoding` value: a
/// filter on it names a coding ([`filter_token`]), whichever form values are compared in.
fn coding_filters(mut selector: Selector) -> Selector {
    for (name, value) in &mut selector.headers {
        if *name == http::header::ACCEPT_ENCODING {
            *value = filter_token(value).to_owned();
        }
    }
    selector
}

/// A cloneable handle that purges a store.
///
/// ```
/// # async fn demo<S: vanish_engine::Store + Clone>(inv: vanish_engine::Invalidator<S>) {
/// use vanish_engine::Selector;
/// let report = inv
///     .purge(Selector::path("/news").any_query().header("accept-language", "fr"))
///     .await
///     .unwrap();
/// println!("{} objects purged", report.matched);
/// # }
/// ```
#[derive(Clone)]
pub struct Invalidator<S> {
    store: S,
    policy: Arc<dyn KeyPolicy>,
    form: ValueForm,
}

impl<S: Store + Clone> Invalidator<S> {
    /// A handle on `store`, with the default key policy.
    pub fn new(store: S) -> Self {
        Self::with_policy(store, Arc::new(DefaultPolicy))
    }

    /// A handle on `store` whose selectors are normalised by `policy` (as keys are).
    pub fn with_policy(store: S, policy: Arc<dyn KeyPolicy>) -> Self {
        Invalidator {
            store,
            policy,
            form: ValueForm::Normal,
        }
    }

    /// Compares header filters in `form`, the one the store's variants were stored with
    /// ([`crate::CacheConfig::vary_values`]; the normal form unless set).
    pub fn with_value_form(mut self, form: ValueForm) -> Self {
        self.form = form;
        self
    }

    /// Hard-purges what one selector matches.
    pub async fn purge(&self, selector: Selector) -> Result<PurgeReport, PurgeError> {
        self.run(PurgeRequest::from(selector)).await
    }

    /// Soft-purges (marks stale) what one selector matches.
    pub async fn soft_purge(&self, selector: Selector) -> Result<PurgeReport, PurgeError> {
        self.run(PurgeRequest::from(selector).soft()).await
    }

    /// Runs a full purge request. When it returns `Ok`, no request that starts afterwards is
    /// served a matched object stored before it.
    pub async fn run(&self, request: PurgeRequest) -> Result<PurgeReport, PurgeError> {
        let mut request = request.checked().map_err(PurgeError::Invalid)?;
        let kinds: Vec<&'static str> = request.selectors.iter().map(Selector::kind).collect();
        request.selectors = std::mem::take(&mut request.selectors)
            .into_iter()
            .flat_map(|s| self.policy.normalize_selector_forms(s))
            .map(|s| match self.form {
                ValueForm::Normal => normalize_header_filters(s),
                ValueForm::AsReceived => s,
            })
            .map(coding_filters)
            .collect();
        let started = Instant::now();
        let dry = request.dry_run;
        let result = self.store.purge(Arc::new(request)).await;
        match &result {
            Ok(report) if !dry => {
                for k in &kinds {
                    metrics::counter!("vanish_purge_requests_total", "selector" => *k).increment(1);
                }
                metrics::counter!("vanish_purged_objects_total").increment(report.matched);
                metrics::histogram!("vanish_purge_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            Ok(_) => {}
            Err(_) => metrics::counter!("vanish_purge_failures_total").increment(1),
        }
        result.map_err(PurgeError::Store)
    }
}
