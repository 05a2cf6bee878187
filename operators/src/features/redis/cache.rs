//! The in-process cache in front of Redis: bounded in entries, answers
//! expire after `ttl`, and with stale-while-revalidate an expired answer is
//! still served (and refreshed in the background) for a while longer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::features::EntityFeatures;

/// A cached answer: `None` when Redis had no such entity (cached too, so
/// unknown keys do not hit Redis on every event).
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub at: Instant,
    pub features: Option<Arc<EntityFeatures>>,
}

pub(crate) enum Hit {
    Fresh(Cached),
    /// Served, but due for a background refresh.
    Stale(Cached),
    Miss,
}

pub(crate) struct FeatureCache {
    entries: Option<Cache<String, Cached>>,
    ttl: Duration,
}

impl FeatureCache {
    /// `ttl` zero turns caching off.
    pub(crate) fn new(
        ttl: Duration,
        stale_while_revalidate: Option<Duration>,
        max_entries: u64,
    ) -> Self {
        let keep = ttl + stale_while_revalidate.unwrap_or_default();
        let entries = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(keep)
                .build()
        });
        Self { entries, ttl }
    }

    pub(crate) fn get(&self, key: &str) -> Hit {
        let Some(c) = self.entries.as_ref().and_then(|e| e.get(key)) else {
            return Hit::Miss;
        };
        if c.at.elapsed() <= self.ttl {
            Hit::Fresh(c)
        } else {
            Hit::Stale(c)
        }
    }

    pub(crate) fn insert(&self, key: String, features: Option<Arc<EntityFeatures>>) {
        if let Some(e) = &self.entries {
            e.insert(
                key,
                Cached {
                    at: Instant::now(),
                    features,
                },
            );
        }
    }

    /// Entries held now (approximate: moka counts lazily).
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.entries.as_ref().map_or(0, |e| {
            e.run_pending_tasks();
            e.entry_count()
        })
    }
}
