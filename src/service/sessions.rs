//! Sessions: logging in (throttled, timing-safe for unknown logins; with two-factor login
//! on, a short-lived challenge then a code), rotating refresh tokens (a reused one revokes
//! its family, past a short grace for two tabs refreshing at once), stepping up (with the code too when two-factor login is on) and logging out.
//! Each is recorded in the account's own log, never with a token or a code.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{throttle, token, Caller};
use crate::domain::{AccountTokenPurpose, EmailAddress, Secret};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, account_tokens::NewToken, batch::Batch, events::Actor, events::Scope};
use crate::service::accounts;
use crate::service::audit::{self, Change};
use crate::service::two_factor;
use crate::service::{UnitOfWork, WriteBatch};
use crate::state::AppState;

/// How long the challenge between the password and the code of a two-factor login lives.
const CHALLENGE_TTL_SECS: i64 = 300;

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds before the access token expires.
    pub expires_in: i64,
    /// Opaque; single use: each refresh answers a new one.
    pub refresh_token: String,
}

/// A fresh access token after a step-up.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccessTokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "the login or the password is wrong",
    )
}

fn refresh_token_invalid() -> ApiError {
    ApiError::new(
        ErrorCode::RefreshTokenInvalid,
        "the refresh token is not valid",
    )
}

/// Exchanges a login and password for a new session. An unknown login costs the same
/// verification as a wrong password.
pub(crate) async fn log_in(
    state: &AppState,
    typed_login: &str,
    password: Secret,
    ip: Option<String>,
) -> ApiResult<SessionResponse> {
    let login = EmailAddress::lookup_key(typed_login);
    // A full hashing queue answers 503 before anything is counted or read.
    let slot = state.passwords.reserve()?;
    // The account is read with the count that admits the attempt (one call to a SQLite
    // connection for both).
    let read = Some(repo::accounts::for_login_query(&login));
    let (attempt, rows) = throttle::begin_attempt_then(state, &login, ip.as_deref(), read).await?;
    let found = rows
        .first()
        .map(repo::accounts::for_login_row)
        .transpose()?;
    let ok = slot
        .verify(
            password.into_inner(),
            found.as_ref().map(|(a, _)| a.password_hash.clone()),
        )
        .await?;
    let Some((account, facts)) = found.filter(|_| ok) else {
        attempt.failed(state).await?;
        return Err(invalid_credentials());
    };
    // The success settles with the writes that open the session (or record the
    // second-factor challenge): nothing of the login is read back, so they are one batch,
    // one round trip and one commit (docs/decisions.md "A login is three round trips").
    let mut writes = WriteBatch::new(state);
    attempt.succeeded_into(writes.batch());
    if facts.second_factor {
        let challenge = token::generate();
        let now = writes.now();
        let (_, insert) = repo::account_tokens::insert_statement(
            NewToken {
                account_id: account.id,
                purpose: AccountTokenPurpose::SecondFactorChallenge,
                token_hash: token::hash(&challenge),
                email: None,
                expires_at: now + Duration::seconds(CHALLENGE_TTL_SECS),
            },
            now,
        );
        writes.batch().push(insert);
        attempt.settled_by(state, writes.commit().await).await?;
        return Err(ApiError::second_factor_required(
            Some(challenge),
            format!("this account has two-factor login: send the challenge with a code from the authenticator app (or a recovery code) to POST /v1/sessions/second-factor within {CHALLENGE_TTL_SECS} seconds"),
        ));
    }
    let now = writes.now();
    let (session_id, refresh) = open_session(state, writes.batch(), account.id, ip.clone(), now);
    let actor = Actor {
        account_id: Some(account.id),
        ip,
    };
    let log = Scope::personal(facts.personal_organization_id);
    let written = async move {
        writes
            .record(
                &actor,
                log,
                Change::SessionCreated,
                &session_id.to_string(),
                facts.personal_webhooks,
            )
            .await?;
        writes.commit().await
    };
    attempt.settled_by(state, written.await).await?;
    session_response(state, account.id, session_id, now, refresh)
}

/// The writes of a new session and its first refresh token, into `batch`; the caller
/// records `Change::SessionCreated` in the account's own log with them.
fn open_session(
    state: &AppState,
    batch: &mut Batch,
    account_id: Uuid,
    ip: Option<String>,
    now: DateTime<Utc>,
) -> (Uuid, String) {
    let refresh = token::generate();
    let expires_at = now
        + Duration::seconds(
            i64::try_from(state.config.session_ttl_secs).unwrap_or(i64::MAX / 1000),
        );
    let (session, insert) = repo::sessions::create_statement(account_id, now, expires_at, ip);
    batch.push(insert);
    batch.push(repo::sessions::add_refresh_token_statement(
        token::hash(&refresh),
        session.id,
        now,
    ));
    (session.id, refresh)
}

