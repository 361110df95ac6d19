//! Throttling of password guessing (logins, step-up, attaching an address) per login and per
//! client address, of sign-ups per client address, and of the e-mails account flows send on
//! request (verification, password reset, login change) per login and per client address.
//! Counted in the database so that every instance sees the same numbers
//! (docs/architecture.md "Stateless instances").

use crate::error::{ApiError, ApiResult};
use crate::repo::counters;
use crate::state::AppState;

/// `subject` is a login, or `address:<address>` for attaching an address by its password.
fn login_key(subject: &str) -> String {
    format!("fail:login:{subject}")
}

fn ip_key(ip: &str) -> String {
    format!("fail:ip:{ip}")
}

/// A password proof under way, counted before the argon2 verification so that parallel
/// requests cannot all pass the check before any failure is recorded.
#[must_use = "settle the attempt with succeeded() or failed()"]
pub struct Attempt {
    login_key: String,
    ip_key: Option<String>,
}

/// Counts an attempt for `subject` (a login, or `address:<address>`) and `ip`; 429 with
/// `Retry-After` when either is over its limit (a refused attempt is not counted).
pub async fn begin_attempt(
    state: &AppState,
    subject: &str,
    ip: Option<&str>,
) -> ApiResult<Attempt> {
    let cfg = &state.config.throttle;
    let window = i64::try_from(cfg.window_secs).unwrap_or(i64::MAX / 2);
    let now = state.clock.now();
    let attempt = Attempt {
        login_key: login_key(subject),
        ip_key: ip.map(ip_key),
    };
    let mut keys = vec![(attempt.login_key.as_str(), cfg.failures_per_login)];
    if let Some(key) = &attempt.ip_key {
        keys.push((key.as_str(), cfg.failures_per_ip));
    }
    // One statement for both counts (a login is a dozen statements; each one counts).
    let bucket = counters::bucket_of(now);
    let deltas = |n: i64| -> Vec<(String, i64, i64)> {
        keys.iter()
            .map(|(key, _)| ((*key).to_string(), bucket, n))
            .collect()
    };
    counters::add_many(&state.db, &deltas(1)).await?;
    for (key, limit) in &keys {
        let seen = counters::window(&state.db, key, now, window).await?;
        if seen.total > i64::from(*limit) {
            counters::add_many(&state.db, &deltas(-1)).await?;
            let retry = seen.frees_in_secs(now, window).unwrap_or(window);
            return Err(ApiError::throttled(u64::try_from(retry).unwrap_or(1)));
        }
    }
    Ok(attempt)
}

impl Attempt {
    /// The proof held: the login's failures are forgotten, and this attempt no longer counts
    /// against the client address (a busy office behind one address is not a guesser).
    pub async fn succeeded(self, state: &AppState) -> ApiResult<()> {
        self.succeeded_in(&state.db, state.clock.now()).await
    }

    /// [`Attempt::succeeded`] as part of a transaction (a login's, which writes anyway).
    pub async fn succeeded_in(
        self,
        conn: &impl sea_orm::ConnectionTrait,
        now: chrono::DateTime<chrono::Utc>,
    ) -> ApiResult<()> {
        counters::clear(conn, &self.login_key).await?;
        if let Some(key) = &self.ip_key {
            counters::add(conn, key, now, -1).await?;
        }
        Ok(())
    }

    /// The proof failed: it stays counted.
    pub fn failed(self) {}
}

/// Counts a sign-up attempt from `ip`; 429 beyond the configured rate (counted first, so
/// that parallel sign-ups cannot all slip under the limit).
pub async fn count_signup(state: &AppState, ip: Option<&str>) -> ApiResult<()> {
    let Some(ip) = ip else { return Ok(()) };
    let cfg = &state.config.throttle;
    let window = i64::try_from(cfg.signup_window_secs).unwrap_or(i64::MAX / 2);
    let now = state.clock.now();
    let key = format!("signup:ip:{ip}");
    counters::add(&state.db, &key, now, 1).await?;
    let seen = counters::window(&state.db, &key, now, window).await?;
    if seen.total > i64::from(cfg.signups_per_ip) {
        counters::add(&state.db, &key, now, -1).await?;
        let retry = seen.frees_in_secs(now, window).unwrap_or(window);
        return Err(ApiError::throttled(u64::try_from(retry).unwrap_or(1)));
    }
    Ok(())
}

/// Counts an e-mail an account flow sends on request (`flow`: `verification`,
/// `password_reset`, `login_change`) for `login` and for `ip`; 429 with `Retry-After` when
/// either is over its limit (a refused request is not counted). The same for a login that
/// no account has, so the answer tells nothing about it.
pub(crate) async fn count_account_mail(
    state: &AppState,
    flow: &str,
    login: &str,
    ip: Option<&str>,
) -> ApiResult<()> {
    let cfg = &state.config.throttle;
    let window = i64::try_from(cfg.account_mail_window_secs).unwrap_or(i64::MAX / 2);
    let now = state.clock.now();
    let mut keys = vec![(
        format!("mail:{flow}:login:{login}"),
        cfg.account_mails_per_login,
    )];
    if let Some(ip) = ip {
        keys.push((format!("mail:{flow}:ip:{ip}"), cfg.account_mails_per_ip));
    }
    for (key, _) in &keys {
        counters::add(&state.db, key, now, 1).await?;
    }
    for (key, limit) in &keys {
        let seen = counters::window(&state.db, key, now, window).await?;
        if seen.total > i64::from(*limit) {
            for (key, _) in &keys {
                counters::add(&state.db, key, now, -1).await?;
            }
            let retry = seen.frees_in_secs(now, window).unwrap_or(window);
            return Err(ApiError::throttled(u64::try_from(retry).unwrap_or(1)));
        }
    }
    Ok(())
}
