//! Verifying the login: the link e-mailed at sign-up (and again on request) proves the
//! account receives mail at its login. Changing the login works the same way: the new login
//! is e-mailed a link and becomes the account's, verified, only once it is followed.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{throttle, token, Caller};
use crate::domain::{AccountTokenPurpose, EmailAddress};
use crate::entity::{account, account_token};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, account_tokens::NewToken, events::Actor};
use crate::service::accounts::{own_account, AccountResponse};
use crate::service::audit::Change;
use crate::service::{dangerous, links, UnitOfWork};
use crate::state::AppState;

/// How long a verification link works.
const VERIFICATION_TTL_HOURS: i64 = 48;
/// How long the link confirming a new login works.
const LOGIN_CHANGE_TTL_HOURS: i64 = 24;

/// The links `verify` follows: the sign-up one and a login change's.
const VERIFY_PURPOSES: [AccountTokenPurpose; 2] = [
    AccountTokenPurpose::LoginVerification,
    AccountTokenPurpose::LoginChange,
];

/// The login a live verification link would confirm. Reads only: a page shows it before
/// its holder presses the button.
pub(crate) async fn preview(state: &AppState, presented: &str) -> ApiResult<String> {
    let found = live_token(&state.db, presented, &VERIFY_PURPOSES, state.clock.now()).await?;
    found.email.ok_or_else(token_invalid)
}

/// What following a verification link answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerifiedLoginResponse {
    pub account_id: Uuid,
    /// The account's login now (the new one after a login change).
    pub login: String,
    /// Always `true`.
    pub login_verified: bool,
}

pub(crate) fn token_invalid() -> ApiError {
    ApiError::new(
        ErrorCode::TokenInvalid,
        "this link is unknown, was used already, was superseded by a newer one or has expired; ask for a new one",
    )
}

fn until(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Issues a link verifying the account's current login and queues its e-mail, in the
/// caller's unit of work; older verification links stop working.
pub(crate) async fn send_verification(
    uow: &mut UnitOfWork<'_>,
    account: &account::Model,
) -> ApiResult<()> {
    let now = uow.now();
    let state = uow.state();
    let secret = token::generate();
    let expires_at = now + Duration::hours(VERIFICATION_TTL_HOURS);
    repo::account_tokens::void_all(
        uow.tx(),
        account.id,
        AccountTokenPurpose::LoginVerification,
        now,
    )
    .await?;
    repo::account_tokens::insert(
        uow.tx(),
        NewToken {
            account_id: account.id,
            purpose: AccountTokenPurpose::LoginVerification,
            token_hash: token::hash(&secret),
            email: Some(&account.login),
            expires_at,
        },
        now,
    )
    .await?;
    let body = format!(
        "Hello,\n\nConfirm that {login} is your login by opening:\n\n  {link}\n\nThe link works once, until {until}. If you did not sign up with this address, ignore this message: nothing happens without it.\n",
        login = account.login,
        link = links::verify_login(state, &secret),
        until = until(expires_at),
    );
    uow.send_consent_mail(None, &account.login, "Confirm your login", (&body, &secret))
        .await
}

/// Sends the verification e-mail again (throttled per login and per client address).
pub(crate) async fn resend(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let account = own_account(state, caller).await?;
    if account.login_verified {
        return Err(ApiError::conflict(
            ErrorCode::LoginAlreadyVerified,
            format!("{} is verified already", account.login),
        ));
    }
    throttle::count_account_mail(state, "verification", &account.login, caller.ip.as_deref())
        .await?;
    let mut uow = UnitOfWork::begin(state).await?;
    send_verification(&mut uow, &account).await?;
    uow.record_for_account(
        &caller.actor(),
        account.id,
        Change::AccountVerificationSent,
        &account.login,
    )
    .await?;
    uow.commit().await
}

/// The live account token of one of `purposes` that `presented` is (constant-time
/// compared).
pub(crate) async fn live_token(
    conn: &impl ConnectionTrait,
    presented: &str,
    purposes: &[AccountTokenPurpose],
    now: DateTime<Utc>,
) -> ApiResult<account_token::Model> {
    if !token::looks_valid(presented) {
        return Err(token_invalid());
    }
    let found = repo::account_tokens::find_live(conn, &token::hash(presented), purposes, now)
        .await?
        .ok_or_else(token_invalid)?;
    if !token::matches(presented, &found.token_hash) {
        return Err(token_invalid());
    }
    Ok(found)
}

/// Follows a verification link: the login is verified, or the account moves to the new
/// login it asked for (verified, since the link reached it). No authentication needed.
pub(crate) async fn verify(
    state: &AppState,
    presented: &str,
    ip: Option<String>,
) -> ApiResult<VerifiedLoginResponse> {
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let found = live_token(uow.tx(), presented, &VERIFY_PURPOSES, now).await?;
    let account = repo::accounts::find(uow.tx(), found.account_id)
        .await?
        .ok_or_else(token_invalid)?;
    let email = found.email.clone().ok_or_else(token_invalid)?;
    // A verification link is for the login it was sent to: a changed login voids it.
    if found.purpose == AccountTokenPurpose::LoginVerification && email != account.login {
        return Err(token_invalid());
    }
    if !repo::account_tokens::consume(uow.tx(), found.id, now).await? {
        return Err(token_invalid());
    }
    let actor = Actor {
        account_id: Some(account.id),
        ip,
    };
    uow.account_changed(account.id);
    if found.purpose == AccountTokenPurpose::LoginVerification {
        repo::accounts::set_login_verified(uow.tx(), account.id).await?;
        uow.record_for_account(
            &actor,
            account.id,
            Change::AccountLoginVerified,
            &account.login,
        )
        .await?;
    } else {
        move_login(&mut uow, &actor, &account, &email).await?;
    }
    uow.commit().await?;
    Ok(VerifiedLoginResponse {
        account_id: account.id,
        login: email,
        login_verified: true,
    })
}

/// The account takes `new_login`, verified. Addresses unified with it because they were its
/// old login part ways (unification needs the login to be the address); the old login is
/// told.
async fn move_login(
    uow: &mut UnitOfWork<'_>,
    actor: &Actor,
    account: &account::Model,
    new_login: &str,
) -> ApiResult<()> {
    let now = uow.now();
    repo::accounts::set_verified_login(uow.tx(), account.id, new_login)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                ApiError::conflict(
                    ErrorCode::AccountAlreadyExists,
                    format!("another account uses the login {new_login} now"),
                )
            } else {
                e.into()
            }
        })?;
    for purpose in [
        AccountTokenPurpose::LoginChange,
        AccountTokenPurpose::LoginVerification,
    ] {
        repo::account_tokens::void_all(uow.tx(), account.id, purpose, now).await?;
    }
    let unified = super::unified_addresses(uow.tx(), &account.login).await?;
    for address in &unified {
        repo::addresses::set_unified(uow.tx(), address.id, false).await?;
    }
    uow.record_for_account(
        actor,
        account.id,
        Change::AccountLoginChanged {
            from: account.login.clone(),
            to: new_login.to_string(),
            unification_ended: unified.iter().map(|a| a.address.clone()).collect(),
        },
        new_login,
    )
    .await?;
    let body = format!(
        "Hello,\n\nThe account that used {old} as its login now uses {new_login}: the change was confirmed from that address.\n\nIf you did not ask for it, contact your provider's support.\n",
        old = account.login,
    );
    uow.send_mail(None, &account.login, "Your login changed", &body)
        .await
}

