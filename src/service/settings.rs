//! Address settings (docs/resources.md "Address settings"): forwarding targets, which receive
//! nothing until they confirm by the e-mailed link, within the pack's number per address
//! (counted under the service lock); and the auto-reply.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{token, Caller};
use crate::domain::{AddressKind, EmailAddress, Permission, Secret};
use crate::entity::{address, auto_reply, forward, mail_service};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::etag::IfMatch;
use crate::repo::{self, events::Actor, events::Scope};
use crate::service::audit::Change;
use crate::service::authz::{self, Need};
use crate::service::{links, outreach, UnitOfWork};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ForwardResponse {
    pub id: Uuid,
    pub target: String,
    /// Keep a copy in the mailbox; `false` deletes after forwarding.
    pub keep_copy: bool,
    /// Mail flows to the target only once it confirmed.
    pub confirmed: bool,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<forward::Model> for ForwardResponse {
    fn from(f: forward::Model) -> Self {
        Self {
            id: f.id,
            target: f.target,
            keep_copy: f.keep_copy,
            confirmed: f.confirmed_at.is_some(),
            confirmed_at: f.confirmed_at,
            created_at: f.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AutoReplyResponse {
    pub enabled: bool,
    pub subject: String,
    pub body: String,
    /// Answers only from then on, when set.
    pub starts_at: Option<DateTime<Utc>>,
    /// Answers only until then, when set.
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether it answers right now (enabled and within its period).
    pub active_now: bool,
    /// What to know (the catchall's auto-reply never answers non-existent addresses).
    pub warnings: Vec<String>,
}

fn auto_reply_view(
    reply: Option<auto_reply::Model>,
    kind: AddressKind,
    now: DateTime<Utc>,
) -> AutoReplyResponse {
    let warnings = if kind == AddressKind::Catchall {
        vec!["An auto-reply on the catchall never answers messages sent to non-existent addresses of the domain.".to_string()]
    } else {
        Vec::new()
    };
    match reply {
        Some(r) => AutoReplyResponse {
            active_now: r.enabled
                && r.starts_at.is_none_or(|s| s <= now)
                && r.ends_at.is_none_or(|e| now < e),
            enabled: r.enabled,
            subject: r.subject,
            body: r.body,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            warnings,
        },
        None => AutoReplyResponse {
            enabled: false,
            subject: String::new(),
            body: String::new(),
            starts_at: None,
            ends_at: None,
            active_now: false,
            warnings,
        },
    }
}

/// The address whose auto-reply changes, locked in `uow` (404 once gone): every write of
/// one address's auto-reply serialises on its row (the auto-reply row may not exist yet),
/// so that a precondition checked here still holds when the change commits.
async fn lock_address(uow: &UnitOfWork<'_>, address_id: Uuid) -> ApiResult<address::Model> {
    repo::addresses::find_for_update(uow.tx(), address_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))
}

async fn forward_view(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    forward_id: Uuid,
) -> ApiResult<ForwardResponse> {
    repo::addresses::find_forward(conn, address_id, forward_id)
        .await?
        .map(ForwardResponse::from)
        .ok_or_else(|| ApiError::not_found("forwarding target"))
}

/// One forwarding target (needs `manage_redirections`).
pub(crate) async fn forward(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    forward_id: Uuid,
) -> ApiResult<ForwardResponse> {
    let need = Need::Permission(Permission::ManageRedirections);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    forward_view(&state.db, ctx.address.id, forward_id).await
}

/// The auto-reply of an address (needs `manage_auto_reply`); disabled when none was set.
pub(crate) async fn auto_reply(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
) -> ApiResult<AutoReplyResponse> {
    let need = Need::Permission(Permission::ManageAutoReply);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let reply = repo::addresses::find_auto_reply(&state.db, ctx.address.id).await?;
    Ok(auto_reply_view(reply, ctx.address.kind, state.clock.now()))
}

/// Checks the precondition of a change to the auto-reply against it as it is in `uow`,
/// once the address is locked.
async fn auto_reply_checked(
    uow: &UnitOfWork<'_>,
    address: &address::Model,
    if_match: &IfMatch,
) -> ApiResult<()> {
    lock_address(uow, address.id).await?;
    if_match
        .check(|| async {
            let reply = repo::addresses::find_auto_reply(uow.tx(), address.id).await?;
            Ok(auto_reply_view(reply, address.kind, uow.now()))
        })
        .await
}

/// Adds an unconfirmed target and queues its confirmation e-mail, in the caller's unit of
/// work (the forwards endpoint, or an import's redirect column). Call under the service
/// lock: the pack's number of targets is counted here; the caller counts the e-mail first
/// (`outreach::count`, once for all the targets of its unit of work).
pub(crate) async fn request_forward(
    uow: &mut UnitOfWork<'_>,
    address: &address::Model,
    service: &mail_service::Model,
    (target, keep_copy): (&EmailAddress, bool),
    actor: &Actor,
) -> ApiResult<forward::Model> {
    if target.as_str() == address.address {
        return Err(ApiError::invalid_field(
            "target",
            "cannot be the address itself",
        ));
    }
    let pack = service.pack;
    let limit = u64::from(pack.limits(0).forwards_per_address);
    if repo::addresses::count_forwards(uow.tx(), address.id).await? >= limit {
        return Err(ApiError::conflict(
            ErrorCode::ForwardLimitReached,
            format!("the {pack} pack allows {limit} forwarding targets per address"),
        ));
    }
    let secret = token::generate();
    let created = repo::addresses::add_forward(
        uow.tx(),
        address.id,
        target.as_str(),
        keep_copy,
        &token::hash(&secret),
        uow.now(),
    )
    .await
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            ApiError::conflict(
                ErrorCode::ForwardAlreadyExists,
                format!("{} forwards to {target} already", address.address),
            )
        } else {
            e.into()
        }
    })?;
    let subject = format!("Confirm forwarding from {}", address.address);
    let text = |link: &str| {
        format!(
            "Hello,\n\nMail sent to {} is to be forwarded to you ({target}).\n\nNothing is forwarded until you confirm by opening:\n\n  {link}\n\nIf you did not expect this, ignore this message.\n",
            address.address,
        )
    };
    let link = links::confirm_forward(uow.state(), &secret);
    // The link is the target's consent: the owners reading the outbox never see it.
    uow.send_consent_mail(
        Some(service.organization_id),
        target.as_str(),
        &subject,
        (&text(&link), &secret),
    )
    .await?;
    uow.record(
        actor,
        Scope::address(service, address),
        Change::ForwardCreated {
            forward_id: created.id,
            target: target.to_string(),
            keep_copy,
        },
        &address.address,
    )
    .await?;
    Ok(created)
}

