//! Validated domain types: parse once at the edge, then trust the type. Nothing here touches
//! the database or HTTP; each constructor says precisely why it refuses a value.

mod address;
mod kinds;
mod mail_client;
mod number;
mod pack;
mod password;
mod permission;
mod role;
mod secret;
mod text;
mod webhook;

pub use address::{DomainName, EmailAddress, LocalPart, ParseError};
pub use kinds::{
    AccessOrigin, AccountBinding, AccountTokenPurpose, AddressFor, AddressKind, InvitationStatus,
};
pub use mail_client::{
    ClientEndpoint, MailProtocol, MailboxScope, Security, CLIENT_ENDPOINTS, IMAPS_PORT, POP3S_PORT,
    SUBMISSIONS_PORT, SUBMISSION_PORT,
};
pub use number::whole_number;
pub use pack::{Pack, PackLimits};
pub use password::{Password, PasswordPolicy};
pub use permission::{Permission, PermissionSet};
pub use role::Role;
pub use secret::Secret;
pub use text::{header_text_problem, validate_header_text};
pub use webhook::{DeliveryStatus, WebhookDisabledReason, WebhookSecret, WebhookUrl};

#[cfg(test)]
mod tests {
    use super::*;

    fn names<T: Copy>(all: &[T], text: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| text(*v)).collect()
    }

    #[test]
    fn the_schema_checks_list_exactly_the_stored_names_and_permission_bits() {
        let stored = |table: &str, column: &str| -> Vec<&'static str> {
            migration::ENUMERATED
                .iter()
                .find(|(t, c, _)| *t == table && *c == column)
                .map(|(_, _, names)| names.to_vec())
                .unwrap_or_default()
        };
        assert_eq!(
            stored("addresses", "kind"),
            names(AddressKind::ALL, AddressKind::as_str)
        );
        assert_eq!(
            stored("accesses", "origin"),
            names(AccessOrigin::ALL, AccessOrigin::as_str)
        );
        assert_eq!(
            stored("invitations", "account_binding"),
            names(AccountBinding::ALL, AccountBinding::as_str)
        );
        let mut statuses = names(InvitationStatus::ALL, InvitationStatus::as_str);
        statuses.retain(|s| *s != "expired");
        assert_eq!(stored("invitations", "status"), statuses);
        assert_eq!(
            stored("mail_services", "pack"),
            names(Pack::ALL, Pack::as_str)
        );
        assert_eq!(
            stored("memberships", "role"),
            names(Role::ALL, Role::as_str)
        );
        assert_eq!(migration::PERMISSION_BITS_MAX, PermissionSet::all().bits());
        // The mail views test `send_email` by its bit.
        let send: PermissionSet = [Permission::SendEmail].into_iter().collect();
        assert_eq!(migration::SEND_EMAIL_BIT, send.bits());
        let webhook = |table: &str, column: &str| -> Vec<&'static str> {
            migration::WEBHOOK_ENUMERATED
                .iter()
                .find(|(t, c, _)| *t == table && *c == column)
                .map(|(_, _, names)| names.to_vec())
                .unwrap_or_default()
        };
        assert_eq!(
            webhook("webhooks", "disabled_reason"),
            names(WebhookDisabledReason::ALL, WebhookDisabledReason::as_str)
        );
        assert_eq!(
            webhook("webhook_deliveries", "status"),
            names(DeliveryStatus::ALL, DeliveryStatus::as_str)
        );
    }

    #[test]
    fn the_account_tables_check_exactly_the_stored_names() {
        assert_eq!(
            migration::ACCOUNT_TOKEN_PURPOSES.to_vec(),
            names(AccountTokenPurpose::ALL, AccountTokenPurpose::as_str)
        );
        let stored = |column: &str| -> Vec<&'static str> {
            migration::MEMBER_INVITATION_ENUMERATED
                .iter()
                .find(|(c, _)| *c == column)
                .map(|(_, names)| names.to_vec())
                .unwrap_or_default()
        };
        assert_eq!(stored("role"), names(Role::ALL, Role::as_str));
        let mut statuses = names(InvitationStatus::ALL, InvitationStatus::as_str);
        statuses.retain(|s| *s != "expired");
        assert_eq!(stored("status"), statuses);
    }
}
