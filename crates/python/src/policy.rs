//! [`PrefixedPolicy`]: the engine's default key policy, plus `cache_page(key_prefix=...)`.
//!
//! Owns only how a [`KeyPrefix`] request extension partitions the key (through the key's
//! `extra`, as a key policy's headers or cookies do: purges by URL still match every
//! partition). Everything else is the wrapped policy's.

use std::sync::Arc;

use http::request::Parts;
use vanish_engine::key::KeyError;
use vanish_engine::policy::Prepared;
use vanish_engine::{DefaultPolicy, KeyPolicy, ResourceKey, Scheme, Selector};

/// A request extension: the `key_prefix` of Django's `cache_page`, keeping its pages apart
/// from the same URL cached under another prefix.
#[derive(Debug, Clone)]
pub struct KeyPrefix(pub Arc<str>);

/// The default policy, with [`KeyPrefix`] added to the key when a request carries one.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefixedPolicy(DefaultPolicy);

impl KeyPolicy for PrefixedPolicy {
    fn prepare(&self, req: &mut Parts, scheme: Scheme) -> Result<Prepared, KeyError> {
        let mut prepared = self.0.prepare(req, scheme)?;
        if let Some(KeyPrefix(prefix)) = req.extensions.get::<KeyPrefix>() {
            let extra = match prepared.key.extra() {
                Some(e) => format!("key-prefix={prefix:?};{e}"),
                None => format!("key-prefix={prefix:?}"),
            };
            prepared.key = prepared.key.with_extra(Some(extra));
        }
        Ok(prepared)
    }

    fn normalize_selector(&self, selector: &mut Selector) {
        self.0.normalize_selector(selector)
    }

    fn normalize_selector_forms(&self, selector: Selector) -> Vec<Selector> {
        self.0.normalize_selector_forms(selector)
    }

    fn normalize_header(
        &self,
        url: &ResourceKey,
        name: &http::HeaderName,
        value: &str,
    ) -> Option<String> {
        self.0.normalize_header(url, name, value)
    }
}
