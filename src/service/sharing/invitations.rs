//! Invitations onto an address: sending one (in-app to a member, e-mailed with a single-use
//! link to anyone else), answering it (accept gives the access; decline), revoking it, and
//! what the inviter and the invitee see of it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{token, Caller};
use crate::domain::{AccessOrigin, AccountBinding, InvitationStatus, Permission, PermissionSet};
use crate::entity::{address, invitation, mail_service};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Actor, events::Scope};
use crate::service::addresses::views::{my_address, MyAddressResponse};
use crate::service::audit::Change;
use crate::service::authz::{self, Need};
use crate::service::sharing::{check_binding, ensure_shareable, resolve_invitee};
use crate::service::sharing::{Invitee, InviteeRequest};
use crate::service::{links, outreach, UnitOfWork};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationResponse {
    pub id: Uuid,
    pub address_id: Uuid,
    pub address: String,
    /// The invited member's account, when invited by login.
    pub invitee_account_id: Option<Uuid>,
    /// The invited member's login, or the e-mail an external invitee was invited at.
    pub invitee: String,
    pub permissions: Vec<Permission>,
    pub account_binding: AccountBinding,
    pub status: InvitationStatus,
    pub expires_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// What the invitee will and will not be able to do with the address, for the inviter to
    /// pass on (the invitation e-mail says the same to the invitee).
    pub warnings: Vec<String>,
}

/// The seed's warnings for an inviter: who can change the address password, and whether the
/// address can be used in a mail client at all yet.
pub(crate) fn inviter_warnings(permissions: PermissionSet, has_password: bool) -> Vec<String> {
    let mut warnings = vec![if permissions.contains(Permission::ChangePassword) {
        "Until the invitee accepts with an account (attaching the address to it), they cannot change the address password: only owners and admins of the organization can.".to_string()
    } else {
        "The invitee will not be able to change the address password (no change_password permission): only owners and admins of the organization can.".to_string()
    }];
    if !has_password {
        warnings.push(NO_PASSWORD_WARNING.to_string());
    }
    warnings
}

/// For an address created without a password (for another user).
pub(crate) const NO_PASSWORD_WARNING: &str = "The address has no password: it cannot be used in a mail client (IMAP, POP3, SMTP) until an owner, an admin or a user holding change_password sets one.";

/// The same, in plain words for the invitee (in the invitation e-mail).
fn invitee_warnings(permissions: PermissionSet, has_password: bool) -> String {
    let mut text = if permissions.contains(Permission::ChangePassword) {
        "Once you accept with an account, you can change the address password yourself; until then only the owners and administrators of the organization can.".to_string()
    } else {
        "You will not be able to change the address password yourself: only the owners and administrators of the organization can.".to_string()
    };
    if !has_password {
        text.push_str(
            " The address has no password yet, so it cannot be used in a mail program until one is set.",
        );
    }
    text
}

impl InvitationResponse {
    pub(crate) async fn load(state: &AppState, i: invitation::Model) -> ApiResult<Self> {
        let (address, has_password) = repo::addresses::find(&state.db, i.address_id)
            .await?
            .map(|a| (a.address, a.password_hash.is_some()))
            .unwrap_or_default();
        let invitee = match (i.invitee_account_id, &i.invitee_email) {
            (Some(id), _) => repo::accounts::find(&state.db, id)
                .await?
                .map(|a| a.login)
                .unwrap_or_default(),
            (None, Some(email)) => email.clone(),
            (None, None) => String::new(),
        };
        let now = state.clock.now();
        Ok(Self {
            id: i.id,
            address_id: i.address_id,
            address,
            invitee_account_id: i.invitee_account_id,
            invitee,
            permissions: i.permissions.to_vec(),
            account_binding: i.account_binding,
            status: current_status(&i, now),
            expires_at: i.expires_at,
            created_by: i.created_by,
            created_at: i.created_at,
            warnings: inviter_warnings(i.permissions, has_password),
        })
    }

