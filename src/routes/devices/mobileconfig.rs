//! Apple configuration profiles (`.mobileconfig`) for one address: an IMAP + SMTP mail
//! account for iOS, iPadOS and macOS Mail. No password is inside: the device asks for it
//! when the profile is installed (the address password or a device password). The profile
//! is not signed, so the device shows it as unverified.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::{AddressKind, MailProtocol, CLIENT_ENDPOINTS};
use crate::entity::address;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument};
use crate::service::authz::{self, Need};
use crate::service::mail_clients::discovery::xml_text;
use crate::state::AppState;

pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// A stable UUID for one part of one address's profile: downloading it again replaces the
/// installed profile instead of adding a second account.
fn stable_uuid(address_id: Uuid, part: &str) -> Uuid {
    let digest = Sha256::digest(format!("postier mobileconfig {part} {address_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

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
pub async fn get_mobileconfig(
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
        .body(profile(&ctx.address, &state.config.mail_host)))
}

/// The property list: one `com.apple.mail.managed` payload.
fn profile(address: &address::Model, host: &str) -> String {
    let email = xml_text(&address.address);
    let name = xml_text(address.display_name.as_deref().unwrap_or(&address.address));
    let first = |protocol: MailProtocol| {
        CLIENT_ENDPOINTS
            .iter()
            .find(|e| e.protocol == protocol && e.recommended)
            .map(|e| e.port)
            .unwrap_or_default()
    };
    let (imap, smtp) = (first(MailProtocol::Imap), first(MailProtocol::Smtp));
    // Reverse-DNS identifiers under the provider's mail host.
    let reverse: Vec<&str> = host.split('.').rev().collect();
    let identifier = format!("{}.mail.{}", reverse.join("."), address.id);
    let account_uuid = stable_uuid(address.id, "account");
    let profile_uuid = stable_uuid(address.id, "profile");
    let host = xml_text(host);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key>
      <string>{email}</string>
      <key>EmailAccountName</key>
      <string>{name}</string>
      <key>EmailAccountType</key>
      <string>EmailTypeIMAP</string>
      <key>EmailAddress</key>
      <string>{email}</string>
      <key>IncomingMailServerAuthentication</key>
      <string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key>
      <string>{host}</string>
      <key>IncomingMailServerPortNumber</key>
      <integer>{imap}</integer>
      <key>IncomingMailServerUseSSL</key>
      <true/>
      <key>IncomingMailServerUsername</key>
      <string>{email}</string>
      <key>OutgoingMailServerAuthentication</key>
      <string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key>
      <string>{host}</string>
      <key>OutgoingMailServerPortNumber</key>
      <integer>{smtp}</integer>
      <key>OutgoingMailServerUseSSL</key>
      <true/>
      <key>OutgoingMailServerUsername</key>
      <string>{email}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key>
      <true/>
      <key>PayloadDescription</key>
      <string>Mail account {email}</string>
      <key>PayloadDisplayName</key>
      <string>{email}</string>
      <key>PayloadIdentifier</key>
      <string>{identifier}.account</string>
      <key>PayloadType</key>
      <string>com.apple.mail.managed</string>
      <key>PayloadUUID</key>
      <string>{account_uuid}</string>
      <key>PayloadVersion</key>
      <integer>1</integer>
    </dict>
  </array>
  <key>PayloadDescription</key>
  <string>Sets up {email} in Mail. You are asked for its password (or a device password) when installing.</string>
  <key>PayloadDisplayName</key>
  <string>{email}</string>
  <key>PayloadIdentifier</key>
  <string>{identifier}</string>
  <key>PayloadRemovalDisallowed</key>
  <false/>
  <key>PayloadType</key>
  <string>Configuration</string>
  <key>PayloadUUID</key>
  <string>{profile_uuid}</string>
  <key>PayloadVersion</key>
  <integer>1</integer>
</dict>
</plist>
"#,
        account_uuid = account_uuid.hyphenated().to_string().to_uppercase(),
        profile_uuid = profile_uuid.hyphenated().to_string().to_uppercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_uuids_are_stable_per_address_and_part() {
        let id = Uuid::now_v7();
        assert_eq!(stable_uuid(id, "account"), stable_uuid(id, "account"));
        assert_ne!(stable_uuid(id, "account"), stable_uuid(id, "profile"));
        assert_ne!(
            stable_uuid(id, "account"),
            stable_uuid(Uuid::now_v7(), "account")
        );
    }
}