fn session_response(
    state: &AppState,
    account_id: Uuid,
    session_id: Uuid,
    now: DateTime<Utc>,
    refresh: String,
) -> ApiResult<SessionResponse> {
    let access = state
        .jwt
        .issue(account_id, session_id, now, now)
        .map_err(ApiError::internal)?;
    Ok(SessionResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        refresh_token: refresh,
    })
}

fn challenge_invalid() -> ApiError {
    ApiError::new(
        ErrorCode::SecondFactorChallengeInvalid,
        "the login challenge is unknown, used or expired: log in again with the password",
    )
}

/// The second step of a two-factor login: the challenge from `POST /v1/sessions` and a
/// TOTP or recovery code give the session. The challenge is spent with the session; a
/// wrong code leaves it usable until it expires, failures being throttled.
pub(crate) async fn complete_second_factor(
    state: &AppState,
    challenge: Secret,
    code: Secret,
    ip: Option<String>,
) -> ApiResult<SessionResponse> {
    let presented = challenge.expose();
    if !token::looks_valid(presented) {
        return Err(challenge_invalid());
    }
    let purposes = [AccountTokenPurpose::SecondFactorChallenge];
    let found = repo::account_tokens::find_live(
        &state.db,
        &token::hash(presented),
        &purposes,
        state.clock.now(),
    )
    .await?
    .filter(|t| token::matches(presented, &t.token_hash))
    .ok_or_else(challenge_invalid)?;
    let account_id = found.account_id;
    let subject = two_factor::throttle_subject(account_id);
    let attempt = throttle::begin_attempt(state, &subject, ip.as_deref()).await?;
    let uow = UnitOfWork::begin(state).await?;
    let actor = Actor {
        account_id: Some(account_id),
        ip: ip.clone(),
    };
    if two_factor::consume_code(&uow, &actor, account_id, code.expose())
        .await?
        .is_none()
    {
        drop(uow);
        attempt.failed(state).await?;
        return Err(ApiError::new(
            ErrorCode::SecondFactorInvalid,
            "the code is wrong, was used already or has expired: try the current code",
        ));
    }
    if !repo::account_tokens::consume(uow.tx(), found.id, uow.now()).await? {
        return Err(challenge_invalid());
    }
    let log = audit::personal_scope(uow.tx(), account_id).await?;
    let now = uow.now();
    let mut batch = Batch::default();
    let (session_id, refresh) = open_session(state, &mut batch, account_id, ip, now);
    uow.run(batch).await?;
    uow.record(&actor, log, Change::SessionCreated, &session_id.to_string())
        .await?;
    uow.commit().await?;
    attempt.succeeded(state).await?;
    session_response(state, account_id, session_id, now, refresh)
}

/// Rotates a refresh token. A spent one coming back within `refresh_reuse_grace_secs` of its
/// rotation (two browser tabs refreshing at once) gets the successor the first refresh got;
/// after that, it revokes its whole session: whoever holds the family is not to be trusted.
pub(crate) async fn refresh(
    state: &AppState,
    presented: Secret,
    ip: Option<String>,
) -> ApiResult<SessionResponse> {
    if !token::looks_valid(presented.expose()) {
        return Err(refresh_token_invalid());
    }
    let hash = token::hash(presented.expose());
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let Some(stored) = repo::sessions::find_refresh_token(uow.tx(), &hash).await? else {
        return Err(refresh_token_invalid());
    };
    let successor = token::generate();
    let sealed = token::seal_successor(presented.expose(), &successor, stored.session_id);
    if repo::sessions::consume_refresh_token(uow.tx(), &hash, &sealed, now).await? {
        let Some(active) = repo::sessions::find_usable(uow.tx(), stored.session_id, now).await?
        else {
            return Err(refresh_token_invalid());
        };
        repo::sessions::add_refresh_token(uow.tx(), token::hash(&successor), active.id, now)
            .await?;
        uow.commit().await?;
        return refreshed(state, &active, now, successor);
    }
    // Spent already (read again: a refresh running alongside may have just spent it).
    let spent = repo::sessions::find_refresh_token(uow.tx(), &hash).await?;
    let grace = Duration::seconds(
        i64::try_from(state.config.refresh_reuse_grace_secs).unwrap_or(i64::MAX / 1000),
    );
    let again = spent.as_ref().and_then(|t| {
        let within = t.used_at.is_some_and(|used| now <= used + grace);
        let sealed = t.successor_sealed.as_deref().filter(|_| within)?;
        token::open_successor(presented.expose(), sealed, t.session_id)
    });
    if let Some(successor) = again {
        let Some(active) = repo::sessions::find_usable(uow.tx(), stored.session_id, now).await?
        else {
            return Err(refresh_token_invalid());
        };
        drop(uow);
        tracing::debug!(session_id = %active.id, "refresh token presented again within the grace period");
        return refreshed(state, &active, now, successor);
    }
    let revoked = uow
        .revoke_session(stored.session_id, "refresh_token_reuse")
        .await?;
    let session = match revoked {
        false => None,
        true => repo::sessions::find(uow.tx(), stored.session_id).await?,
    };
    if let Some(session) = session {
        // The holder is unknown: no actor, and the presenter's address for context.
        let actor = Actor {
            account_id: None,
            ip,
        };
        uow.record_for_account(
            &actor,
            session.account_id,
            Change::SessionRevoked {
                reason: "refresh_token_reuse",
            },
            &session.id.to_string(),
        )
        .await?;
    }
    uow.commit().await?;
    tracing::warn!(session_id = %stored.session_id, "refresh token reused; session revoked");
    Err(refresh_token_invalid())
}