/// Asks to change the caller's login (recent password proof): a link goes to the new
/// login, and the change happens once it is followed.
pub(crate) async fn request_login_change(
    state: &AppState,
    caller: &Caller,
    new_login: &EmailAddress,
) -> ApiResult<AccountResponse> {
    dangerous::recent_proof(state, caller)?;
    let account = own_account(state, caller).await?;
    if new_login.as_str() == account.login {
        return Err(ApiError::invalid_field(
            "login",
            "is the account's login already",
        ));
    }
    if repo::accounts::find_by_login(&state.db, new_login.as_str())
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            ErrorCode::AccountAlreadyExists,
            format!("an account already uses the login {new_login}"),
        ));
    }
    throttle::count_account_mail(
        state,
        "login_change",
        new_login.as_str(),
        caller.ip.as_deref(),
    )
    .await?;
    let mut uow = UnitOfWork::begin(state).await?;
    // Its pending login shows on the account.
    uow.account_changed(account.id);
    let now = uow.now();
    let secret = token::generate();
    let expires_at = now + Duration::hours(LOGIN_CHANGE_TTL_HOURS);
    repo::account_tokens::void_all(uow.tx(), account.id, AccountTokenPurpose::LoginChange, now)
        .await?;
    repo::account_tokens::insert(
        uow.tx(),
        NewToken {
            account_id: account.id,
            purpose: AccountTokenPurpose::LoginChange,
            token_hash: token::hash(&secret),
            email: Some(new_login.as_str()),
            expires_at,
        },
        now,
    )
    .await?;
    let body = format!(
        "Hello,\n\nThe account {old} asked to use {new_login} as its login. To confirm, open:\n\n  {link}\n\nThe link works once, until {until}; until then the login stays {old}. If you did not ask for this, ignore this message.\n",
        old = account.login,
        link = links::verify_login(state, &secret),
        until = until(expires_at),
    );
    uow.send_consent_mail(
        None,
        new_login.as_str(),
        "Confirm your new login",
        (&body, &secret),
    )
    .await?;
    uow.record_for_account(
        &caller.actor(),
        account.id,
        Change::AccountLoginChangeRequested {
            new_login: new_login.to_string(),
        },
        &account.login,
    )
    .await?;
    uow.commit().await?;
    AccountResponse::load(state, account).await
}
