//! Mailbox tokens (`POST /v1/addresses/{address_id}/mailbox-tokens`): what the webmail logs in
//! to the mail servers with, for the caller's account, through SASL XOAUTH2 or OAUTHBEARER.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::MailboxScope;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiJson;
use crate::service::mail_clients::mailbox_tokens;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateMailboxTokenRequest {
    /// What the token may do; by default everything the caller's access allows (`imap` to
    /// read, `smtp` to send with `send_email`).
    #[schema(min_items = 1)]
    pub scopes: Option<Vec<MailboxScope>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct MailboxTokenResponse {
    /// The bearer token for XOAUTH2 (`user=<username>^Aauth=Bearer <token>^A^A`) or
    /// OAUTHBEARER; 256 random bits, stored only as a hash, never shown again.
    pub token: String,
    /// The SASL user name: the full address.
    pub username: String,
    /// Seconds the token is accepted for (`POSTIER_MAILBOX_TOKEN_TTL_SECS`).
    pub expires_in: u64,
    pub scopes: Vec<MailboxScope>,
}

/// Issue a mailbox token
///
/// A short-lived token with which the webmail, acting for the caller, logs in to IMAP and
/// SMTP submission for this address with SASL XOAUTH2 or OAUTHBEARER: the account's own
/// credentials never reach the mail servers. Needs an access of the caller's own; `smtp`
/// needs `send_email`. Removing the access, losing `send_email` or expiry refuse the token
/// at the next login. It may be used for several logins until it expires.
#[utoipa::path(
    tag = "mail-clients",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = CreateMailboxTokenRequest,
    responses(
        (status = 201, description = "Issued: the token is shown this once", body = MailboxTokenResponse),
        (status = 403, description = "No access of the caller's own (`access_required`), or `smtp` without `send_email` (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "A scope the address does not offer (`validation_failed`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many tokens for this access in 10 minutes (`too_many_requests`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/addresses/{address_id}/mailbox-tokens")]
pub(crate) async fn create_mailbox_token(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateMailboxTokenRequest>,
) -> ApiResult<HttpResponse> {
    let issued = mailbox_tokens::issue(&state, &user, path.into_inner(), body.0.scopes).await?;
    Ok(HttpResponse::Created().json(MailboxTokenResponse {
        token: issued.token,
        username: issued.username,
        expires_in: issued.expires_in,
        scopes: issued.scopes,
    }))
}