/// The answer of a refresh: a new access token for the session and its refresh token.
fn refreshed(
    state: &AppState,
    active: &crate::entity::session::Model,
    now: DateTime<Utc>,
    refresh_token: String,
) -> ApiResult<SessionResponse> {
    let access = state
        .jwt
        .issue(active.account_id, active.id, active.auth_time, now)
        .map_err(ApiError::internal)?;
    Ok(SessionResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        refresh_token,
    })
}

/// Proves the password again (and, with two-factor login on, a code): the session's
/// `auth_time` becomes now.
pub(crate) async fn reauthenticate(
    state: &AppState,
    caller: &Caller,
    password: Secret,
    code: Option<Secret>,
) -> ApiResult<AccessTokenResponse> {
    let account = accounts::own_account(state, caller).await?;
    accounts::verify_own_password(state, &account, password, caller.ip.as_deref()).await?;
    let attempt = if repo::second_factors::is_enabled(&state.db, account.id).await? {
        let Some(code) = &code else {
            return Err(ApiError::second_factor_required(
                None,
                "two-factor login is on: send code (from the authenticator app, or a recovery code) with the password",
            ));
        };
        let subject = two_factor::throttle_subject(account.id);
        let attempt = throttle::begin_attempt(state, &subject, caller.ip.as_deref()).await?;
        Some((attempt, code))
    } else {
        None
    };
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let attempt = match attempt {
        Some((attempt, code)) => {
            let used =
                two_factor::consume_code(&uow, &caller.actor(), account.id, code.expose()).await?;
            if used.is_none() {
                drop(uow);
                attempt.failed(state).await?;
                return Err(ApiError::new(
                    ErrorCode::SecondFactorIncorrect,
                    "the code is wrong, was used already or has expired",
                ));
            }
            Some(attempt)
        }
        None => None,
    };
    repo::sessions::set_auth_time(uow.tx(), caller.session_id, now).await?;
    uow.record_for_account(
        &caller.actor(),
        account.id,
        Change::SessionReauthenticated,
        &caller.session_id.to_string(),
    )
    .await?;
    uow.commit().await?;
    if let Some(attempt) = attempt {
        attempt.succeeded(state).await?;
    }
    let access = state
        .jwt
        .issue(account.id, caller.session_id, now, now)
        .map_err(ApiError::internal)?;
    Ok(AccessTokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
    })
}

/// Ends the caller's session: its access and refresh tokens stop working at once.
pub(crate) async fn log_out(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let mut uow = UnitOfWork::begin(state).await?;
    uow.revoke_session(caller.session_id, "logout").await?;
    uow.record_for_account(
        &caller.actor(),
        caller.account_id,
        Change::SessionEnded,
        &caller.session_id.to_string(),
    )
    .await?;
    uow.commit().await
}

/// The caller a session just opened by [`log_in`] or [`complete_second_factor`] stands for.
/// A page acting once for the person who typed their password there (redeeming a share link,
/// accepting an invitation) uses it, then ends the session with [`log_out`]: no token ever
/// leaves the server.
pub(crate) async fn caller_of(
    state: &AppState,
    session: &SessionResponse,
    ip: Option<String>,
) -> ApiResult<Caller> {
    let claims = state
        .jwt
        .verify(&session.access_token, state.clock.now())
        .map_err(|_| ApiError::internal("a fresh access token did not verify"))?;
    let account = repo::accounts::find(&state.db, claims.sub)
        .await?
        .ok_or_else(invalid_credentials)?;
    let auth_time = DateTime::from_timestamp(claims.auth_time, 0)
        .ok_or_else(|| ApiError::internal("a fresh access token has no valid auth_time"))?;
    Ok(Caller {
        account_id: account.id,
        session_id: claims.sid,
        login: account.login,
        login_verified: account.login_verified,
        auth_time,
        ip,
        // A page acts with a session of its own, never with an API token.
        grant: None,
    })
}
