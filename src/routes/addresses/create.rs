//! Creating addresses: for me, for another user, for several users, and the generic
//! no-reply and catchall (the flow itself is `service::addresses::create`).

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{
    AccountBinding, AddressFor, DomainName, LocalPart, Password, Permission, PermissionSet,
};
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiJson;
use crate::service::addresses::create::{
    self, CreatedAddressResponse, GenericAddressResponse, GenericType,
};
use crate::service::sharing::InviteeRequest;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"local_part": "compta", "for": "several_users", "password": "violet umbrella marching north", "display_name": "Comptabilité"}))]
pub(crate) struct CreateAddressRequest {
    /// The part before `@`: printable ASCII except space and `( ) < > @ , ; : " [ ] | % &`,
    /// 1–64 characters, no leading, trailing or double dot.
    pub local_part: LocalPart,
    /// A domain of the mail service; its main domain when omitted.
    pub domain: Option<DomainName>,
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::domain::validate_header_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
    )]
    pub display_name: Option<String>,
    #[serde(rename = "for")]
    #[schema(rename = "for")]
    pub for_: AddressFor,
    /// Required for `me` and `several_users`; optional for `other_user` (set by the owner).
    pub password: Option<Password>,
    /// For `other_user`.
    pub invitee: Option<InviteeRequest>,
    /// For `other_user`: the invitee's permissions (the service's defaults when omitted).
    #[schema(value_type = Option<Vec<Permission>>)]
    pub permissions: Option<PermissionSet>,
    /// For `other_user` invited by e-mail: who may accept (default `any`).
    pub account_binding: Option<AccountBinding>,
}

/// Create an address
///
/// Owners and admins. `for: me` gives the caller an access with every permission;
/// `for: other_user` invites a member (by login) or anyone else (by e-mail, who accepts with
/// the account `account_binding` allows); `for: several_users` creates a shared address.
/// The pack's address limit (on the free pack: one address per account, across
/// organizations) and the daily creation limit apply. On the shared free domain the
/// provider's role names (`postmaster`, `abuse`…) are reserved.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    request_body = CreateAddressRequest,
    responses(
        (status = 201, description = "Created", body = CreatedAddressResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The address exists (`address_already_exists`), the pack is full (`address_limit_reached`) or the address is an account's login (`address_is_account_login`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, naming it; on the shared free domain, a reserved local part (`postmaster`, `abuse`… see `POSTIER_RESERVED_LOCAL_PARTS`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "The daily creation limit is reached (`daily_creation_limit_reached`), or too many invitation e-mails to the invitee or from this organization (`too_many_requests`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/mail-services/{service_id}/addresses")]
pub(crate) async fn create_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateAddressRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let request = create::AddressRequest {
        local_part: body.local_part,
        domain: body.domain,
        display_name: body.display_name,
        for_: body.for_,
        password: body.password,
        invitee: body.invitee,
        permissions: body.permissions,
        account_binding: body.account_binding,
    };
    let created = create::create_address(&state, &user, path.into_inner(), request).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/addresses/{}", created.address.id)))
        .json(created))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateGenericAddressRequest {
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub type_: GenericType,
    /// A domain of the mail service; its main domain when omitted.
    pub domain: Option<DomainName>,
    /// Lets mail clients log in (to send as no-reply, to read the catchall).
    pub password: Option<Password>,
}

/// Create a generic address (no-reply or catchall)
///
/// `no_reply` creates `no-reply@domain`, which sends only. `catchall` creates
/// `catchall@domain` (one per domain, premium pack only), which receives every message for
/// a local part that does not exist and cannot send; the answer carries warnings.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    request_body = CreateGenericAddressRequest,
    responses(
        (status = 201, description = "Created", body = GenericAddressResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "It exists (`address_already_exists`), the pack has no catchall (`catchall_not_available`) or is full (`address_limit_reached`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "The daily creation limit is reached", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/mail-services/{service_id}/addresses/generic")]
pub(crate) async fn create_generic_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateGenericAddressRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let created = create::create_generic(
        &state,
        &user,
        path.into_inner(),
        body.type_,
        body.domain,
        body.password,
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}
