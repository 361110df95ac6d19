//! Joining an organization needs the invitee's consent. Adding a member by login sends a
//! member invitation: always e-mailed to the login with a single-use link, and listed in
//! `GET /v1/me/member-invitations` of the account whose *verified* login it is. The answer
//! is the same whether or not an account has the login (no enumeration). Owners and admins
//! list and revoke them; the invitee accepts (becoming a member with the invited role) or
//! declines, by id from its account, or accepts with the e-mailed token from any account:
//! the token proves receipt of the e-mail, and its holder chooses which of its accounts
//! joins (docs/decisions.md "Consent to join").

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{token, Caller};
use crate::domain::{EmailAddress, InvitationStatus, Role};
use crate::entity::member_invitation;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Actor, events::Scope, member_invitations::NewMemberInvitation};
use crate::service::audit::Change;
use crate::service::{authz, links, outreach, UnitOfWork};
use crate::state::AppState;

/// An invitation to join an organization. The same shape whether or not an account has the
/// login.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberInvitationResponse {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub organization_name: String,
    /// The login it was sent to.
    pub login: String,
    /// The role the invitee gets by accepting.
    pub role: Role,
    pub status: InvitationStatus,
    pub expires_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl MemberInvitationResponse {
    pub(crate) async fn load(state: &AppState, m: member_invitation::Model) -> ApiResult<Self> {
        let organization_name = repo::organizations::find(&state.db, m.organization_id)
            .await?
            .map(|o| o.name)
            .unwrap_or_default();
        let status = current_status(&m, state.clock.now());
        Ok(Self {
            id: m.id,
            organization_id: m.organization_id,
            organization_name,
            login: m.login,
            role: m.role,
            status,
            expires_at: m.expires_at,
            created_by: m.created_by,
            created_at: m.created_at,
            answered_at: m.answered_at,
        })
    }

    /// The views of a list's rows, in order.
    pub(crate) async fn load_all(
        state: &AppState,
        rows: Vec<member_invitation::Model>,
    ) -> ApiResult<Vec<Self>> {
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(Self::load(state, row).await?);
        }
        Ok(items)
    }
}

/// The status now (`pending` past its expiry reads `expired`).
fn current_status(m: &member_invitation::Model, now: DateTime<Utc>) -> InvitationStatus {
    if m.status == InvitationStatus::Pending && m.expires_at <= now {
        InvitationStatus::Expired
    } else {
        m.status
    }
}

