//! An address password (`PUT /v1/addresses/{address_id}/password`), with its unification.

use actix_web::{put, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{Password, Secret};
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiJson;
use crate::service::addresses::password;
use crate::service::addresses::views::AddressResponse;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeAddressPasswordRequest {
    pub new_password: Password,
    /// `true` to unify with the password of the account whose login is this address (only
    /// that account, when eligible); `false` to end a unification.
    pub unify: Option<bool>,
    /// The caller's account password: required when the change also changes it (`unify:
    /// true`, or a unified address changed by its account), like `PUT /v1/me/password`.
    #[schema(value_type = Option<String>, format = Password)]
    pub current_password: Option<Secret>,
}

/// Change an address password
///
/// Owners and admins, or users holding `change_password`. With `unify: true`, from the
/// account whose login is this address and when eligible (see `password_unification`), the
/// account password becomes the same, and from then on changing either changes both; such a
/// change needs `current_password`, the account's. A change by someone else ends the
/// unification.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = ChangeAddressPasswordRequest,
    responses(
        (status = 200, description = "Changed", body = AddressResponse),
        (status = 403, description = "`change_password` is missing (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Unification is not possible, with the failed condition (`unification_not_eligible`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[put("/v1/addresses/{address_id}/password")]
pub(crate) async fn change_address_password(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<ChangeAddressPasswordRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let change = password::PasswordChange {
        new_password: body.new_password,
        unify: body.unify,
        current_password: body.current_password,
    };
    let view = password::change(&state, &user, path.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(view))
}
