//! Sharing an address: invitations (by login to members, by e-mail to anyone else) and their
//! answers, and share links. Each answer is single-use and atomic: the status or use count is
//! moved with a conditional update, and the access is written in the same transaction.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{token, AuthUser};
use crate::domain::{AccessOrigin, AccountBinding, EmailAddress, InvitationStatus, PermissionSet};
use crate::entity::{account, address, invitation, mail_service, share_link};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Scope};
use crate::state::AppState;

/// Who is invited.
pub enum Invitee {
    /// An account that is a member of the organization, found by login.
    Member(account::Model),
    /// Anyone else, by e-mail.
    Email(EmailAddress),
}

pub fn scope_of(address: &address::Model, service: &mail_service::Model) -> Scope {
    Scope {
        organization_id: Some(service.organization_id),
        mail_service_id: Some(service.id),
        address_id: Some(address.id),
    }
}

/// An address that is the login of an account cannot be shared with anyone else (seed
/// rule): once that account holds an access to it, only that account may receive one. An
/// account that merely signed up with the address as login (sign-up proves no ownership of
/// it) does not lock its organization out of sharing it.
pub async fn ensure_shareable(
    conn: &impl ConnectionTrait,
    address: &address::Model,
    recipient: Option<Uuid>,
) -> ApiResult<()> {
    if let Some(owner) = repo::accounts::find_by_login(conn, &address.address).await? {
        let holds_it = repo::sharing::find_access(conn, address.id, owner.id)
            .await?
            .is_some();
        if holds_it && Some(owner.id) != recipient {
            return Err(ApiError::conflict(
                ErrorCode::AddressIsAccountLogin,
                format!(
                    "{} is the login of an account and cannot be shared with anyone else",
                    address.address
                ),
            ));
        }
    }
    Ok(())
}

pub struct Invite<'a> {
    pub address: &'a address::Model,
    pub service: &'a mail_service::Model,
    pub invitee: Invitee,
    pub permissions: PermissionSet,
    pub binding: AccountBinding,
    pub inviter: &'a AuthUser,
}

/// Creates an invitation and queues its e-mail, inside the caller's transaction.
pub async fn invite(
    conn: &impl ConnectionTrait,
    state: &AppState,
    invite: Invite<'_>,
    now: DateTime<Utc>,
) -> ApiResult<invitation::Model> {
    let Invite {
        address,
        service,
        invitee,
        permissions,
        binding,
        inviter,
    } = invite;
    let recipient_account = match &invitee {
        Invitee::Member(account) => Some(account.id),
        Invitee::Email(_) if binding == AccountBinding::ThisAddress => {
            repo::accounts::find_by_login(conn, &address.address)
                .await?
                .map(|a| a.id)
        }
        Invitee::Email(_) => None,
    };
    ensure_shareable(conn, address, recipient_account).await?;
    if let Invitee::Member(account) = &invitee {
        if repo::sharing::find_access(conn, address.id, account.id)
            .await?
            .is_some()
        {
            return Err(ApiError::conflict(
                ErrorCode::AccessAlreadyExists,
                format!(
                    "{} already has an access to {}",
                    account.login, address.address
                ),
            ));
        }
        if repo::sharing::has_pending_invitation(conn, address.id, account.id, now).await? {
            return Err(ApiError::conflict(
                ErrorCode::InvitationAlreadyPending,
                format!(
                    "{} has a pending invitation to {} already; revoke it to send another",
                    account.login, address.address
                ),
            ));
        }
    }
    let ttl = Duration::hours(i64::try_from(state.config.invitation_ttl_hours).unwrap_or(168));
    let expires_at = now + ttl;
    let secret = matches!(invitee, Invitee::Email(_)).then(token::generate);
    let (invitee_account_id, invitee_email, recipient, shown) = match &invitee {
        Invitee::Member(account) => (
            Some(account.id),
            None,
            account.login.clone(),
            account.login.clone(),
        ),
        Invitee::Email(email) => (
            None,
            Some(email.to_string()),
            email.to_string(),
            email.to_string(),
        ),
    };
    let created = repo::sharing::insert_invitation(
        conn,
        repo::sharing::NewInvitation {
            address_id: address.id,
            invitee_account_id,
            invitee_email,
            permissions,
            account_binding: binding,
            token_hash: secret.as_deref().map(token::hash),
            expires_at,
            created_by: inviter.account_id,
        },
        now,
    )
    .await?;
    let (subject, body) = invitation_email(
        state,
        address,
        inviter,
        permissions,
        binding,
        secret.as_deref(),
        expires_at,
    );
    crate::mailer::enqueue(
        conn,
        Some(service.organization_id),
        &recipient,
        &subject,
        &body,
        now,
    )
    .await?;
    repo::events::record(
        conn,
        now,
        &inviter.actor(),
        scope_of(address, service),
        "invitation.created",
        address.address.as_str(),
        Some(json!({
            "invitation_id": created.id,
            "invitee": shown,
            "permissions": permissions.to_vec(),
            "account_binding": binding,
        })),
    )
    .await?;
    Ok(created)
}

