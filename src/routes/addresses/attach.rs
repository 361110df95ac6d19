//! The addresses the caller reaches through its accesses (its webmail's list), and
//! attaching one by its password (`/v1/me/addresses`).

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::Secret;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{Page, PageQuery};
use crate::service::addresses::manage;
use crate::service::addresses::views::MyAddressResponse;
use crate::state::AppState;

/// The addresses the caller reaches
///
/// Every address the caller has an access to (what its webmail shows), with its
/// permissions, ordered by address. Owners and admins also manage, without an access, every
/// address of their organizations' services: those are listed per service, at
/// `GET /v1/mail-services/{service_id}/addresses`.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "Addresses", body = Page<MyAddressResponse>))
)]
#[get("/v1/me/addresses")]
pub(crate) async fn list_my_addresses(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_key()?;
    let limit = query.limit();
    let rows = repo::addresses::list_for_account(
        &state.db,
        user.account_id,
        user.only_organization(),
        after.as_deref(),
        limit + 1,
    )
    .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |(a, _)| a.address.clone(),
        |(a, x)| MyAddressResponse::new(a, x),
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachAddressRequest {
    #[validate(length(max = 320))]
    #[schema(max_length = 320)]
    #[schema(example = "compta@entreprise-familiale.xyz")]
    pub address: String,
    /// The address password (not the account password).
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

/// Attach an address by its password
///
/// Proving the address password gives the caller an access with every permission. Throttled
/// like logins; an unknown address and a wrong password answer the same.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    request_body = AttachAddressRequest,
    responses(
        (status = 200, description = "Attached", body = MyAddressResponse),
        (status = 403, description = "Unknown address or wrong password (`password_incorrect`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The address is another account's login (`address_is_account_login`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/addresses")]
pub(crate) async fn attach_address(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<AttachAddressRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let attached = manage::attach(&state, &user, &body.address, body.password).await?;
    Ok(HttpResponse::Ok().json(attached))
}
