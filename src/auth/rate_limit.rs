//! Request budgets of authenticated callers (issue 15, docs/tokens.md "Rate limits"): each
//! account's sessions share one budget, each personal API token has its own, of
//! `rate_limit.requests` per fixed window of `rate_limit.window_secs`. Shared by every
//! instance without a database write per request: an instance counts locally per key and,
//! every `rate_limit.sync_millis`, adds what it counted to the key's row in `counters`
//! (one upsert for every active key) and reads back the total every instance wrote. The
//! count it decides on is that total plus what it counted since, so it misses at most the
//! traffic other instances served since their last flush and its last read: about two sync
//! intervals of their traffic. The login and sign-up throttles (`auth::throttle`) keep their
//! own rules.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};

use crate::config::RateLimitConfig;
use crate::repo::counters;

/// Keys written and read per statement.
const SYNC_CHUNK: usize = 1000;

/// The name of the one policy in the headers.
const POLICY: &str = "default";
pub const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// What one request's check found, kept in the request's extensions for the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window ends (at least 1).
    pub reset_secs: i64,
    pub window_secs: i64,
    pub allowed: bool,
}

impl Status {
    /// `RateLimit-Policy` and `RateLimit` as draft-ietf-httpapi-ratelimit-headers-09
    /// writes them, and `Retry-After` on a refusal.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let policy = format!("\"{POLICY}\";q={};w={}", self.limit, self.window_secs);
        let state = format!("\"{POLICY}\";r={};t={}", self.remaining, self.reset_secs);
        for (name, value) in [(RATE_LIMIT_POLICY, policy), (RATE_LIMIT, state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        if !self.allowed {
            headers.insert(RETRY_AFTER, HeaderValue::from(self.reset_secs));
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    /// The window the counts are of.
    window: i64,
    /// Every instance's total at the last sync (this one's flushed counts included).
    global: i64,
    /// Counted here since the last flush.
    local: i64,
}

pub struct RateLimiter {
    requests: u32,
    window_secs: i64,
    entries: Mutex<HashMap<String, Entry>>,
    /// One sync at a time (the background task and tests' explicit calls).
    syncing: tokio::sync::Mutex<()>,
}

impl RateLimiter {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            requests: config.requests,
            window_secs: i64::try_from(config.window_secs.max(1)).unwrap_or(86_400),
            entries: Mutex::new(HashMap::new()),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    /// Off when `requests` is 0.
    pub fn enabled(&self) -> bool {
        self.requests > 0
    }

    fn window_of(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(self.window_secs)
    }

    /// Counts a request of `key` (`account:<id>` or `token:<id>`) at `now`, unless its
    /// budget is spent (a refused request is not counted). `None` when limits are off.
    pub fn hit(&self, key: &str, now: DateTime<Utc>) -> Option<Status> {
        if !self.enabled() {
            return None;
        }
        let window = self.window_of(now);
        let reset_secs = ((window + 1) * self.window_secs - now.timestamp()).max(1);
        let limit = i64::from(self.requests);
        let mut entries = self.lock();
        let entry = entries.entry(key.to_string()).or_default();
        if entry.window != window {
            *entry = Entry {
                window,
                ..Entry::default()
            };
        }
        let used = entry.global + entry.local;
        let allowed = used < limit;
        if allowed {
            entry.local += 1;
        }
        let remaining = (limit - used - i64::from(allowed)).max(0);
        Some(Status {
            limit: self.requests,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_secs,
            window_secs: self.window_secs,
            allowed,
        })
    }

    /// Flushes this instance's counts of the current window and reads back every
    /// instance's totals of the keys it knows (an upsert and a select per thousand keys).
    /// Runs every `sync_millis`.
    pub async fn sync(&self, db: &DatabaseConnection, now: DateTime<Utc>) -> Result<(), DbErr> {
        if !self.enabled() {
            return Ok(());
        }
        let _one = self.syncing.lock().await;
        let window = self.window_of(now);
        let bucket = counters::bucket_of(
            DateTime::from_timestamp(window * self.window_secs, 0).unwrap_or(now),
        );
        let keys: Vec<(String, String, i64)> = {
            let mut entries = self.lock();
            entries.retain(|_, e| e.window == window);
            entries
                .iter()
                .map(|(key, e)| (key.clone(), counter_key(key, window), e.local))
                .collect()
        };
        for chunk in keys.chunks(SYNC_CHUNK) {
            let rows: Vec<(String, i64, i64)> = chunk
                .iter()
                .filter(|(_, _, local)| *local > 0)
                .map(|(_, counter, local)| (counter.clone(), bucket, *local))
                .collect();
            // On an error nothing was written: the counts stay local for the next sync.
            counters::add_many_without_flush(db, &rows).await?;
            {
                let mut entries = self.lock();
                for (key, _, local) in chunk {
                    if let Some(entry) = entries.get_mut(key).filter(|e| e.window == window) {
                        entry.local -= local;
                        entry.global += local;
                    }
                }
            }
            let counter_keys: Vec<String> = chunk.iter().map(|(_, c, _)| c.clone()).collect();
            let totals = counters::totals(db, &counter_keys).await?;
            let mut entries = self.lock();
            for (key, counter, _) in chunk {
                if let Some(entry) = entries.get_mut(key).filter(|e| e.window == window) {
                    entry.global = totals.get(counter).copied().unwrap_or(entry.global);
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave a map of counts inconsistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `counters` key of `key`'s count in `window`.
fn counter_key(key: &str, window: i64) -> String {
    format!("rate:{key}:{window}")
}

/// Syncs every `sync_millis` for as long as the application runs.
pub(crate) async fn run_sync(state: actix_web::web::Data<crate::state::AppState>) {
    if !state.rate_limits.enabled() {
        return;
    }
    let every = std::time::Duration::from_millis(state.config.rate_limit.sync_millis.max(10));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = state.rate_limits.sync(&state.db, state.clock.now()).await {
            tracing::warn!(error = %e, "rate limits: cannot sync the counts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_counts_down_refuses_beyond_and_starts_again_with_the_next_window() {
        let limiter = RateLimiter::new(&RateLimitConfig {
            requests: 2,
            window_secs: 60,
            sync_millis: 1000,
        });
        let now = DateTime::from_timestamp(6_000, 0).unwrap();
        let first = limiter.hit("account:a", now).unwrap();
        assert_eq!(
            (first.remaining, first.allowed, first.reset_secs),
            (1, true, 60)
        );
        assert!(limiter.hit("account:a", now).unwrap().allowed);
        let refused = limiter.hit("account:a", now).unwrap();
        assert_eq!((refused.remaining, refused.allowed), (0, false));
        // Another key has its own budget.
        assert!(limiter.hit("token:b", now).unwrap().allowed);
        let later = now + chrono::Duration::seconds(60);
        assert!(limiter.hit("account:a", later).unwrap().allowed);
        let mut headers = HeaderMap::new();
        refused.write_headers(&mut headers);
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(
            get("ratelimit-policy").as_deref(),
            Some("\"default\";q=2;w=60")
        );
        assert_eq!(get("ratelimit").as_deref(), Some("\"default\";r=0;t=60"));
        assert_eq!(get("retry-after").as_deref(), Some("60"));
    }
}
