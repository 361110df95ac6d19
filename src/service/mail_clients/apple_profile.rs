//! The Apple configuration profile (`.mobileconfig`) of one address: an IMAP + SMTP account
//! for iOS, iPadOS and macOS Mail on the provider's mail host, without any password.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::discovery::xml_text;
use crate::domain::{MailProtocol, CLIENT_ENDPOINTS};
use crate::entity::address;

/// A stable UUID for one part of one address's profile: downloading it again replaces the
/// installed profile instead of adding a second account.
fn stable_uuid(address_id: Uuid, part: &str) -> Uuid {
    let digest = Sha256::digest(format!("postier mobileconfig {part} {address_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The property list: one `com.apple.mail.managed` payload.
pub(crate) fn profile(address: &address::Model, host: &str) -> String {
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