    /// The views of a list's rows, in order.
    pub(crate) async fn load_all(
        state: &AppState,
        rows: Vec<invitation::Model>,
    ) -> ApiResult<Vec<Self>> {
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(Self::load(state, row).await?);
        }
        Ok(items)
    }
}

/// What the status of an invitation is now (`pending` past its expiry reads `expired`).
pub(crate) fn current_status(
    invitation: &invitation::Model,
    now: DateTime<Utc>,
) -> InvitationStatus {
    if invitation.status == InvitationStatus::Pending && invitation.expires_at <= now {
        InvitationStatus::Expired
    } else {
        invitation.status
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

pub(crate) struct Invite<'a> {
    pub address: &'a address::Model,
    pub service: &'a mail_service::Model,
    pub invitee: Invitee,
    pub permissions: PermissionSet,
    pub binding: AccountBinding,
    pub inviter: &'a Caller,
}

/// Creates an invitation and queues its e-mail, inside the caller's unit of work.
pub(crate) async fn invite(
    uow: &mut UnitOfWork<'_>,
    invite: Invite<'_>,
) -> ApiResult<invitation::Model> {
    let Invite {
        address,
        service,
        invitee,
        permissions,
        binding,
        inviter,
    } = invite;
    let now = uow.now();
    let state = uow.state();
    let recipient_account = match &invitee {
        Invitee::Member(account) => Some(account.id),
        Invitee::Email(_) if binding == AccountBinding::ThisAddress => {
            repo::accounts::find_verified_by_login(uow.tx(), &address.address)
                .await?
                .map(|a| a.id)
        }
        Invitee::Email(_) => None,
    };
    ensure_shareable(uow.tx(), address, recipient_account).await?;
    if let Invitee::Member(account) = &invitee {
        if repo::sharing::find_access(uow.tx(), address.id, account.id)
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
        if repo::sharing::has_pending_invitation(uow.tx(), address.id, account.id, now).await? {
            return Err(ApiError::conflict(
                ErrorCode::InvitationAlreadyPending,
                format!(
                    "{} has a pending invitation to {} already; revoke it to send another",
                    account.login, address.address
                ),
            ));
        }
    }
    let ttl = state.config.invitation_ttl();
    let expires_at = now + ttl;
    let secret = matches!(invitee, Invitee::Email(_)).then(token::generate);
    let (invitee_account_id, invitee_email, recipient) = match &invitee {
        Invitee::Member(account) => (Some(account.id), None, account.login.clone()),
        Invitee::Email(email) => (None, Some(email.to_string()), email.to_string()),
    };
    outreach::count(uow, service.organization_id, &[recipient.as_str()]).await?;
    let created = repo::sharing::insert_invitation(
        uow.tx(),
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
    send_invitation(
        uow,
        service.organization_id,
        &recipient,
        (&subject, &body),
        secret.as_deref(),
    )
    .await?;
    uow.record(
        &inviter.actor(),
        Scope::address(service, address),
        Change::InvitationCreated {
            invitation_id: created.id,
            invitee: recipient,
            permissions,
            account_binding: binding,
        },
        &address.address,
    )
    .await?;
    Ok(created)
}

fn invitation_email(
    state: &AppState,
    address: &address::Model,
    inviter: &Caller,
    permissions: PermissionSet,
    binding: AccountBinding,
    secret: Option<&str>,
    expires_at: DateTime<Utc>,
) -> (String, String) {
    let rights = permissions
        .to_vec()
        .iter()
        .map(|p| p.as_str())
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
            format!(
                "To accept, open:\n\n  {}\n\n{account}\n\nNot interested? Decline it:\n\n  {}",
                links::accept_invitation(state, secret),
                links::decline_invitation(state, secret),
            )
        }
        None => "Log in to the Manager and accept it from your invitations.".to_string(),
    };
    let body = format!(
        "Hello,\n\n{} invites you to use the mail address {}.\n\nPermissions: {}.\n\n{}\n\n{how}\n\nThis invitation expires on {}.\n",
        inviter.login,
        address.address,
        if rights.is_empty() { "none".to_string() } else { rights },
        invitee_warnings(permissions, address.password_hash.is_some()),
        expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    (subject, body)
}

/// Queues an invitation e-mail: with a token (an invitee by e-mail), a link mail its owners
/// may read while it waits, and whose links go once it is delivered.
async fn send_invitation(
    uow: &mut UnitOfWork<'_>,
    organization_id: Uuid,
    recipient: &str,
    (subject, body): (&str, &str),
    secret: Option<&str>,
) -> ApiResult<()> {
    match secret {
        Some(token) => {
            uow.send_link_mail(Some(organization_id), recipient, subject, (body, token))
                .await
        }
        None => {
            uow.send_mail(Some(organization_id), recipient, subject, body)
                .await
        }
    }
}

/// Invites a user onto an address the caller manages (the service's default permissions
/// unless others are chosen).
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    invitee: &InviteeRequest,
    permissions: Option<PermissionSet>,
    binding: Option<AccountBinding>,
) -> ApiResult<InvitationResponse> {
    let ctx = authz::address(&state.db, caller, address_id, Need::Manage).await?;
    let invitee = resolve_invitee(state, &ctx.service, invitee).await?;
    check_binding(&invitee, binding)?;
    let permissions = permissions.unwrap_or(ctx.service.default_permissions);
    let mut uow = UnitOfWork::begin(state).await?;
    let created = invite(
        &mut uow,
        Invite {
            address: &ctx.address,
            service: &ctx.service,
            invitee,
            permissions,
            binding: binding.unwrap_or(AccountBinding::Any),
            inviter: caller,
        },
    )
    .await?;
    uow.commit().await?;
    InvitationResponse::load(state, created).await
}

