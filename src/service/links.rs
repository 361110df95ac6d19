//! The links e-mails carry, one function per flow, and the one list of their paths: with
//! `POSTIER_APP_URL` set they open a frontend's pages at these paths, otherwise Postier's own
//! (`src/pages/`, mounted at the same paths under `POSTIER_PUBLIC_URL`). Each link carries
//! only the raw single-use token. docs/pages.md documents the paths for frontends.

use crate::state::AppState;

/// Confirm the login (or the new login of a login change): `POST /v1/accounts/verify`.
pub(crate) const VERIFY_LOGIN: &str = "/accounts/verify";
/// Set a new password: `POST /v1/password-resets/complete`.
pub(crate) const RESET_PASSWORD: &str = "/password-reset";
/// Join an organization: `POST /v1/member-invitations/accept`.
pub(crate) const ACCEPT_MEMBER_INVITATION: &str = "/member-invitations/accept";
/// Accept an invitation onto an address: `POST /v1/invitations/accept`.
pub(crate) const ACCEPT_INVITATION: &str = "/invitations/accept";
/// Decline it: `POST /v1/invitations/decline`.
pub(crate) const DECLINE_INVITATION: &str = "/invitations/decline";
/// Confirm a forwarding target (`POST /v1/forwards/confirm`); the same page offers to refuse.
pub(crate) const CONFIRM_FORWARD: &str = "/forwards/confirm";
/// Refuse a forwarding target: `POST /v1/forwards/refuse`.
pub(crate) const REFUSE_FORWARD: &str = "/forwards/refuse";
/// Redeem a share link: `POST /v1/share-links/redeem`.
pub(crate) const REDEEM_SHARE_LINK: &str = "/share-links/redeem";

fn link(state: &AppState, path: &str, token: &str) -> String {
    format!("{}{path}?token={token}", state.config.effective_link_base())
}

pub(crate) fn verify_login(state: &AppState, token: &str) -> String {
    link(state, VERIFY_LOGIN, token)
}

pub(crate) fn reset_password(state: &AppState, token: &str) -> String {
    link(state, RESET_PASSWORD, token)
}

pub(crate) fn accept_member_invitation(state: &AppState, token: &str) -> String {
    link(state, ACCEPT_MEMBER_INVITATION, token)
}

pub(crate) fn accept_invitation(state: &AppState, token: &str) -> String {
    link(state, ACCEPT_INVITATION, token)
}

pub(crate) fn decline_invitation(state: &AppState, token: &str) -> String {
    link(state, DECLINE_INVITATION, token)
}

pub(crate) fn confirm_forward(state: &AppState, token: &str) -> String {
    link(state, CONFIRM_FORWARD, token)
}

pub(crate) fn redeem_share_link(state: &AppState, token: &str) -> String {
    link(state, REDEEM_SHARE_LINK, token)
}
