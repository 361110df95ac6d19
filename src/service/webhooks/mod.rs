//! Webhook endpoints of an organization (owners and admins): creating one (its secret shown
//! once), changing, deleting, rotating its secret (the previous one keeps signing for a
//! grace period), and the views of endpoints, deliveries and attempts. Deliveries are queued
//! with the audit event (`queue`), sent by every instance's `worker`, and can be tried by
//! hand (`deliveries`: ping, redeliver). The wire side is `crate::webhooks`.

pub(crate) mod deliveries;
pub(crate) mod payload;
pub(crate) mod queue;
pub(crate) mod worker;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::Caller;
use crate::domain::{WebhookDisabledReason, WebhookSecret, WebhookUrl};
use crate::entity::webhook;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::etag::IfMatch;
use crate::repo::{self, events::Scope, webhooks::NewWebhook};
use crate::service::audit::{Change, ACTIONS};
use crate::service::authz;
use crate::service::UnitOfWork;
use crate::state::AppState;
use crate::webhooks::target::TargetPolicy;

/// Endpoints one organization may have: every event is queued once per endpoint.
pub(crate) const MAX_WEBHOOKS_PER_ORGANIZATION: u64 = 20;

/// How long resolving an endpoint's host may take when it is saved.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// An endpoint as its managers see it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookResponse {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    /// The audit actions it receives (`address.*`: every change of addresses); `null`: all.
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<WebhookDisabledReason>,
    /// Its first failed attempt since the last success.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhook::Model> for WebhookResponse {
    fn from(w: webhook::Model) -> Self {
        Self {
            id: w.id,
            organization_id: w.organization_id,
            url: w.url,
            description: w.description,
            event_types: event_types_of(w.event_types.as_ref()),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            failing_since: w.failing_since,
            previous_secret_expires_at: w.previous_secret_expires_at,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

fn event_types_of(stored: Option<&serde_json::Value>) -> Option<Vec<String>> {
    stored.map(|types| {
        types
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// A new endpoint, with its signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedWebhookResponse {
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// `whsec_` + base64 of the 256-bit HMAC key (Standard Webhooks); shown only here.
    pub secret: String,
}

/// A rotated secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RotatedSecretResponse {
    /// The new secret; deliveries are signed with it and, until
    /// `previous_secret_expires_at`, with the previous one too.
    pub secret: String,
    pub previous_secret_expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWebhookRequest {
    /// `https://` (plain `http` only for hosts of `POSTIER_WEBHOOK_ALLOW_HOSTS`); no
    /// loopback, private or link-local address unless allowed there.
    #[schema(value_type = String, max_length = 2000, example = "https://hooks.example.com/postier")]
    pub url: WebhookUrl,
    /// Audit actions to receive (`address.created`, or `address.*` for every change of a
    /// resource); every action when omitted or `null`.
    #[validate(length(min = 1, max = 100))]
    pub event_types: Option<Vec<String>>,
    #[validate(length(max = 500))]
    pub description: Option<String>,
}

/// Absent fields stay as they are; `null` for `event_types` means every action.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateWebhookRequest {
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub url: Option<WebhookUrl>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Option<Vec<String>>>,
    /// `true` also clears a failing streak; deliveries that waited are then sent.
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub description: Option<Option<String>>,
}

/// A field that is present, `null` included (absent stays `None` through `default`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Known action names, or `<resource>.*` for a resource that has some; duplicates dropped.
fn check_event_types(types: &[String]) -> ApiResult<Vec<String>> {
    if types.is_empty() || types.len() > 100 {
        return Err(ApiError::invalid_field(
            "event_types",
            "must list 1 to 100 event types (null for all)",
        ));
    }
    let known = |t: &str| {
        ACTIONS.contains(&t)
            || t.strip_suffix(".*").is_some_and(|resource| {
                ACTIONS
                    .iter()
                    .any(|a| a.strip_prefix(resource).is_some_and(|r| r.starts_with('.')))
            })
    };
    let errors: Vec<FieldError> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| !known(t))
        .map(|(i, t)| {
            FieldError::new(
                format!("event_types[{i}]"),
                format!("{t:?} is not an event type (the OpenAPI document's webhooks list them)"),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut unique: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !unique.contains(t) {
            unique.push(t.clone());
        }
    }
    Ok(unique)
}

fn check_description(description: Option<&str>) -> ApiResult<()> {
    if description.is_some_and(|d| d.chars().count() > 500) {
        return Err(ApiError::invalid_field(
            "description",
            "must be at most 500 characters",
        ));
    }
    Ok(())
}

/// The URL's scheme and every address its host resolves to, against the allow-list.
async fn check_target(state: &AppState, url: &WebhookUrl) -> ApiResult<()> {
    TargetPolicy::from_config(&state.config)
        .check_resolved(url.url(), RESOLVE_TIMEOUT)
        .await
        .map_err(|reason| ApiError::invalid_field("url", reason))
}

/// Endpoints of an organization, by id (owners and admins).
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    organization_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<webhook::Model>> {
    authz::manager(&state.db, caller, organization_id).await?;
    Ok(repo::webhooks::list(&state.db, organization_id, after, limit).await?)
}

pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    organization_id: Uuid,
    request: CreateWebhookRequest,
) -> ApiResult<CreatedWebhookResponse> {
    authz::manager(&state.db, caller, organization_id).await?;
    let event_types = request
        .event_types
        .as_deref()
        .map(check_event_types)
        .transpose()?;
    check_description(request.description.as_deref())?;
    check_target(state, &request.url).await?;
    let secret = WebhookSecret::generate();
    let id = Uuid::now_v7();
    let uow = UnitOfWork::begin(state).await?;
    if repo::webhooks::count(uow.tx(), organization_id).await? >= MAX_WEBHOOKS_PER_ORGANIZATION {
        return Err(ApiError::conflict(
            ErrorCode::WebhookLimitReached,
            format!(
                "an organization has at most {MAX_WEBHOOKS_PER_ORGANIZATION} webhook endpoints"
            ),
        ));
    }
    // Recorded before the endpoint exists, so that its own creation is not its first message.
    uow.record(
        &caller.actor(),
        Scope::organization(organization_id),
        Change::WebhookCreated {
            webhook_id: id,
            url: request.url.as_str().to_string(),
            event_types: event_types.clone(),
        },
        request.url.as_str(),
    )
    .await?;
    let created = repo::webhooks::insert(
        uow.tx(),
        NewWebhook {
            id,
            organization_id,
            url: request.url.as_str().to_string(),
            description: request.description,
            event_types,
            secret: secret.clone(),
            created_by: caller.account_id,
        },
        uow.now(),
    )
    .await?;
    uow.commit().await?;
    Ok(CreatedWebhookResponse {
        webhook: created.into(),
        secret: secret.expose().to_string(),
    })
}

/// Locks the endpoint the caller manages, inside `uow` (404 once deleted meanwhile).
async fn lock(uow: &UnitOfWork<'_>, id: Uuid) -> ApiResult<webhook::Model> {
    repo::webhooks::find_for_update(uow.tx(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

pub(crate) async fn update(
    state: &AppState,
    caller: &Caller,
    webhook_id: Uuid,
    request: UpdateWebhookRequest,
    if_match: &IfMatch,
) -> ApiResult<webhook::Model> {
    authz::managed_webhook(&state.db, caller, webhook_id).await?;
    let event_types = match &request.event_types {
        Some(Some(types)) => Some(Some(check_event_types(types)?)),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(description) = &request.description {
        check_description(description.as_deref())?;
    }
    if let Some(url) = &request.url {
        check_target(state, url).await?;
    }
    let uow = UnitOfWork::begin(state).await?;
    let mut webhook = lock(&uow, webhook_id).await?;
    if_match
        .check(|| async { Ok(WebhookResponse::from(webhook.clone())) })
        .await?;
    if let Some(url) = request.url {
        webhook.url = url.as_str().to_string();
    }
    if let Some(types) = event_types {
        webhook.event_types = types.map(|t| serde_json::json!(t));
    }
    if let Some(description) = request.description {
        webhook.description = description;
    }
    match request.enabled {
        Some(true) if !webhook.enabled => {
            webhook.enabled = true;
            webhook.disabled_reason = None;
            webhook.failing_since = None;
        }
        Some(false) if webhook.enabled => {
            webhook.enabled = false;
            webhook.disabled_reason = Some(WebhookDisabledReason::Manual);
        }
        _ => {}
    }
    webhook.updated_at = uow.now();
    repo::webhooks::update(uow.tx(), &webhook).await?;
    uow.record(
        &caller.actor(),
        Scope::organization(webhook.organization_id),
        Change::WebhookUpdated {
            webhook_id,
            url: webhook.url.clone(),
            event_types: event_types_of(webhook.event_types.as_ref()),
            enabled: webhook.enabled,
        },
        &webhook.url,
    )
    .await?;
    uow.commit().await?;
    Ok(webhook)
}

/// Deletes an endpoint with its deliveries and their attempts.
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    webhook_id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<()> {
    authz::managed_webhook(&state.db, caller, webhook_id).await?;
    let uow = UnitOfWork::begin(state).await?;
    let webhook = lock(&uow, webhook_id).await?;
    if_match
        .check(|| async { Ok(WebhookResponse::from(webhook.clone())) })
        .await?;
    repo::webhooks::delete(uow.tx(), webhook_id).await?;
    uow.record(
        &caller.actor(),
        Scope::organization(webhook.organization_id),
        Change::WebhookDeleted {
            webhook_id,
            url: webhook.url.clone(),
        },
        &webhook.url,
    )
    .await?;
    uow.commit().await
}

/// A new secret; the current one becomes the previous one, signing beside it for
/// `POSTIER_WEBHOOK_SECRET_GRACE_HOURS` (an older previous one stops at once).
pub(crate) async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    webhook_id: Uuid,
) -> ApiResult<RotatedSecretResponse> {
    authz::managed_webhook(&state.db, caller, webhook_id).await?;
    let uow = UnitOfWork::begin(state).await?;
    let mut webhook = lock(&uow, webhook_id).await?;
    let secret = WebhookSecret::generate();
    let grace = i64::try_from(state.config.webhook_secret_grace_hours).unwrap_or(24);
    let until = uow.now() + chrono::Duration::hours(grace);
    webhook.previous_secret = Some(std::mem::replace(&mut webhook.secret, secret.clone()));
    webhook.previous_secret_expires_at = Some(until);
    webhook.updated_at = uow.now();
    repo::webhooks::update(uow.tx(), &webhook).await?;
    uow.record(
        &caller.actor(),
        Scope::organization(webhook.organization_id),
        Change::WebhookSecretRotated {
            webhook_id,
            previous_valid_until: until,
        },
        &webhook.url,
    )
    .await?;
    uow.commit().await?;
    Ok(RotatedSecretResponse {
        secret: secret.expose().to_string(),
        previous_secret_expires_at: until,
    })
}

#[cfg(test)]
mod tests {
    use super::check_event_types;

    #[test]
    fn event_types_are_known_actions_or_resource_wildcards() {
        let ok = check_event_types(&[
            "address.created".into(),
            "member.*".into(),
            "address.created".into(),
        ])
        .unwrap();
        assert_eq!(ok, ["address.created", "member.*"]);
        let err = check_event_types(&["address.created".into(), "nope.*".into(), "address".into()])
            .unwrap_err();
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["event_types[1]", "event_types[2]"]);
        assert!(check_event_types(&[]).is_err());
    }
}