/// The invitation if the caller may see it: its invitee, or an owner or admin of the
/// address's organization (an inviter who lost that role loses its invitations too). Also
/// says whether the caller is the invitee and whether it manages the address.
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<(invitation::Model, bool, bool)> {
    let not_found = || ApiError::not_found("invitation");
    let invitation = repo::sharing::find_invitation(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    // An e-mailed invitation is the caller's too once the caller verified that login.
    let is_invitee = invitation.invitee_account_id == Some(caller.account_id)
        || (caller.login_verified && invitation.invitee_email.as_deref() == Some(&caller.login));
    let manages = authz::visible_address(&state.db, caller, invitation.address_id)
        .await?
        .is_some_and(|ctx| ctx.manages());
    if !(is_invitee || manages) {
        return Err(not_found());
    }
    Ok((invitation, is_invitee, manages))
}

/// The address an invitation is for and its mail service (404 `invitation` once either is
/// gone).
async fn address_and_service(
    state: &AppState,
    invitation: &invitation::Model,
) -> ApiResult<(address::Model, mail_service::Model)> {
    let not_found = || ApiError::not_found("invitation");
    let address = repo::addresses::find(&state.db, invitation.address_id)
        .await?
        .ok_or_else(not_found)?;
    let service = repo::mail_services::find(&state.db, address.mail_service_id)
        .await?
        .ok_or_else(not_found)?;
    Ok((address, service))
}

/// Accepts an invitation for `caller`: checks it, moves it to accepted exactly once and
/// gives the access, in one transaction.
async fn accept(
    state: &AppState,
    caller: &Caller,
    invitation: invitation::Model,
) -> ApiResult<MyAddressResponse> {
    let now = state.clock.now();
    let (address, service) = address_and_service(state, &invitation).await?;
    if current_status(&invitation, now) != InvitationStatus::Pending {
        return Err(not_pending(&invitation, now));
    }
    if invitation.account_binding == AccountBinding::ThisAddress
        && !(caller.login == address.address && caller.login_verified)
    {
        return Err(ApiError::new(
            ErrorCode::InvitationBindingMismatch,
            format!(
                "this invitation must be accepted by an account whose verified login is {}",
                address.address
            ),
        ));
    }
    let uow = UnitOfWork::begin(state).await?;
    ensure_shareable(uow.tx(), &address, Some(caller.account_id)).await?;
    // An invitation never changes an existing access: its permissions may have been
    // narrowed since the invitation was sent.
    if repo::sharing::find_access(uow.tx(), address.id, caller.account_id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            ErrorCode::AccessAlreadyExists,
            format!("you already have an access to {}", address.address),
        ));
    }
    let now = uow.now();
    if !repo::sharing::answer_invitation(
        uow.tx(),
        invitation.id,
        InvitationStatus::Accepted,
        Some(caller.account_id),
        now,
    )
    .await?
    {
        let again = repo::sharing::find_invitation(uow.tx(), invitation.id)
            .await?
            .ok_or_else(|| ApiError::not_found("invitation"))?;
        return Err(not_pending(&again, now));
    }
    repo::sharing::grant_access(
        uow.tx(),
        address.id,
        caller.account_id,
        invitation.permissions,
        AccessOrigin::Invitation,
        now,
    )
    .await?;
    uow.record(
        &caller.actor(),
        Scope::address(&service, &address),
        Change::InvitationAccepted {
            invitation_id: invitation.id,
            account_id: caller.account_id,
            login: caller.login.clone(),
        },
        &address.address,
    )
    .await?;
    uow.commit().await?;
    my_address(state, caller, address.id).await
}

