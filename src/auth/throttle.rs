//! Throttling of password guessing (logins, step-up, attaching an address) per login and per
//! client address, and of sign-ups per client address. Counted in the database so that every
//! instance sees the same numbers (SPEC §14).

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

/// 429 with `Retry-After` when `login` or `ip` failed too often recently.
pub async fn check_failures(state: &AppState, login: &str, ip: Option<&str>) -> ApiResult<()> {
    let cfg = &state.config.throttle;
    let window = i64::try_from(cfg.window_secs).unwrap_or(i64::MAX / 2);
    let now = state.clock.now();
    let mut checks = vec![(login_key(login), cfg.failures_per_login)];
    if let Some(ip) = ip {
        checks.push((ip_key(ip), cfg.failures_per_ip));
    }
    for (key, limit) in checks {
        let seen = counters::window(&state.db, &key, now, window).await?;
        if seen.total >= i64::from(limit) {
            let retry = seen.frees_in_secs(now, window).unwrap_or(window);
            return Err(ApiError::throttled(u64::try_from(retry).unwrap_or(1)));
        }
    }
    Ok(())
}

pub async fn record_failure(state: &AppState, login: &str, ip: Option<&str>) -> ApiResult<()> {
    let now = state.clock.now();
    counters::add(&state.db, &login_key(login), now, 1).await?;
    if let Some(ip) = ip {
        counters::add(&state.db, &ip_key(ip), now, 1).await?;
    }
    Ok(())
}

/// A successful proof clears the login's failures (not the address's: a guesser must not
/// reset its own counter by logging into an account it owns).
pub async fn clear_failures(state: &AppState, login: &str) -> ApiResult<()> {
    counters::clear(&state.db, &login_key(login)).await?;
    Ok(())
}

/// Counts a sign-up attempt from `ip`; 429 beyond the configured rate.
pub async fn count_signup(state: &AppState, ip: Option<&str>) -> ApiResult<()> {
    let Some(ip) = ip else { return Ok(()) };
    let cfg = &state.config.throttle;
    let window = i64::try_from(cfg.signup_window_secs).unwrap_or(i64::MAX / 2);
    let now = state.clock.now();
    let key = format!("signup:ip:{ip}");
    let seen = counters::window(&state.db, &key, now, window).await?;
    if seen.total >= i64::from(cfg.signups_per_ip) {
        let retry = seen.frees_in_secs(now, window).unwrap_or(window);
        return Err(ApiError::throttled(u64::try_from(retry).unwrap_or(1)));
    }
    counters::add(&state.db, &key, now, 1).await?;
    Ok(())
}