/// Adds a forwarding target (needs `manage_redirections`).
pub(crate) async fn add_forward(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    target: &EmailAddress,
    keep_copy: bool,
) -> ApiResult<forward::Model> {
    let need = Need::Permission(Permission::ManageRedirections);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let mut uow = UnitOfWork::begin(state).await?;
    // The pack's forward limit is counted under the service lock, like pack changes.
    let service = repo::mail_services::lock(uow.tx(), ctx.service.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    outreach::count(&uow, service.organization_id, &[target.as_str()]).await?;
    let created = request_forward(
        &mut uow,
        &ctx.address,
        &service,
        (target, keep_copy),
        &caller.actor(),
    )
    .await?;
    uow.commit().await?;
    Ok(created)
}

/// Keeps a copy in the mailbox or not (needs `manage_redirections`).
pub(crate) async fn set_keep_copy(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    forward_id: Uuid,
    keep_copy: bool,
    if_match: &IfMatch,
) -> ApiResult<ForwardResponse> {
    let need = Need::Permission(Permission::ManageRedirections);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let uow = UnitOfWork::begin(state).await?;
    let found = forward_checked(&uow, address_id, forward_id, if_match).await?;
    repo::addresses::set_forward_keep_copy(uow.tx(), forward_id, keep_copy).await?;
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::ForwardUpdated {
            forward_id,
            target: found.target,
            keep_copy,
        },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await?;
    forward_view(&state.db, address_id, forward_id).await
}

/// The forward to be changed, locked in `uow`, with the precondition checked against its
/// view.
async fn forward_checked(
    uow: &UnitOfWork<'_>,
    address_id: Uuid,
    forward_id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<forward::Model> {
    // The forward's own row: the target's confirmation or refusal writes it without the
    // address lock, and must not slip between this check and the change.
    let which = Condition::all()
        .add(forward::Column::Id.eq(forward_id))
        .add(forward::Column::AddressId.eq(address_id));
    let found = repo::find_locked::<forward::Entity>(uow.tx(), forward::Column::Id, which)
        .await?
        .ok_or_else(|| ApiError::not_found("forwarding target"))?;
    if_match
        .check(|| async { Ok(ForwardResponse::from(found.clone())) })
        .await?;
    Ok(found)
}

/// Removes a forwarding target (needs `manage_redirections`).
pub(crate) async fn remove_forward(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    forward_id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<()> {
    let need = Need::Permission(Permission::ManageRedirections);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let uow = UnitOfWork::begin(state).await?;
    let found = forward_checked(&uow, address_id, forward_id, if_match).await?;
    repo::addresses::delete_forward(uow.tx(), forward_id).await?;
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::ForwardDeleted {
            forward_id,
            target: found.target,
        },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await
}

/// What a target's confirmation confirmed.
pub(crate) struct ConfirmedForward {
    pub address: String,
    pub target: String,
    pub confirmed_at: chrono::DateTime<chrono::Utc>,
}

/// A pending forward as its e-mailed token designates it, with its address and service.
pub(crate) struct PendingForward {
    pub forward: forward::Model,
    pub address: address::Model,
    service: mail_service::Model,
    hash: String,
}

/// The unconfirmed forward a target's token designates (404 for anything else). Reads only:
/// pages show it before the target chooses.
pub(crate) async fn pending_forward(
    state: &AppState,
    presented: &Secret,
) -> ApiResult<PendingForward> {
    let unknown = || ApiError::not_found("forwarding confirmation");
    if !token::looks_valid(presented.expose()) {
        return Err(unknown());
    }
    let hash = token::hash(presented.expose());
    let found = repo::addresses::find_forward_by_token_hash(&state.db, &hash)
        .await?
        .ok_or_else(unknown)?;
    let address = repo::addresses::find(&state.db, found.address_id)
        .await?
        .ok_or_else(unknown)?;
    let service = repo::mail_services::find(&state.db, address.mail_service_id)
        .await?
        .ok_or_else(unknown)?;
    Ok(PendingForward {
        forward: found,
        address,
        service,
        hash,
    })
}

/// Confirms a target with the token e-mailed to it (no account needed; single use).
pub(crate) async fn confirm_forward(
    state: &AppState,
    presented: &Secret,
    ip: Option<String>,
) -> ApiResult<ConfirmedForward> {
    let unknown = || ApiError::not_found("forwarding confirmation");
    let PendingForward {
        forward: found,
        address,
        service,
        hash,
    } = pending_forward(state, presented).await?;
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    if !repo::addresses::confirm_forward(uow.tx(), found.id, &hash, now).await? {
        return Err(unknown());
    }
    let actor = Actor {
        account_id: None,
        ip,
    };
    uow.record(
        &actor,
        Scope::address(&service, &address),
        Change::ForwardConfirmed {
            forward_id: found.id,
            target: found.target.clone(),
        },
        &address.address,
    )
    .await?;
    uow.commit().await?;
    Ok(ConfirmedForward {
        address: address.address,
        target: found.target,
        confirmed_at: now,
    })
}

/// The target refuses with the token e-mailed to it (no account needed): the unconfirmed
/// forward is removed, so the address's users see it gone rather than pending forever.
pub(crate) async fn refuse_forward(
    state: &AppState,
    presented: &Secret,
    ip: Option<String>,
) -> ApiResult<PendingForward> {
    let pending = pending_forward(state, presented).await?;
    let uow = UnitOfWork::begin(state).await?;
    if !repo::addresses::refuse_forward(uow.tx(), pending.forward.id, &pending.hash).await? {
        return Err(ApiError::not_found("forwarding confirmation"));
    }
    let actor = Actor {
        account_id: None,
        ip,
    };
    uow.record(
        &actor,
        Scope::address(&pending.service, &pending.address),
        Change::ForwardRefused {
            forward_id: pending.forward.id,
            target: pending.forward.target.clone(),
        },
        &pending.address.address,
    )
    .await?;
    uow.commit().await?;
    Ok(pending)
}

/// An auto-reply as its user sets it.
pub(crate) struct AutoReply {
    pub enabled: bool,
    pub subject: String,
    pub body: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// Saves the auto-reply (needs `manage_auto_reply`; `starts_at` before `ends_at`).
pub(crate) async fn save_auto_reply(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    reply: AutoReply,
    if_match: &IfMatch,
) -> ApiResult<AutoReplyResponse> {
    let need = Need::Permission(Permission::ManageAutoReply);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    if let (Some(start), Some(end)) = (reply.starts_at, reply.ends_at) {
        if end <= start {
            return Err(ApiError::invalid_field(
                "ends_at",
                "must be after starts_at",
            ));
        }
    }
    let uow = UnitOfWork::begin(state).await?;
    auto_reply_checked(&uow, &ctx.address, if_match).await?;
    let saved = auto_reply::Model {
        address_id: ctx.address.id,
        enabled: reply.enabled,
        subject: reply.subject.trim().to_string(),
        body: reply.body,
        // Microseconds, as the database keeps them: the answer is then the next GET's.
        starts_at: reply.starts_at.map(|t| t.trunc_subsecs(6)),
        ends_at: reply.ends_at.map(|t| t.trunc_subsecs(6)),
        updated_at: uow.now(),
    };
    repo::addresses::save_auto_reply(uow.tx(), saved.clone()).await?;
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::AutoReplySaved {
            enabled: saved.enabled,
            starts_at: saved.starts_at,
            ends_at: saved.ends_at,
        },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await?;
    let now = saved.updated_at;
    Ok(auto_reply_view(Some(saved), ctx.address.kind, now))
}

/// Removes the auto-reply (needs `manage_auto_reply`).
pub(crate) async fn delete_auto_reply(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<()> {
    let need = Need::Permission(Permission::ManageAutoReply);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let uow = UnitOfWork::begin(state).await?;
    auto_reply_checked(&uow, &ctx.address, if_match).await?;
    if repo::addresses::delete_auto_reply(uow.tx(), ctx.address.id).await? {
        uow.record(
            &caller.actor(),
            ctx.scope(),
            Change::AutoReplyDeleted,
            &ctx.address.address,
        )
        .await?;
    }
    uow.commit().await
}
