//! Deleting an account: a recent proof (with two-factor login on, a proof includes the
//! code: a login or a step-up needs it) and the login typed as confirmation. Refused while
//! the account is the last owner of an organization that still holds a mail service. In one
//! transaction: the organizations it owns alone (holding no service) are deleted, it leaves
//! the others, its accesses, sessions, tokens and second factors go; its audit events stay,
//! keeping its id as their actor (`actor_deleted` says it is gone; docs/decisions.md).

use crate::auth::Caller;
use crate::domain::Role;
use crate::entity::{address, organization};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::etag::IfMatch;
use crate::repo::{self, events::Scope};
use crate::service::accounts::{own_account_checked, unified_addresses};
use crate::service::audit::Change;
use crate::service::{dangerous, UnitOfWork};
use crate::state::AppState;

const PAGE: u64 = 500;

/// Deletes the caller's account (`?confirm=` its login).
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    confirm: Option<&str>,
    if_match: &IfMatch,
) -> ApiResult<()> {
    dangerous::recent_proof(state, caller)?;
    dangerous::confirmation(confirm, &caller.login)?;
    let mut uow = UnitOfWork::begin(state).await?;
    let account = own_account_checked(&uow, caller, if_match).await?;
    let actor = caller.actor();
    let mut owned_alone: Vec<organization::Model> = Vec::new();
    let mut left: Vec<(organization::Model, Role)> = Vec::new();
    let mut blocking: Vec<String> = Vec::new();
    for (org, role) in repo::organizations::all_for_account(uow.tx(), account.id).await? {
        repo::organizations::lock(uow.tx(), org.id).await?;
        let last_owner =
            role == Role::Owner && repo::organizations::count_owners(uow.tx(), org.id).await? <= 1;
        if !last_owner {
            left.push((org, role));
        } else if repo::mail_services::list_for_organization(uow.tx(), org.id, None, 1)
            .await?
            .is_empty()
        {
            owned_alone.push(org);
        } else {
            blocking.push(org.name);
        }
    }
    if !blocking.is_empty() {
        return Err(ApiError::conflict(
            ErrorCode::OrganizationLastOwner,
            format!(
                "the account is the last owner of {}, which still hold(s) a mail service: make another member owner, or delete the mail services, first",
                blocking.join(", ")
            ),
        ));
    }
    let accesses = accesses_of(&uow, account.id).await?;
    // Recorded first, while the account still reads its own log.
    uow.record_for_account(
        &actor,
        account.id,
        Change::AccountDeleted {
            organizations_deleted: owned_alone.len(),
            organizations_left: left.len(),
            accesses_removed: accesses.len(),
        },
        &account.login,
    )
    .await?;
    for address in &accesses {
        let service = repo::mail_services::find(uow.tx(), address.mail_service_id)
            .await?
            .ok_or_else(|| ApiError::internal("an address without its mail service"))?;
        uow.record(
            &actor,
            Scope::address(&service, address),
            Change::AccessRemoved {
                account_id: account.id,
            },
            &address.address,
        )
        .await?;
    }
    // Unification needs the account: its unified addresses keep their password, alone.
    for address in unified_addresses(uow.tx(), &account.login).await? {
        repo::addresses::set_unified(uow.tx(), address.id, false).await?;
    }
    for (org, role) in &left {
        repo::organizations::remove_member(uow.tx(), org.id, account.id).await?;
        uow.record(
            &actor,
            Scope::organization(org.id),
            Change::MemberLeft {
                account_id: account.id,
                role: *role,
            },
            &account.login,
        )
        .await?;
    }
    for org in &owned_alone {
        uow.record(
            &actor,
            Scope::organization(org.id),
            Change::OrganizationDeleted {
                reason: "last_owner_deleted",
            },
            &org.id.to_string(),
        )
        .await?;
        repo::organizations::delete(uow.tx(), org.id).await?;
    }
    // Its sessions go with the account (foreign keys); this ends them in the session cache
    // too.
    uow.revoke_sessions_of(account.id, None, "account_deleted")
        .await?;
    repo::accounts::delete(uow.tx(), account.id).await?;
    let body = format!(
        "Hello,\n\nThe account {} was deleted, with its sessions and its accesses to mail addresses. Mail addresses themselves stay with the organizations that host them.\n\nIf you did not do this, contact your provider's support.\n",
        account.login
    );
    uow.send_mail(None, &account.login, "Your account was deleted", &body)
        .await?;
    uow.commit().await
}

/// Every address the account has an access to.
async fn accesses_of(
    uow: &UnitOfWork<'_>,
    account_id: uuid::Uuid,
) -> ApiResult<Vec<address::Model>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page =
            repo::addresses::list_for_account(uow.tx(), account_id, None, after.as_deref(), PAGE)
                .await?;
        let full = page.len() as u64 == PAGE;
        after = page.last().map(|(a, _)| a.address.clone());
        all.extend(page.into_iter().map(|(a, _)| a));
        if !full {
            return Ok(all);
        }
    }
}
