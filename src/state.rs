//! What every handler shares: the database pool, configuration, keys, the password pool, the
//! clock and the mailer. Only caches that may be lost live here (docs/architecture.md "Stateless instances").

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::{JwtKeys, PasswordHasher, SessionCache};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::PasswordPolicy;

pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub jwt: JwtKeys,
    pub passwords: PasswordHasher,
    /// Sessions read in the last `session_cache_millis` (at most 1 s).
    pub sessions: SessionCache,
    /// Request budgets counted here and synced with every instance's (`auth::rate_limit`).
    pub rate_limits: crate::auth::rate_limit::RateLimiter,
    /// Seals and opens the TOTP secrets of two-factor logins.
    pub totp_key: crate::auth::totp::SecretKey,
    /// Seals the stored answers of requests sent with an `Idempotency-Key`.
    pub idempotency_seal: crate::idempotency::SealKey,
    pub clock: Clock,
    /// Live DNS checks of customer domains (`POSTIER_DNS_SERVER`, bounded time).
    pub dns: crate::dns::DnsChecker,
    /// Wakes the outbox worker after a notification was queued.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Wakes the webhook worker after deliveries were queued.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Bumped after each commit that recorded events, so this instance's event streams look
    /// at once (they also poll, for events committed by other instances).
    pub events_committed: tokio::sync::watch::Sender<u64>,
}

impl AppState {
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_length: self.config.password_min_length,
        }
    }
}
