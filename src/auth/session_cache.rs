//! Sessions recently read from the database, each kept at most `session_cache_millis`
//! (at most 1 s), so that most authenticated requests need no query. The bound is the whole
//! consistency story across instances: a logout or a revocation on another instance takes
//! effect here within it, because an entry is never trusted longer. On the instance that
//! made the change, the unit of work forgets the entries once it commits, and a read that
//! raced with that commit cannot put a stale entry back (the forget generation), so the
//! change takes effect there at once. Only a profile of the account is kept, never its
//! password hash. Personal API tokens are kept here too, under a key derived from their
//! hash (`auth::api_token::cache_key`), with the same bound: a revocation takes effect
//! within it everywhere.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::entity::{account, session};

/// More sessions than this active in one lifetime are read from the database: the cache
/// stays small whatever the number of clients.
const MAX_ENTRIES: usize = 100_000;

/// What an authenticated request needs to know about its account, and what its owner sees
/// of it (`GET /v1/me` answers from here).
#[derive(Debug, Clone)]
pub struct AccountProfile {
    pub id: Uuid,
    pub login: String,
    pub login_verified: bool,
    /// The login it asked to move to, until that one is verified.
    pub pending_login: Option<String>,
    pub two_factor_enabled: bool,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl AccountProfile {
    /// The profile of `a`, with what lives beside the account row (a pending login change,
    /// two-factor login).
    pub async fn load(
        conn: &impl sea_orm::ConnectionTrait,
        a: account::Model,
        now: DateTime<Utc>,
    ) -> Result<Self, sea_orm::DbErr> {
        let pending_login = crate::repo::account_tokens::live_email(
            conn,
            a.id,
            crate::domain::AccountTokenPurpose::LoginChange,
            now,
        )
        .await?;
        let two_factor_enabled = crate::repo::second_factors::is_enabled(conn, a.id).await?;
        Ok(Self {
            id: a.id,
            login: a.login,
            login_verified: a.login_verified,
            pending_login,
            two_factor_enabled,
            display_name: a.display_name,
            created_at: a.created_at,
        })
    }
}

/// An active session (or personal API token) as read from the database.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub account: AccountProfile,
    pub expires_at: DateTime<Utc>,
    /// For an API token: what it allows, and when it was created (its `auth_time`).
    pub grant: Option<(crate::auth::caller::TokenGrant, DateTime<Utc>)>,
}

impl ActiveSession {
    pub fn new(session: session::Model, account: AccountProfile) -> Self {
        Self {
            expires_at: session.expires_at,
            account,
            grant: None,
        }
    }
}

struct Entry {
    session: ActiveSession,
    read_at: Instant,
}

pub struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<Uuid, Entry>>,
    /// Bumped by every forget: a read begun before one is not cached.
    generation: AtomicU64,
}

impl SessionCache {
    /// A cache whose entries live `ttl` (zero: nothing is cached).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The session `sid` of `account_id`, when read less than the lifetime ago and not
    /// expired at `now` (the service clock).
    pub fn get(&self, sid: Uuid, account_id: Uuid, now: DateTime<Utc>) -> Option<ActiveSession> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        let entry = entries.get(&sid)?;
        let fresh = entry.read_at.elapsed() < self.ttl;
        (fresh && entry.session.account.id == account_id && entry.session.expires_at > now)
            .then(|| entry.session.clone())
    }

    /// The API token cached under `key` (derived from its hash: no account to match),
    /// fresh as in [`Self::get`].
    pub(crate) fn get_token(&self, key: Uuid, now: DateTime<Utc>) -> Option<ActiveSession> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        let entry = entries.get(&key)?;
        let fresh = entry.read_at.elapsed() < self.ttl;
        (fresh && entry.session.grant.is_some() && entry.session.expires_at > now)
            .then(|| entry.session.clone())
    }

    /// Call before reading a session from the database; hand the value to [`Self::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `session`, read after `generation` was taken, unless something was forgotten
    /// meanwhile (the read may predate that change).
    pub fn put(&self, sid: Uuid, session: ActiveSession, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let read_at = Instant::now();
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, e| e.read_at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(sid, Entry { session, read_at });
    }

    /// Forgets one session (logged out, revoked).
    pub fn forget_session(&self, sid: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&sid);
    }

    /// Forgets every session of an account (its sessions were revoked, or the account
    /// itself changed: read-your-writes for its profile).
    pub fn forget_account(&self, account_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, e| e.session.account.id != account_id);
    }

    /// The account profile of a cached session, fresh as in [`Self::get`].
    pub fn profile(
        &self,
        sid: Uuid,
        account_id: Uuid,
        now: DateTime<Utc>,
    ) -> Option<AccountProfile> {
        self.get(sid, account_id, now).map(|s| s.account)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent: keep using it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(account_id: Uuid, now: DateTime<Utc>) -> ActiveSession {
        ActiveSession {
            account: AccountProfile {
                id: account_id,
                login: "a@example.com".into(),
                login_verified: true,
                pending_login: None,
                two_factor_enabled: false,
                display_name: None,
                created_at: now,
            },
            expires_at: now + chrono::Duration::hours(1),
            grant: None,
        }
    }

    #[test]
    fn an_entry_serves_its_own_account_until_its_lifetime_or_the_session_ends() {
        let cache = SessionCache::new(Duration::from_millis(50));
        let (sid, account, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
        cache.put(sid, session(account, now), cache.generation());
        assert!(cache.get(sid, account, now).is_some());
        assert!(cache.get(sid, Uuid::now_v7(), now).is_none());
        assert!(cache
            .get(sid, account, now + chrono::Duration::hours(2))
            .is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(sid, account, now).is_none());
    }

    #[test]
    fn a_read_that_raced_with_a_forget_is_not_kept() {
        let cache = SessionCache::new(Duration::from_secs(1));
        let (sid, account, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
        let before = cache.generation();
        cache.forget_session(sid);
        cache.put(sid, session(account, now), before);
        assert!(cache.get(sid, account, now).is_none());
        cache.put(sid, session(account, now), cache.generation());
        assert!(cache.get(sid, account, now).is_some());
        cache.forget_account(account);
        assert!(cache.get(sid, account, now).is_none());
    }

    #[test]
    fn a_zero_lifetime_caches_nothing() {
        let cache = SessionCache::new(Duration::ZERO);
        let (sid, account, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
        cache.put(sid, session(account, now), cache.generation());
        assert!(cache.get(sid, account, now).is_none());
    }
}