fn not_pending(m: &member_invitation::Model, now: DateTime<Utc>) -> ApiError {
    match current_status(m, now) {
        InvitationStatus::Expired => ApiError::new(
            ErrorCode::InvitationExpired,
            format!(
                "the invitation expired on {}",
                m.expires_at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        status => ApiError::conflict(
            ErrorCode::InvitationNotPending,
            format!("the invitation is {}", status.as_str()),
        ),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("member invitation")
}

/// Invites `login` to join the organization with `role` (owners and admins; only owners
/// invite owners).
pub(crate) async fn invite(
    state: &AppState,
    caller: &Caller,
    org_id: Uuid,
    login: &EmailAddress,
    role: Role,
) -> ApiResult<MemberInvitationResponse> {
    let caller_role = authz::manager(&state.db, caller, org_id).await?;
    if role == Role::Owner && caller_role != Role::Owner {
        return Err(ApiError::forbidden("only owners may invite owners"));
    }
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    repo::organizations::lock(uow.tx(), org_id).await?;
    let org = repo::organizations::find(uow.tx(), org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    // Members are listed to every member: saying so reveals nothing more.
    if repo::organizations::has_member_with_login(uow.tx(), org_id, login.as_str()).await? {
        return Err(ApiError::conflict(
            ErrorCode::MemberAlreadyExists,
            format!("{login} is already a member"),
        ));
    }
    if repo::member_invitations::has_pending(uow.tx(), org_id, login.as_str(), now).await? {
        return Err(ApiError::conflict(
            ErrorCode::InvitationAlreadyPending,
            format!("an invitation to {login} is pending already; revoke it to send another"),
        ));
    }
    outreach::count(&uow, org_id, &[login.as_str()]).await?;
    let ttl = state.config.invitation_ttl();
    let secret = token::generate();
    let created = repo::member_invitations::insert(
        uow.tx(),
        NewMemberInvitation {
            organization_id: org_id,
            login: login.as_str(),
            role,
            token_hash: token::hash(&secret),
            expires_at: now + ttl,
            created_by: caller.account_id,
        },
        now,
    )
    .await?;
    let body = format!(
        "Hello,\n\n{inviter} invites you to join the organization {org} as {role}.\n\nTo accept, open:\n\n  {link}\n\nand log in with the account that should join (sign up first if you have none). If {login} is the verified login of your account, the invitation also waits in your invitations, where you can decline it.\n\nThis invitation expires on {until}. Not interested? Ignore this message: nothing happens without you.\n",
        inviter = caller.login,
        org = org.name,
        link = links::accept_member_invitation(state, &secret),
        until = created.expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    let subject = format!("{} invites you to join {}", caller.login, org.name);
    uow.send_link_mail(Some(org_id), login.as_str(), &subject, (&body, &secret))
        .await?;
    uow.record(
        &caller.actor(),
        Scope::organization(org_id),
        Change::MemberInvitationCreated {
            member_invitation_id: created.id,
            login: login.to_string(),
            role,
        },
        login.as_str(),
    )
    .await?;
    uow.commit().await?;
    MemberInvitationResponse::load(state, created).await
}

/// The invitation as its invitee sees it: sent to the caller's verified login (404
/// otherwise).
async fn addressed_to(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<member_invitation::Model> {
    let invitation = repo::member_invitations::find(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    if !(caller.login_verified && invitation.login == caller.login) {
        return Err(not_found());
    }
    Ok(invitation)
}

/// Accepts for `caller`: it becomes a member with the invited role, exactly once.
async fn accept(
    state: &AppState,
    caller: &Caller,
    invitation: member_invitation::Model,
) -> ApiResult<MemberInvitationResponse> {
    let now = state.clock.now();
    if current_status(&invitation, now) != InvitationStatus::Pending {
        return Err(not_pending(&invitation, now));
    }
    let org_id = invitation.organization_id;
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    repo::organizations::lock(uow.tx(), org_id).await?;
    if repo::organizations::role_of(uow.tx(), org_id, caller.account_id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            ErrorCode::MemberAlreadyExists,
            "you are a member of this organization already",
        ));
    }
    if !repo::member_invitations::answer(
        uow.tx(),
        invitation.id,
        InvitationStatus::Accepted,
        Some(caller.account_id),
        now,
    )
    .await?
    {
        let again = repo::member_invitations::find(uow.tx(), invitation.id)
            .await?
            .ok_or_else(not_found)?;
        return Err(not_pending(&again, now));
    }
    repo::organizations::add_member(uow.tx(), org_id, caller.account_id, invitation.role, now)
        .await?;
    let actor = caller.actor();
    let scope = Scope::organization(org_id);
    uow.record(
        &actor,
        scope,
        Change::MemberInvitationAccepted {
            member_invitation_id: invitation.id,
            account_id: caller.account_id,
            login: caller.login.clone(),
        },
        &invitation.login,
    )
    .await?;
    uow.record(
        &actor,
        scope,
        Change::MemberAdded {
            account_id: caller.account_id,
            role: invitation.role,
        },
        &caller.login,
    )
    .await?;
    uow.commit().await?;
    let answered = repo::member_invitations::find(&state.db, invitation.id)
        .await?
        .ok_or_else(not_found)?;
    MemberInvitationResponse::load(state, answered).await
}

/// Declines or revokes a pending invitation, exactly once.
async fn close(
    state: &AppState,
    invitation: member_invitation::Model,
    status: InvitationStatus,
    actor: &Actor,
) -> ApiResult<()> {
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    if !repo::member_invitations::answer(uow.tx(), invitation.id, status, actor.account_id, now)
        .await?
    {
        let again = repo::member_invitations::find(uow.tx(), invitation.id)
            .await?
            .ok_or_else(not_found)?;
        return Err(not_pending(&again, now));
    }
    let member_invitation_id = invitation.id;
    let change = match status {
        InvitationStatus::Declined => Change::MemberInvitationDeclined {
            member_invitation_id,
        },
        _ => Change::MemberInvitationRevoked {
            member_invitation_id,
        },
    };
    uow.record(
        actor,
        Scope::organization(invitation.organization_id),
        change,
        &invitation.login,
    )
    .await?;
    uow.commit().await
}

/// Accepts an invitation sent to the caller's verified login.
pub(crate) async fn accept_by_id(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<MemberInvitationResponse> {
    let invitation = addressed_to(state, caller, id).await?;
    accept(state, caller, invitation).await
}

/// Declines an invitation sent to the caller's verified login.
pub(crate) async fn decline_by_id(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let invitation = addressed_to(state, caller, id).await?;
    close(
        state,
        invitation,
        InvitationStatus::Declined,
        &caller.actor(),
    )
    .await
}

/// The invitation an e-mailed token designates (404 for anything else).
async fn by_token(state: &AppState, presented: &str) -> ApiResult<member_invitation::Model> {
    if !token::looks_valid(presented) {
        return Err(not_found());
    }
    repo::member_invitations::find_by_token_hash(&state.db, &token::hash(presented))
        .await?
        .filter(|i| token::matches(presented, &i.token_hash))
        .ok_or_else(not_found)
}

/// The pending invitation an e-mailed token designates, for a page to show before its
/// holder logs in (404 unknown, 409 answered or revoked, 410 expired). Reads only.
pub(crate) async fn preview_by_token(
    state: &AppState,
    presented: &str,
) -> ApiResult<MemberInvitationResponse> {
    let invitation = by_token(state, presented).await?;
    let now = state.clock.now();
    if current_status(&invitation, now) != InvitationStatus::Pending {
        return Err(not_pending(&invitation, now));
    }
    MemberInvitationResponse::load(state, invitation).await
}

/// Accepts with the e-mailed token, from any account (404 for an unknown token).
pub(crate) async fn accept_by_token(
    state: &AppState,
    caller: &Caller,
    presented: &str,
) -> ApiResult<MemberInvitationResponse> {
    let invitation = by_token(state, presented).await?;
    accept(state, caller, invitation).await
}

/// Revokes a pending invitation (owners and admins of its organization).
pub(crate) async fn revoke(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let invitation = repo::member_invitations::find(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    authz::manager(&state.db, caller, invitation.organization_id)
        .await
        .map_err(|e| {
            if e.code == ErrorCode::NotFound {
                not_found()
            } else {
                e
            }
        })?;
    close(
        state,
        invitation,
        InvitationStatus::Revoked,
        &caller.actor(),
    )
    .await
}
