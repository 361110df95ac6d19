//! Two-factor login with TOTP (`auth::totp`): enrolment (the secret and its `otpauth://`
//! URI are shown once; two-factor login is on once a valid code comes back, with ten
//! single-use recovery codes), turning it off (recent proof), and checking a code — TOTP or
//! recovery — for a login or a step-up. Each code is accepted once (the last used step is
//! kept, so a code cannot be replayed within its window; a recovery code is spent), and
//! failures are throttled like passwords, per account and per client address.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{throttle, totp, Caller};
use crate::domain::Secret;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Actor};
use crate::service::audit::Change;
use crate::service::{dangerous, UnitOfWork};
use crate::state::AppState;

/// A TOTP enrolment under way: shown once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TotpEnrolmentResponse {
    /// The shared secret, base32 (for typing into an authenticator app).
    pub secret: String,
    /// `otpauth://totp/…` with the same secret (usually shown as a QR code): SHA-1,
    /// 6 digits, 30-second steps.
    pub otpauth_uri: String,
}

/// The recovery codes of a confirmed enrolment: shown once, stored only as hashes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecoveryCodesResponse {
    /// Ten single-use codes (`xxxx-xxxx-xxxx-xxxx`), each accepted instead of a TOTP code
    /// once.
    pub recovery_codes: Vec<String>,
}

/// What a second-factor code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Factor {
    Totp,
    RecoveryCode,
}

/// The throttle subject of an account's second-factor attempts (its own counter, beside
/// the password's).
pub(crate) fn throttle_subject(account_id: Uuid) -> String {
    format!("second_factor:{account_id}")
}

fn already_enabled() -> ApiError {
    ApiError::conflict(
        ErrorCode::TotpAlreadyEnabled,
        "two-factor login is on already: turn it off first (DELETE /v1/me/totp) to enrol another authenticator",
    )
}

/// Starts (or restarts) an enrolment (recent proof: a stolen session must not lock the
/// owner out with an authenticator of its own).
pub(crate) async fn start(state: &AppState, caller: &Caller) -> ApiResult<TotpEnrolmentResponse> {
    dangerous::recent_proof(state, caller)?;
    if repo::second_factors::is_enabled(&state.db, caller.account_id).await? {
        return Err(already_enabled());
    }
    let secret = totp::generate_secret();
    let sealed = state.totp_key.seal(caller.account_id, &secret)?;
    let uow = UnitOfWork::begin(state).await?;
    repo::second_factors::save_pending(uow.tx(), caller.account_id, &sealed, uow.now()).await?;
    uow.record_for_account(
        &caller.actor(),
        caller.account_id,
        Change::TotpEnrolmentStarted,
        &caller.login,
    )
    .await?;
    uow.commit().await?;
    Ok(TotpEnrolmentResponse {
        secret: totp::base32(&secret),
        otpauth_uri: totp::otpauth_uri(&secret, state.config.totp_issuer.trim(), &caller.login),
    })
}

