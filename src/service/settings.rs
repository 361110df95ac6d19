//! Address settings (SPEC §4b): forwarding targets, which receive nothing until they confirm
//! by the e-mailed link, within the pack's number per address.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::auth::token;
use crate::domain::EmailAddress;
use crate::entity::{address, forward, mail_service};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Actor};
use crate::state::AppState;

/// Adds an unconfirmed target and queues its confirmation e-mail, in the caller's
/// transaction (address creation, import, or the forwards endpoint).
pub async fn request_forward(
    conn: &impl ConnectionTrait,
    state: &AppState,
    address: &address::Model,
    service: &mail_service::Model,
    (target, keep_copy): (&EmailAddress, bool),
    actor: &Actor,
    now: DateTime<Utc>,
) -> ApiResult<forward::Model> {
    if target.as_str() == address.address {
        return Err(ApiError::invalid_field(
            "target",
            "cannot be the address itself",
        ));
    }
    let pack = service.pack;
    let limit = u64::from(pack.limits(0).forwards_per_address);
    if repo::addresses::count_forwards(conn, address.id).await? >= limit {
        return Err(ApiError::conflict(
            ErrorCode::ForwardLimitReached,
            format!(
                "the {} pack allows {limit} forwarding targets per address",
                pack.as_str()
            ),
        ));
    }
    let secret = token::generate();
    let created = repo::addresses::add_forward(
        conn,
        address.id,
        target.as_str(),
        keep_copy,
        &token::hash(&secret),
        now,
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
    let body = format!(
        "Hello,\n\nMail sent to {} is to be forwarded to you ({target}).\n\nNothing is forwarded until you confirm by opening:\n\n  {}/forwards/confirm?token={secret}\n\nIf you did not expect this, ignore this message.\n",
        address.address,
        state.config.effective_public_url(),
    );
    crate::mailer::enqueue(
        conn,
        Some(service.organization_id),
        target.as_str(),
        &subject,
        &body,
        now,
    )
    .await?;
    repo::events::record(
        conn,
        now,
        actor,
        crate::service::sharing::scope_of(address, service),
        "forward.created",
        address.address.as_str(),
        Some(
            json!({ "forward_id": created.id, "target": target.as_str(), "keep_copy": keep_copy }),
        ),
    )
    .await?;
    Ok(created)
}
