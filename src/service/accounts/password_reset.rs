//! Resetting a forgotten password by e-mail. Asking answers the same, in body and in timing,
//! whether or not an account has the login: the only work done before answering is the
//! throttle, counted for the typed login and the client address alike; looking the account
//! up, issuing its link and queueing the e-mail run afterwards, in a task of their own
//! (docs/decisions.md "Password reset"). Following the link sets the password (the unified
//! addresses follow), ends every session and proves the login.

use std::sync::Arc;

use chrono::Duration;

use crate::auth::{throttle, token};
use crate::domain::{AccountTokenPurpose, EmailAddress, Password};
use crate::error::{ApiError, ApiResult};
use crate::repo::{self, account_tokens::NewToken, events::Actor};
use crate::service::accounts::verification::{live_token, token_invalid};
use crate::service::accounts::{set_password, PasswordChangedResponse};
use crate::service::audit::{Change, PasswordChangeVia};
use crate::service::{links, UnitOfWork};
use crate::state::AppState;

/// How long a reset link works.
const RESET_TTL_MINUTES: i64 = 60;

/// Asks for a reset link for `login`: always `Ok` (unless throttled), before anything that
/// depends on the account runs.
pub(crate) async fn request(
    state: Arc<AppState>,
    login: &EmailAddress,
    ip: Option<String>,
) -> ApiResult<()> {
    throttle::count_account_mail(&state, "password_reset", login.as_str(), ip.as_deref()).await?;
    let login = login.to_string();
    tokio::spawn(async move {
        if let Err(e) = send_reset(&state, &login, ip).await {
            tracing::warn!(error = %e, "a password reset e-mail could not be queued");
        }
    });
    Ok(())
}

/// Issues a reset link to the account whose login is `login`, if any (a newer link
/// supersedes the older ones).
async fn send_reset(state: &AppState, login: &str, ip: Option<String>) -> ApiResult<()> {
    let Some(account) = repo::accounts::find_by_login(&state.db, login).await? else {
        return Ok(());
    };
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let secret = token::generate();
    let expires_at = now + Duration::minutes(RESET_TTL_MINUTES);
    repo::account_tokens::void_all(
        uow.tx(),
        account.id,
        AccountTokenPurpose::PasswordReset,
        now,
    )
    .await?;
    repo::account_tokens::insert(
        uow.tx(),
        NewToken {
            account_id: account.id,
            purpose: AccountTokenPurpose::PasswordReset,
            token_hash: token::hash(&secret),
            email: Some(&account.login),
            expires_at,
        },
        now,
    )
    .await?;
    let body = format!(
        "Hello,\n\nSomeone asked to reset the password of the account {login}. To choose a new one, open:\n\n  {link}\n\nThe link works once, for one hour (until {until}). Every session of the account ends when the password changes. If you did not ask for this, ignore this message: your password stays as it is.\n",
        login = account.login,
        link = links::reset_password(state, &secret),
        until = expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    uow.send_consent_mail(
        None,
        &account.login,
        "Reset your password",
        (&body, &secret),
    )
    .await?;
    // Whoever asked is not known to be the account: no actor, their address for context.
    let actor = Actor {
        account_id: None,
        ip,
    };
    uow.record_for_account(
        &actor,
        account.id,
        Change::AccountPasswordResetRequested,
        &account.login,
    )
    .await?;
    uow.commit().await
}

const RESET_PURPOSES: [AccountTokenPurpose; 1] = [AccountTokenPurpose::PasswordReset];

/// Whether a reset link is live. Reads only: a page checks it before showing its form.
pub(crate) async fn preview(state: &AppState, presented: &str) -> ApiResult<()> {
    live_token(&state.db, presented, &RESET_PURPOSES, state.clock.now()).await?;
    Ok(())
}

/// Follows a reset link with a new password (the password policy applies).
pub(crate) async fn complete(
    state: &AppState,
    presented: &str,
    new_password: Password,
    ip: Option<String>,
) -> ApiResult<PasswordChangedResponse> {
    // Checked before hashing (argon2 is the expensive part), then again when spent.
    let found = live_token(&state.db, presented, &RESET_PURPOSES, state.clock.now()).await?;
    let account = repo::accounts::find(&state.db, found.account_id)
        .await?
        .ok_or_else(token_invalid)?;
    state
        .password_policy()
        .check(new_password.expose(), &[account.login.as_str()])
        .map_err(|m| ApiError::invalid_field("new_password", m))?;
    let hash = state.passwords.hash(new_password.into_inner()).await?;
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    if !repo::account_tokens::consume(uow.tx(), found.id, now).await? {
        return Err(token_invalid());
    }
    let actor = Actor {
        account_id: Some(account.id),
        ip,
    };
    let unified = set_password(&uow, &actor, &account, &hash).await?;
    repo::account_tokens::void_all(
        uow.tx(),
        account.id,
        AccountTokenPurpose::PasswordReset,
        now,
    )
    .await?;
    uow.revoke_sessions_of(account.id, None, "password_reset")
        .await?;
    // The link reached the login: that proves it as a verification link would.
    if found.email.as_deref() == Some(account.login.as_str()) && !account.login_verified {
        repo::accounts::set_login_verified(uow.tx(), account.id).await?;
    }
    uow.record_for_account(
        &actor,
        account.id,
        Change::AccountPasswordChanged {
            unified_addresses_updated: Some(unified.len()),
            via: Some(PasswordChangeVia::PasswordReset),
            address: None,
        },
        &account.login,
    )
    .await?;
    let body = format!(
        "Hello,\n\nThe password of the account {} was changed with a reset link, and every session of the account ended.\n\nIf you did not do this, reset it again at once and contact your provider's support.\n",
        account.login
    );
    uow.send_mail(None, &account.login, "Your password was changed", &body)
        .await?;
    uow.commit().await?;
    Ok(PasswordChangedResponse {
        unified_addresses: unified,
    })
}