/// Finishes an enrolment with a code from the authenticator: two-factor login is on, the
/// other sessions end (they proved the password only), and ten recovery codes are answered.
pub(crate) async fn confirm(
    state: &AppState,
    caller: &Caller,
    code: Secret,
) -> ApiResult<RecoveryCodesResponse> {
    let credential = match repo::second_factors::find(&state.db, caller.account_id).await? {
        Some(c) if c.confirmed_at.is_some() => return Err(already_enabled()),
        Some(c) => c,
        None => return Err(missing_enrolment()),
    };
    let attempt = throttle::begin_attempt(
        state,
        &throttle_subject(caller.account_id),
        caller.ip.as_deref(),
    )
    .await?;
    let secret = state
        .totp_key
        .open(caller.account_id, &credential.secret_sealed)?;
    let now = state.clock.now();
    let Some(step) =
        totp::normalize_totp(code.expose()).and_then(|c| totp::matching_step(&secret, &c, now))
    else {
        attempt.failed(state).await?;
        return Err(incorrect());
    };
    let codes: Vec<String> = (0..totp::RECOVERY_CODES)
        .map(|_| totp::generate_recovery_code())
        .collect();
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    if !repo::second_factors::confirm(
        uow.tx(),
        caller.account_id,
        &credential.secret_sealed,
        step,
        now,
    )
    .await?
    {
        // Restarted or confirmed by another request meanwhile.
        return Err(missing_enrolment());
    }
    let hashes = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
    repo::second_factors::replace_recovery_codes(uow.tx(), caller.account_id, hashes, now).await?;
    uow.revoke_sessions_of(
        caller.account_id,
        Some(caller.session_id),
        "second_factor_enabled",
    )
    .await?;
    uow.record_for_account(
        &caller.actor(),
        caller.account_id,
        Change::TotpEnabled {
            recovery_codes: codes.len(),
        },
        &caller.login,
    )
    .await?;
    uow.commit().await?;
    attempt.succeeded(state).await?;
    Ok(RecoveryCodesResponse {
        recovery_codes: codes,
    })
}

fn missing_enrolment() -> ApiError {
    ApiError::conflict(
        ErrorCode::TotpEnrolmentMissing,
        "no enrolment is waiting for a code: start one with POST /v1/me/totp",
    )
}

fn incorrect() -> ApiError {
    ApiError::new(
        ErrorCode::SecondFactorIncorrect,
        "the code is not correct: use the current code of the authenticator app, or an unused recovery code",
    )
}

/// Turns two-factor login off (recent proof); an enrolment under way is dropped too.
pub(crate) async fn disable(state: &AppState, caller: &Caller) -> ApiResult<()> {
    dangerous::recent_proof(state, caller)?;
    let mut uow = UnitOfWork::begin(state).await?;
    uow.account_changed(caller.account_id);
    if !repo::second_factors::delete(uow.tx(), caller.account_id).await? {
        return Err(ApiError::conflict(
            ErrorCode::TotpNotEnabled,
            "two-factor login is not on",
        ));
    }
    uow.record_for_account(
        &caller.actor(),
        caller.account_id,
        Change::TotpDisabled,
        &caller.login,
    )
    .await?;
    uow.commit().await
}

/// Checks `code` (a TOTP code, or a recovery code) for the account and spends it, in the
/// caller's unit of work: `None` when it is wrong, replayed or spent. The caller counts the
/// attempt (`throttle_subject`) before.
pub(crate) async fn consume_code(
    uow: &UnitOfWork<'_>,
    actor: &Actor,
    account_id: Uuid,
    code: &str,
) -> ApiResult<Option<Factor>> {
    let state = uow.state();
    let now = uow.now();
    if let Some(digits) = totp::normalize_totp(code) {
        let Some(credential) = repo::second_factors::find(uow.tx(), account_id)
            .await?
            .filter(|c| c.confirmed_at.is_some())
        else {
            return Ok(None);
        };
        let secret = state.totp_key.open(account_id, &credential.secret_sealed)?;
        let Some(step) = totp::matching_step(&secret, &digits, now) else {
            return Ok(None);
        };
        let fresh = repo::second_factors::use_step(uow.tx(), account_id, step).await?;
        return Ok(fresh.then_some(Factor::Totp));
    }
    let hash = totp::recovery_code_hash(code);
    if !repo::second_factors::use_recovery_code(uow.tx(), account_id, &hash, now).await? {
        return Ok(None);
    }
    let remaining = repo::second_factors::count_unused_recovery_codes(uow.tx(), account_id).await?;
    let login = repo::accounts::find(uow.tx(), account_id)
        .await?
        .map(|a| a.login)
        .unwrap_or_default();
    uow.record_for_account(
        actor,
        account_id,
        Change::RecoveryCodeUsed { remaining },
        &login,
    )
    .await?;
    Ok(Some(Factor::RecoveryCode))
}
