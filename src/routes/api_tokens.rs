//! Personal API tokens of the caller (`/v1/me/tokens`): list, create (the secret shown
//! once), revoke. A session only reaches these (an API token gets 403 `session_required`).

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::entity::api_token;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::params::{Page, PageQuery};
use crate::service::api_tokens::{self, ApiTokenScope, NewToken};
use crate::state::AppState;

/// A personal API token as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ApiTokenResponse {
    pub id: Uuid,
    pub name: String,
    /// The beginning of the secret (`postier_pat_` and 4 characters), to recognise it.
    #[schema(example = "postier_pat_Xy3k…")]
    pub hint: String,
    /// Every scope the token holds (`write` implies `read`, `dangerous` implies `write`).
    pub scopes: Vec<ApiTokenScope>,
    /// The one organization it reaches; `null`: every organization of the account.
    pub organization_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Noted at most once a minute; `null` until first used.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<api_token::Model> for ApiTokenResponse {
    fn from(t: api_token::Model) -> Self {
        Self {
            scopes: api_tokens::scopes_of(&t),
            id: t.id,
            name: t.name,
            hint: t.hint,
            organization_id: t.organization_id,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A new token: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedApiTokenResponse {
    #[serde(flatten)]
    pub api_token: ApiTokenResponse,
    /// `postier_pat_` and 43 characters of base64url; send as `Authorization: Bearer`.
    /// Stored only as its SHA-256.
    pub token: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateApiTokenRequest {
    /// What the token is for ("backup script"): 1 to 100 characters.
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::domain::validate_header_text")
    )]
    #[schema(min_length = 1, max_length = 100, example = "nightly export")]
    pub name: String,
    /// At least one; the highest counts (`write` implies `read`, `dangerous` implies `write`).
    #[schema(min_items = 1, example = json!(["read"]))]
    pub scopes: Vec<ApiTokenScope>,
    /// Limits the token to one organization the account is a member of: anything of
    /// another answers 404.
    pub organization_id: Option<Uuid>,
    /// 1 to 365; 90 when absent.
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: Option<u32>,
}

/// The caller's API tokens
///
/// Expired ones included, until revoked. Secrets are never listed.
#[utoipa::path(
    tag = "api-tokens",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "API tokens", body = Page<ApiTokenResponse>),
        (status = 403, description = "Called with an API token (`session_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/tokens")]
pub(crate) async fn list_api_tokens(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = api_tokens::list(&state, &user, after, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |t| t.id.to_string(), ApiTokenResponse::from);
    Ok(HttpResponse::Ok().json(page))
}

/// Create an API token
///
/// For scripts: a bearer token accepted wherever an access token is, limited to its scopes
/// (and optionally to one organization), for `expires_in_days` (default 90, at most 365).
/// Needs a recent password proof (a login or `POST /v1/sessions/reauth`) and a session. The
/// secret is shown this once. At most 50 unexpired tokens per account.
#[utoipa::path(
    tag = "api-tokens",
    security(("bearer" = [])),
    request_body = CreateApiTokenRequest,
    responses(
        (status = 201, description = "Created: the token is shown this once", body = CreatedApiTokenResponse),
        (status = 403, description = "No recent password proof (`reauthentication_required`), or called with an API token (`session_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "50 unexpired tokens held already (`api_token_limit_reached`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, scopes, organization or lifetime (`validation_failed`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/tokens")]
pub(crate) async fn create_api_token(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<CreateApiTokenRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let new = NewToken {
        name: body.name,
        scopes: body.scopes,
        organization_id: body.organization_id,
        expires_in_days: body.expires_in_days,
    };
    let (row, token) = api_tokens::create(&state, &user, new).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/me/tokens/{}", row.id)))
        .json(CreatedApiTokenResponse {
            api_token: row.into(),
            token,
        }))
}

/// Revoke an API token
///
/// It stops working at once (on other instances within `POSTIER_SESSION_CACHE_MILLIS`, at
/// most 1 s).
#[utoipa::path(
    tag = "api-tokens",
    security(("bearer" = [])),
    params(("token_id" = Uuid, Path, description = "API token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Called with an API token (`session_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "Not one of the caller's tokens", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/tokens/{token_id}")]
pub(crate) async fn revoke_api_token(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    api_tokens::revoke(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