/// Declines or revokes a pending invitation (exactly once).
async fn close(
    state: &AppState,
    invitation: invitation::Model,
    status: InvitationStatus,
    actor: &Actor,
) -> ApiResult<()> {
    let (address, service) = address_and_service(state, &invitation).await?;
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    if !repo::sharing::answer_invitation(uow.tx(), invitation.id, status, actor.account_id, now)
        .await?
    {
        let again = repo::sharing::find_invitation(uow.tx(), invitation.id)
            .await?
            .ok_or_else(|| ApiError::not_found("invitation"))?;
        return Err(not_pending(&again, now));
    }
    let change = match status {
        InvitationStatus::Declined => Change::InvitationDeclined {
            invitation_id: invitation.id,
        },
        _ => Change::InvitationRevoked {
            invitation_id: invitation.id,
        },
    };
    uow.record(
        actor,
        Scope::address(&service, &address),
        change,
        &address.address,
    )
    .await?;
    uow.commit().await
}

/// Accepts an invitation sent to the caller's account.
pub(crate) async fn accept_by_id(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<MyAddressResponse> {
    let (invitation, is_invitee, _) = visible(state, caller, id).await?;
    if !is_invitee {
        return Err(ApiError::forbidden("only the invited account may accept"));
    }
    accept(state, caller, invitation).await
}

/// Declines an invitation sent to the caller's account.
pub(crate) async fn decline_by_id(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let (invitation, is_invitee, _) = visible(state, caller, id).await?;
    if !is_invitee {
        return Err(ApiError::forbidden("only the invited account may decline"));
    }
    close(
        state,
        invitation,
        InvitationStatus::Declined,
        &caller.actor(),
    )
    .await
}

/// Revokes a pending invitation (owners and admins of the address's organization).
pub(crate) async fn revoke(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let (invitation, is_invitee, manages) = visible(state, caller, id).await?;
    if !manages {
        let hint = if is_invitee {
            "; decline it instead"
        } else {
            ""
        };
        return Err(ApiError::forbidden(format!(
            "only an owner or admin of the organization may revoke an invitation{hint}"
        )));
    }
    close(
        state,
        invitation,
        InvitationStatus::Revoked,
        &caller.actor(),
    )
    .await
}

/// Sends a pending invitation again (owners and admins): an e-mailed one gets a new link,
/// so the previous one stops working, and every one a new expiry. Counted like a new
/// invitation to that recipient (`outreach`), so resending cannot mail-bomb.
pub(crate) async fn resend(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<InvitationResponse> {
    let (invitation, is_invitee, manages) = visible(state, caller, id).await?;
    if !manages {
        let hint = if is_invitee {
            "; accept or decline it"
        } else {
            ""
        };
        return Err(ApiError::forbidden(format!(
            "only an owner or admin of the organization may resend an invitation{hint}"
        )));
    }
    let not_found = || ApiError::not_found("invitation");
    let (address, service) = address_and_service(state, &invitation).await?;
    let recipient = match (invitation.invitee_account_id, &invitation.invitee_email) {
        (Some(account_id), _) => {
            repo::accounts::find(&state.db, account_id)
                .await?
                .ok_or_else(not_found)?
                .login
        }
        (None, Some(email)) => email.clone(),
        (None, None) => return Err(ApiError::internal("an invitation without an invitee")),
    };
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let ttl = state.config.invitation_ttl();
    let expires_at = now + ttl;
    let secret = invitation.token_hash.is_some().then(token::generate);
    let renewed = repo::sharing::renew_invitation(
        uow.tx(),
        invitation.id,
        secret.as_deref().map(token::hash),
        expires_at,
        now,
    )
    .await?;
    if !renewed {
        return Err(not_pending(&invitation, now));
    }
    outreach::count(&uow, service.organization_id, &[recipient.as_str()]).await?;
    let (subject, body) = invitation_email(
        state,
        &address,
        caller,
        invitation.permissions,
        invitation.account_binding,
        secret.as_deref(),
        expires_at,
    );
    send_invitation(
        &mut uow,
        service.organization_id,
        &recipient,
        (&subject, &body),
        secret.as_deref(),
    )
    .await?;
    uow.record(
        &caller.actor(),
        Scope::address(&service, &address),
        Change::InvitationResent {
            invitation_id: invitation.id,
            expires_at,
        },
        &address.address,
    )
    .await?;
    uow.commit().await?;
    let renewed = repo::sharing::find_invitation(&state.db, invitation.id)
        .await?
        .ok_or_else(not_found)?;
    InvitationResponse::load(state, renewed).await
}

/// The invitation an e-mailed token designates (404 for anything else).
async fn by_token(state: &AppState, presented: &str) -> ApiResult<invitation::Model> {
    let unknown = || ApiError::not_found("invitation");
    if !token::looks_valid(presented) {
        return Err(unknown());
    }
    let invitation =
        repo::sharing::find_invitation_by_token_hash(&state.db, &token::hash(presented))
            .await?
            .ok_or_else(unknown)?;
    let stored = invitation.token_hash.clone().unwrap_or_default();
    if !token::matches(presented, &stored) {
        return Err(unknown());
    }
    Ok(invitation)
}

/// What an e-mailed invitation offers, for a page to show before its holder answers.
pub(crate) struct InvitationPreview {
    pub address: String,
    pub permissions: PermissionSet,
    pub account_binding: AccountBinding,
    pub expires_at: DateTime<Utc>,
}

/// The pending invitation an e-mailed token designates (404 unknown, 409 answered or
/// revoked, 410 expired). Reads only.
pub(crate) async fn preview_by_token(
    state: &AppState,
    presented: &str,
) -> ApiResult<InvitationPreview> {
    let invitation = by_token(state, presented).await?;
    let now = state.clock.now();
    if current_status(&invitation, now) != InvitationStatus::Pending {
        return Err(not_pending(&invitation, now));
    }
    let (address, _) = address_and_service(state, &invitation).await?;
    Ok(InvitationPreview {
        address: address.address,
        permissions: invitation.permissions,
        account_binding: invitation.account_binding,
        expires_at: invitation.expires_at,
    })
}

/// Accepts an e-mailed invitation with its token (any account; with `this_address`, the
/// account whose login is the address).
pub(crate) async fn accept_by_token(
    state: &AppState,
    caller: &Caller,
    presented: &str,
) -> ApiResult<MyAddressResponse> {
    let invitation = by_token(state, presented).await?;
    accept(state, caller, invitation).await
}

/// Declines an e-mailed invitation with its token: the token is the proof of receipt, no
/// account is needed.
pub(crate) async fn decline_by_token(
    state: &AppState,
    presented: &str,
    ip: Option<String>,
) -> ApiResult<()> {
    let invitation = by_token(state, presented).await?;
    let actor = Actor {
        account_id: None,
        ip,
    };
    close(state, invitation, InvitationStatus::Declined, &actor).await
}
