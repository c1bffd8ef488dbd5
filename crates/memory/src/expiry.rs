//! Expiry of resources in moka: a resource lives until its last variant may no longer be
//! served or revalidated. Owns nothing else.

use std::time::{Duration, Instant, SystemTime};

use vanish_engine::store::Resource;
use vanish_engine::ResourceKey;

use crate::Entry;

/// moka expiry policy: end of the latest variant's retention.
pub(crate) struct RetainUntil;

fn remaining(r: &Resource) -> Duration {
    let now = SystemTime::now();
    r.variants
        .iter()
        .map(|o| o.retain_until().duration_since(now).unwrap_or_default())
        .max()
        .unwrap_or_default()
        // moka treats a zero duration as "expire now"; keep at least a moment so a purge
        // racing an insert still finds the entry.
        .max(Duration::from_millis(1))
}

impl moka::Expiry<ResourceKey, Entry> for RetainUntil {
    fn expire_after_create(
        &self,
        _key: &ResourceKey,
        (_, value): &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(remaining(value))
    }

    fn expire_after_update(
        &self,
        _key: &ResourceKey,
        (_, value): &Entry,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(remaining(value))
    }
}
