//! The authenticated caller as a plain value: what the service layer is given about who acts
//! (never the HTTP extractor that produced it).

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::events::Actor;

/// What a personal API token allows (docs/tokens.md): every token reads; `write` changes,
/// `dangerous` (which implies `write`) deletes, unlinks, changes passwords and stands for a
/// recent password proof. `organization_id` limits it to one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrant {
    pub token_id: Uuid,
    pub write: bool,
    pub dangerous: bool,
    pub organization_id: Option<Uuid>,
}

/// An authenticated account, its session (or API token) and when it last proved its
/// password.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: Uuid,
    /// The session; for an API token, the key its lookups are cached under (no session has
    /// it).
    pub session_id: Uuid,
    pub login: String,
    /// The account proved it receives mail at its login: only then is it "the account
    /// whose login the address is" (sharing, unification) and matched to e-mailed
    /// invitations.
    pub login_verified: bool,
    pub auth_time: DateTime<Utc>,
    pub ip: Option<String>,
    /// Set when the caller authenticated with a personal API token.
    pub grant: Option<TokenGrant>,
}

impl Caller {
    /// False when the caller's API token is limited to another organization: everything of
    /// `organization_id` is then invisible to it (404, as for a stranger).
    pub fn reaches(&self, organization_id: Uuid) -> bool {
        self.grant
            .and_then(|g| g.organization_id)
            .is_none_or(|only| only == organization_id)
    }

    /// The organization the caller's API token is limited to, if any.
    pub fn only_organization(&self) -> Option<Uuid> {
        self.grant.and_then(|g| g.organization_id)
    }

    /// The actor of the events this caller causes.
    pub fn actor(&self) -> Actor {
        Actor {
            account_id: Some(self.account_id),
            ip: self.ip.clone(),
        }
    }

    /// Demands a password proof (login or `POST /v1/sessions/reauth`) younger than
    /// `window_secs`. Dangerous operations call it after their authorization check, so that
    /// a stranger learns nothing (404) whatever the age of their proof.
    ///
    /// An API token cannot prove a password: one with the `dangerous` scope stands for a
    /// proof (creating such a token needed one; docs/decisions.md "API tokens and recent
    /// proofs"), any other is refused with `token_scope_insufficient`.
    pub fn require_recent_proof(&self, window_secs: u64, now: DateTime<Utc>) -> ApiResult<()> {
        if let Some(grant) = &self.grant {
            if grant.dangerous {
                return Ok(());
            }
            return Err(ApiError::new(
                ErrorCode::TokenScopeInsufficient,
                "this operation needs an API token with the dangerous scope",
            ));
        }
        let window = Duration::seconds(i64::try_from(window_secs).unwrap_or(i64::MAX / 1000));
        if self.auth_time + window < now {
            return Err(ApiError::new(
                ErrorCode::ReauthenticationRequired,
                format!(
                    "this operation needs a password proof from the last {window_secs} seconds: POST /v1/sessions/reauth"
                ),
            ));
        }
        Ok(())
    }
}
