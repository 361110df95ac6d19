//! Apple configuration profiles (`.mobileconfig`) for one address: an IMAP + SMTP mail
//! account for iOS, iPadOS and macOS Mail. No password is inside: the device asks for it
//! when the profile is installed (the address password or a device password). The profile
//! is not signed, so the device shows it as unverified.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::AddressKind;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument};
use crate::service::authz::{self, Need};
use crate::service::mail_clients::apple_profile;
use crate::state::AppState;

pub(crate) const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// Apple configuration profile
///
/// A `.mobileconfig` for iOS, iPadOS and macOS Mail that sets up this address over IMAP
/// (993, SSL) and SMTP (465, SSL) on the provider's mail host, with the address as user name.
/// It holds no password: the device asks for one at installation (the address password or a
/// device password). For the users of the address and owners and admins of its organization.
#[utoipa::path(
    tag = "mail-clients",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    responses(
        (status = 200, description = "The profile (unsigned)", body = String, content_type = "application/x-apple-aspen-config"),
        (status = 403, description = "Neither a user of the address nor an owner or admin (`access_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "A no_reply address has no mailbox to set up (`address_has_no_mailbox`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/mobileconfig")]
pub(crate) async fn get_mobileconfig(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, &user, path.into_inner(), Need::See).await?;
    if !ctx.manages() && ctx.access.is_none() {
        return Err(ApiError::new(
            ErrorCode::AccessRequired,
            "only the users of the address and owners and admins download its profile",
        ));
    }
    if ctx.address.kind == AddressKind::NoReply {
        return Err(ApiError::conflict(
            ErrorCode::AddressHasNoMailbox,
            "a no_reply address has no mailbox to read: configure its SMTP by hand",
        ));
    }
    let file: String = ctx
        .address
        .address
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' | '@' => c,
            _ => '_',
        })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}.mobileconfig\""),
        ))
        .body(apple_profile::profile(
            &ctx.address,
            &state.config.mail_host,
        )))
}
