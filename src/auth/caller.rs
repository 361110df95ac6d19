//! The authenticated caller as a plain value: what the service layer is given about who acts
//! (never the HTTP extractor that produced it).

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::events::Actor;

/// An authenticated account, its session and when it last proved its password.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: Uuid,
    pub session_id: Uuid,
    pub login: String,
    /// The account proved it receives mail at its login: only then is it "the account
    /// whose login the address is" (sharing, unification) and matched to e-mailed
    /// invitations.
    pub login_verified: bool,
    pub auth_time: DateTime<Utc>,
    pub ip: Option<String>,
}

impl Caller {
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
    pub fn require_recent_proof(&self, window_secs: u64, now: DateTime<Utc>) -> ApiResult<()> {
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