fn invitation_email(
    state: &AppState,
    address: &address::Model,
    inviter: &AuthUser,
    permissions: PermissionSet,
    binding: AccountBinding,
    secret: Option<&str>,
    expires_at: DateTime<Utc>,
) -> (String, String) {
    let rights = permissions
        .to_vec()
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join(", ");
    let subject = format!("{} invites you to use {}", inviter.login, address.address);
    let how = match secret {
        Some(secret) => {
            let account = match binding {
                AccountBinding::ThisAddress => format!(
                    "Accept it with an account whose login is {} (sign up with that login if you have none).",
                    address.address
                ),
                AccountBinding::Any => {
                    "Accept it with the account of your choice (sign up first if you have none).".to_string()
                }
            };
            let base = state.config.effective_public_url();
            format!(
                "To accept, open:\n\n  {base}/invitations/accept?token={secret}\n\n{account}\n\nNot interested? Decline it:\n\n  {base}/invitations/decline?token={secret}"
            )
        }
        None => "Log in to the Manager and accept it from your invitations.".to_string(),
    };
    let body = format!(
        "Hello,\n\n{} invites you to use the mail address {}.\n\nPermissions: {}.\n\n{how}\n\nThis invitation expires on {}.\n",
        inviter.login,
        address.address,
        if rights.is_empty() { "none".to_string() } else { rights },
        expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    (subject, body)
}

/// What the status of an invitation is now (`pending` past its expiry reads `expired`).
pub fn current_status(invitation: &invitation::Model, now: DateTime<Utc>) -> InvitationStatus {
    let status = invitation.status;
    if status == InvitationStatus::Pending && invitation.expires_at <= now {
        InvitationStatus::Expired
    } else {
        status
    }
}

fn not_pending(invitation: &invitation::Model, now: DateTime<Utc>) -> ApiError {
    match current_status(invitation, now) {
        InvitationStatus::Expired => ApiError::new(
            ErrorCode::InvitationExpired,
            format!(
                "the invitation expired on {}",
                invitation.expires_at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        status => ApiError::conflict(
            ErrorCode::InvitationNotPending,
            format!("the invitation is {}", status.as_str()),
        ),
    }
}

/// Accepts an invitation for `user`: checks it, moves it to accepted exactly once and gives
/// the access, in one transaction.
pub async fn accept(
    db: &DatabaseConnection,
    invitation: invitation::Model,
    user: &AuthUser,
    now: DateTime<Utc>,
) -> ApiResult<address::Model> {
    let address = repo::addresses::find(db, invitation.address_id)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    let service = repo::mail_services::find(db, address.mail_service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    if current_status(&invitation, now) != InvitationStatus::Pending {
        return Err(not_pending(&invitation, now));
    }
    if invitation.account_binding == AccountBinding::ThisAddress && user.login != address.address {
        return Err(ApiError::new(
            ErrorCode::InvitationBindingMismatch,
            format!(
                "this invitation must be accepted by an account whose login is {}",
                address.address
            ),
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    ensure_shareable(&txn, &address, Some(user.account_id)).await?;
    // An invitation never changes an existing access: its permissions may have been
    // narrowed since the invitation was sent.
    if repo::sharing::find_access(&txn, address.id, user.account_id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            ErrorCode::AccessAlreadyExists,
            format!("you already have an access to {}", address.address),
        ));
    }
    if !repo::sharing::answer_invitation(
        &txn,
        invitation.id,
        InvitationStatus::Accepted,
        Some(user.account_id),
        now,
    )
    .await?
    {
        let again = repo::sharing::find_invitation(&txn, invitation.id)
            .await?
            .ok_or_else(|| ApiError::not_found("invitation"))?;
        return Err(not_pending(&again, now));
    }
    repo::sharing::grant_access(
        &txn,
        address.id,
        user.account_id,
        invitation.permissions,
        AccessOrigin::Invitation,
        now,
    )
    .await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        scope_of(&address, &service),
        "invitation.accepted",
        address.address.as_str(),
        Some(json!({ "invitation_id": invitation.id, "account_id": user.account_id, "login": user.login })),
    )
    .await?;
    txn.commit().await?;
    Ok(address)
}

/// Declines or revokes a pending invitation (exactly once).
pub async fn close(
    db: &DatabaseConnection,
    invitation: invitation::Model,
    status: InvitationStatus,
    actor: &crate::repo::events::Actor,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let address = repo::addresses::find(db, invitation.address_id)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    let service = repo::mail_services::find(db, address.mail_service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    let txn = crate::db::begin_write(db).await?;
    if !repo::sharing::answer_invitation(&txn, invitation.id, status, actor.account_id, now).await?
    {
        let again = repo::sharing::find_invitation(&txn, invitation.id)
            .await?
            .ok_or_else(|| ApiError::not_found("invitation"))?;
        return Err(not_pending(&again, now));
    }
    let action = match status {
        InvitationStatus::Declined => "invitation.declined",
        _ => "invitation.revoked",
    };
    repo::events::record(
        &txn,
        now,
        actor,
        scope_of(&address, &service),
        action,
        address.address.as_str(),
        Some(json!({ "invitation_id": invitation.id })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

fn link_unusable(link: &share_link::Model, now: DateTime<Utc>) -> Option<ApiError> {
    if link.revoked_at.is_some() {
        return Some(ApiError::new(
            ErrorCode::ShareLinkRevoked,
            "the share link was revoked",
        ));
    }
    if link.expires_at <= now {
        return Some(ApiError::new(
            ErrorCode::ShareLinkExpired,
            format!(
                "the share link expired on {}",
                link.expires_at.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    }
    if link.uses >= link.max_uses {
        return Some(ApiError::new(
            ErrorCode::ShareLinkUsedUp,
            format!("the share link was used its {} time(s)", link.max_uses),
        ));
    }
    None
}

/// Redeems a share link for `user`: one use taken atomically and the access given, in one
/// transaction.
pub async fn redeem(
    db: &DatabaseConnection,
    presented: &str,
    user: &AuthUser,
    now: DateTime<Utc>,
) -> ApiResult<address::Model> {
    let unknown = || ApiError::not_found("share link");
    if !token::looks_valid(presented) {
        return Err(unknown());
    }
    let link = repo::sharing::find_share_link_by_token_hash(db, &token::hash(presented))
        .await?
        .ok_or_else(unknown)?;
    if !token::matches(presented, &link.token_hash) {
        return Err(unknown());
    }
    if let Some(err) = link_unusable(&link, now) {
        return Err(err);
    }
    let address = repo::addresses::find(db, link.address_id)
        .await?
        .ok_or_else(unknown)?;
    let service = repo::mail_services::find(db, address.mail_service_id)
        .await?
        .ok_or_else(unknown)?;
    if repo::sharing::find_access(db, address.id, user.account_id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            ErrorCode::AccessAlreadyExists,
            format!("you already have an access to {}", address.address),
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    ensure_shareable(&txn, &address, Some(user.account_id)).await?;
    if !repo::sharing::use_share_link(&txn, link.id, now).await? {
        let again = repo::sharing::find_share_link(&txn, link.id)
            .await?
            .ok_or_else(unknown)?;
        return Err(link_unusable(&again, now).unwrap_or_else(unknown));
    }
    repo::sharing::grant_access(
        &txn,
        address.id,
        user.account_id,
        link.permissions,
        AccessOrigin::ShareLink,
        now,
    )
    .await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        scope_of(&address, &service),
        "share_link.redeemed",
        address.address.as_str(),
        Some(
            json!({ "share_link_id": link.id, "account_id": user.account_id, "login": user.login }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(address)
}
