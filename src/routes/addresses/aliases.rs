//! Aliases of an address (`/v1/addresses/{address_id}/aliases`).

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{DomainName, LocalPart, Permission};
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{Page, PageQuery};
use crate::service::addresses::aliases;
use crate::service::authz::{self, Need};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AliasResponse {
    /// Another address delivering to this one, and usable as its sender.
    pub alias: String,
    pub created_at: DateTime<Utc>,
}

/// Aliases of an address
///
/// The other addresses that deliver to this one's mailbox.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses(
        (status = 200, description = "Aliases, by alias", body = Page<AliasResponse>),
        (status = 403, description = "Reading them takes the `manage_aliases` permission on the address, or the owner or admin role (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/aliases")]
pub(crate) async fn list_aliases(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(
        &state.db,
        &user,
        path.into_inner(),
        Need::Permission(Permission::ManageAliases),
    )
    .await?;
    let after = query.after_key()?;
    let limit = query.limit();
    let rows =
        repo::addresses::list_aliases(&state.db, ctx.address.id, after.as_deref(), limit + 1)
            .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |a| a.alias.clone(),
        |a| AliasResponse {
            alias: a.alias,
            created_at: a.created_at,
        },
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAliasRequest {
    /// Same rules as an address's local part.
    pub local_part: LocalPart,
    /// A domain of the mail service; the address's own when omitted.
    pub domain: Option<DomainName>,
}

/// Add an alias
///
/// Needs `manage_aliases` (owners and admins hold it). The alias must be free as an address
/// and as an alias.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = CreateAliasRequest,
    responses(
        (status = 201, description = "Added", body = AliasResponse),
        (status = 403, description = "`manage_aliases` is missing", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Taken (`address_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/addresses/{address_id}/aliases")]
pub(crate) async fn create_alias(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateAliasRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let address_id = path.into_inner();
    let created = aliases::create(
        &state,
        &user,
        address_id,
        &body.local_part,
        body.domain.as_ref(),
    )
    .await?;
    Ok(HttpResponse::Created().json(AliasResponse {
        alias: created.alias,
        created_at: created.created_at,
    }))
}

/// Remove an alias
///
/// Mail to the alias stops being delivered to the address; the alias becomes free again.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("alias" = String, Path, description = "The alias address"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`manage_aliases` is missing", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}/aliases/{alias}")]
pub(crate) async fn delete_alias(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (address_id, alias) = path.into_inner();
    aliases::delete(&state, &user, address_id, &alias).await?;
    Ok(HttpResponse::NoContent().finish())
}
