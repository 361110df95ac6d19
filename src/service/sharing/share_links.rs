//! Share links: a secret link with chosen permissions, an expiry and a number of uses,
//! redeemed by any authenticated account (one use per account, taken atomically with the
//! access given);
//! the token is shown once and stored only as its hash.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{token, Caller};
use crate::domain::{AccessOrigin, Permission, PermissionSet};
use crate::entity::{address, mail_service, share_link};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::etag::IfMatch;
use crate::repo::{self, events::Scope};
use crate::service::addresses::views::{my_address, MyAddressResponse};
use crate::service::audit::Change;
use crate::service::authz::{self, Need};
use crate::service::sharing::ensure_shareable;
use crate::service::{links, UnitOfWork};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShareLinkResponse {
    pub id: Uuid,
    pub address_id: Uuid,
    pub permissions: Vec<Permission>,
    pub expires_at: DateTime<Utc>,
    pub max_uses: i32,
    pub uses: i32,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
}

impl From<share_link::Model> for ShareLinkResponse {
    fn from(l: share_link::Model) -> Self {
        Self {
            id: l.id,
            address_id: l.address_id,
            permissions: l.permissions.to_vec(),
            expires_at: l.expires_at,
            max_uses: l.max_uses,
            uses: l.uses,
            revoked: l.revoked_at.is_some(),
            created_at: l.created_at,
        }
    }
}

/// A new link and its token (shown once).
pub(crate) struct CreatedLink {
    pub link: share_link::Model,
    pub token: String,
    pub url: String,
}

/// Creates a link to an address the caller manages (refused when the address is an
/// account's login).
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    permissions: PermissionSet,
    expires_in_hours: Option<i64>,
    max_uses: Option<i32>,
) -> ApiResult<CreatedLink> {
    let ctx = authz::address(&state.db, caller, address_id, Need::Manage).await?;
    ensure_shareable(&state.db, &ctx.address, None).await?;
    let secret = token::generate();
    let uow = UnitOfWork::begin(state).await?;
    let expires_at = uow.now() + Duration::hours(expires_in_hours.unwrap_or(72));
    let link = repo::sharing::insert_share_link(
        uow.tx(),
        repo::sharing::NewShareLink {
            address_id: ctx.address.id,
            token_hash: token::hash(&secret),
            permissions,
            expires_at,
            max_uses: max_uses.unwrap_or(1),
            created_by: caller.account_id,
        },
        uow.now(),
    )
    .await?;
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::ShareLinkCreated {
            share_link_id: link.id,
            permissions,
            expires_at,
            max_uses: link.max_uses,
        },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await?;
    let url = links::redeem_share_link(state, &secret);
    Ok(CreatedLink {
        link,
        token: secret,
        url,
    })
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

/// What a share link gives, for a page to show before its holder logs in.
pub(crate) struct ShareLinkPreview {
    pub address: String,
    pub permissions: PermissionSet,
}

/// The usable link a token designates, its address and service (404 unknown, 410 expired,
/// revoked or used up).
async fn usable_link(
    state: &AppState,
    presented: &str,
) -> ApiResult<(share_link::Model, address::Model, mail_service::Model)> {
    let unknown = || ApiError::not_found("share link");
    if !token::looks_valid(presented) {
        return Err(unknown());
    }
    let link = repo::sharing::find_share_link_by_token_hash(&state.db, &token::hash(presented))
        .await?
        .ok_or_else(unknown)?;
    if !token::matches(presented, &link.token_hash) {
        return Err(unknown());
    }
    if let Some(err) = link_unusable(&link, state.clock.now()) {
        return Err(err);
    }
    let address = repo::addresses::find(&state.db, link.address_id)
        .await?
        .ok_or_else(unknown)?;
    let service = repo::mail_services::find(&state.db, address.mail_service_id)
        .await?
        .ok_or_else(unknown)?;
    Ok((link, address, service))
}

/// The usable link a token designates. Reads only.
pub(crate) async fn preview(state: &AppState, presented: &str) -> ApiResult<ShareLinkPreview> {
    let (link, address, _) = usable_link(state, presented).await?;
    Ok(ShareLinkPreview {
        address: address.address,
        permissions: link.permissions,
    })
}

/// Redeems a share link for the caller: the access given and one use taken in one
/// transaction; an account that holds an access already (409) takes no use.
pub(crate) async fn redeem(
    state: &AppState,
    caller: &Caller,
    presented: &str,
) -> ApiResult<MyAddressResponse> {
    let unknown = || ApiError::not_found("share link");
    let (link, address, service) = usable_link(state, presented).await?;
    // The access and the use in one transaction, the access first: a second redemption by
    // the same account (even a parallel one) finds the access, answers 409 and rolls back
    // without taking a use; a link used up meanwhile rolls the access back.
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    ensure_shareable(uow.tx(), &address, Some(caller.account_id)).await?;
    if !repo::sharing::grant_access_if_absent(
        uow.tx(),
        address.id,
        caller.account_id,
        link.permissions,
        AccessOrigin::ShareLink,
        now,
    )
    .await?
    {
        return Err(ApiError::conflict(
            ErrorCode::AccessAlreadyExists,
            format!("you already have an access to {}", address.address),
        ));
    }
    if !repo::sharing::use_share_link(uow.tx(), link.id, now).await? {
        let again = repo::sharing::find_share_link(uow.tx(), link.id)
            .await?
            .ok_or_else(unknown)?;
        return Err(link_unusable(&again, now).unwrap_or_else(unknown));
    }
    uow.record(
        &caller.actor(),
        Scope::address(&service, &address),
        Change::ShareLinkRedeemed {
            share_link_id: link.id,
            account_id: caller.account_id,
            login: caller.login.clone(),
        },
        &address.address,
    )
    .await?;
    uow.commit().await?;
    my_address(state, caller, address.id).await
}

/// A link of an address the caller manages, with that address (404 when the caller does
/// not see the address, 403 when it sees it without managing it).
async fn managed(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<(share_link::Model, authz::AddressContext)> {
    let not_found = || ApiError::not_found("share link");
    let link = repo::sharing::find_share_link(conn, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = authz::visible_address(conn, caller, link.address_id)
        .await?
        .ok_or_else(not_found)?;
    if !ctx.manages() {
        return Err(ApiError::forbidden(
            "only owners and admins of the organization may do this",
        ));
    }
    Ok((link, ctx))
}

/// One link (owners and admins), never its token.
pub(crate) async fn find(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<ShareLinkResponse> {
    managed(&state.db, caller, id)
        .await
        .map(|(link, _)| link.into())
}

/// Revokes a link (owners and admins of the address's organization; 404 for anyone who
/// cannot see the address); revoking a revoked link changes nothing.
pub(crate) async fn revoke(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<()> {
    let (link, ctx) = managed(&state.db, caller, id).await?;
    let uow = UnitOfWork::begin(state).await?;
    let which = Condition::all().add(share_link::Column::Id.eq(link.id));
    let locked = repo::find_locked::<share_link::Entity>(uow.tx(), share_link::Column::Id, which)
        .await?
        .ok_or_else(|| ApiError::not_found("share link"))?;
    if_match
        .check(|| async { Ok(ShareLinkResponse::from(locked)) })
        .await?;
    if repo::sharing::revoke_share_link(uow.tx(), link.id, uow.now()).await? {
        uow.record(
            &caller.actor(),
            ctx.scope(),
            Change::ShareLinkRevoked {
                share_link_id: link.id,
            },
            &ctx.address.address,
        )
        .await?;
    }
    uow.commit().await
}
