//! The links e-mails carry, one function per flow, so that the pages behind them can move
//! (to `POSTIER_APP_URL`, a frontend) in one place. Each takes the raw single-use token.

use crate::state::AppState;

fn base(state: &AppState) -> String {
    state.config.effective_public_url()
}

/// Confirms the login (or the new login of a login change): `POST /v1/accounts/verify`.
pub(crate) fn verify_login(state: &AppState, token: &str) -> String {
    format!("{}/accounts/verify?token={token}", base(state))
}

/// Sets a new password: `POST /v1/password-resets/complete`.
pub(crate) fn reset_password(state: &AppState, token: &str) -> String {
    format!("{}/password-reset?token={token}", base(state))
}

/// Joins an organization: `POST /v1/member-invitations/accept`.
pub(crate) fn accept_member_invitation(state: &AppState, token: &str) -> String {
    format!("{}/member-invitations/accept?token={token}", base(state))
}
