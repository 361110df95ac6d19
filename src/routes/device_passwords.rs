//! Device passwords of an address (`/v1/addresses/{address_id}/device-passwords`,
//! `/v1/device-passwords/{id}`): list, create (the secret shown once), revoke one or all.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::MailProtocol;
use crate::entity::{account, device_password};
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::params::{Page, PageQuery};
use crate::service::mail_clients::device_passwords::{self, DevicePasswordRequest};
use crate::state::AppState;

/// The last successful login with a device password, as the mail servers report it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct LastUseResponse {
    pub at: DateTime<Utc>,
    /// The client's address as the mail server saw it.
    pub ip: Option<String>,
    pub protocol: Option<MailProtocol>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DevicePasswordResponse {
    pub id: Uuid,
    pub address_id: Uuid,
    /// The account whose access holds it.
    pub account_id: Uuid,
    pub login: String,
    pub label: String,
    pub protocols: Vec<MailProtocol>,
    pub created_at: DateTime<Utc>,
    /// `null`: never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Reported within a minute of a login (at most one report per 30 s while the client
    /// address and protocol stay the same); `null` until first used.
    pub last_used: Option<LastUseResponse>,
}

impl DevicePasswordResponse {
    fn new(d: device_password::Model, holder: account::Model) -> Self {
        let protocols = d.protocols();
        Self {
            id: d.id,
            address_id: d.address_id,
            account_id: d.account_id,
            login: holder.login,
            label: d.label,
            protocols,
            created_at: d.created_at,
            expires_at: d.expires_at,
            last_used: d.last_used_at.map(|at| LastUseResponse {
                at,
                ip: d.last_used_ip,
                protocol: d.last_used_protocol,
            }),
        }
    }
}

/// A new device password: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedDevicePasswordResponse {
    #[serde(flatten)]
    pub device_password: DevicePasswordResponse,
    /// The user name to type in the device: the full address.
    pub username: String,
    /// `pst_` + 8 characters + `_` + 50 characters; stored only as an argon2id hash.
    pub password: String,
}

/// Device passwords of an address
///
/// The caller's own device passwords on the address; owners and admins of the organization
/// see everyone's. Secrets are never listed.
#[utoipa::path(
    tag = "mail-clients",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses(
        (status = 200, description = "Device passwords", body = Page<DevicePasswordResponse>),
        (status = 403, description = "Neither an owner or admin nor a user of the address (`access_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/device-passwords")]
pub(crate) async fn list_device_passwords(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = device_passwords::list(&state, &user, path.into_inner(), after, limit + 1).await?;
    let page = Page::from_rows(
        rows,
        limit,
        |(d, _)| d.id.to_string(),
        |(d, a)| DevicePasswordResponse::new(d, a),
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateDevicePasswordRequest {
    /// What the device is ("Office printer"): 1 to 64 characters.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub label: String,
    /// What it may do; by default every protocol the address offers and the caller's access
    /// allows (`smtp` needs `send_email`; a `no_reply` address has nothing to read, a
    /// `catchall` cannot send).
    pub protocols: Option<Vec<MailProtocol>>,
    /// When it stops working (in the future); `null` or absent: never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Create a device password
///
/// For the caller's own access to the address: a generated password for one device (a
/// printer, a scanner, a phone) that logs in to IMAP, POP3 and SMTP with the address as
/// user name, beside the address password. Shown once. At most 20 per access.
#[utoipa::path(
    tag = "mail-clients",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = CreateDevicePasswordRequest,
    responses(
        (status = 201, description = "Created: the password is shown this once", body = CreatedDevicePasswordResponse),
        (status = 403, description = "No access of the caller's own (`access_required`), or `smtp` without `send_email` (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid label, protocol or `expires_at` (`validation_failed`), or 20 held already (`device_password_limit_reached`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/addresses/{address_id}/device-passwords")]
pub(crate) async fn create_device_password(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateDevicePasswordRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let request = DevicePasswordRequest {
        label: body.label,
        protocols: body.protocols,
        expires_at: body.expires_at,
    };
    let created = device_passwords::create(&state, &user, path.into_inner(), request).await?;
    Ok(HttpResponse::Created().json(CreatedDevicePasswordResponse {
        device_password: DevicePasswordResponse::new(created.device_password, created.holder),
        username: created.username,
        password: created.password,
    }))
}

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RevokeAllQuery {
    /// Whose device passwords: the caller's own when absent; another account's for owners
    /// and admins.
    pub account_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RevokedDevicePasswordsResponse {
    /// How many device passwords were revoked.
    pub revoked: u64,
}

/// Revoke every device password of a holder
///
/// The caller's own device passwords on the address (or, for owners and admins,
/// `?account_id=`'s): each stops working at its next login.
#[utoipa::path(
    tag = "mail-clients",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), RevokeAllQuery),
    responses(
        (status = 200, description = "Revoked", body = RevokedDevicePasswordsResponse),
        (status = 403, description = "Another account's without being an owner or admin (`forbidden`), or no access of the caller's own (`access_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}/device-passwords")]
pub(crate) async fn revoke_device_passwords(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<RevokeAllQuery>,
) -> ApiResult<HttpResponse> {
    let revoked =
        device_passwords::revoke_all(&state, &user, path.into_inner(), query.account_id).await?;
    Ok(HttpResponse::Ok().json(RevokedDevicePasswordsResponse { revoked }))
}

/// Revoke a device password
///
/// Its holder, or an owner or admin of the address's organization. It stops working at its
/// next login; sessions it opened before stay open until they end.
#[utoipa::path(
    tag = "mail-clients",
    security(("bearer" = [])),
    params(("device_password_id" = Uuid, Path, description = "Device password id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "Unknown, or not the caller's to revoke", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/device-passwords/{device_password_id}")]
pub(crate) async fn revoke_device_password(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    device_passwords::revoke(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
