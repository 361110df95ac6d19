//! Schema migrations of Postier, applied by `postier migrate` and at the start of `serve`.
//! One file per change, each with `down()`; SQLite and PostgreSQL run the same statements
//! except where a comment says why not.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_accounts;
mod m20261127_000002_create_mail_services;
mod m20261127_000003_create_addresses;
mod m20261127_000004_create_events;
mod m20261127_000005_create_forwards;
mod m20261128_000001_create_mail_views;
mod m20261128_000002_create_address_settings;
mod m20261128_000003_add_address_count;
mod m20261128_000004_one_free_service_per_organization;
mod m20261128_000005_add_personal_account;
mod m20261201_000001_check_stored_values;
mod m20261202_000101_add_login_verified;
mod m20261202_000102_create_account_tokens;
mod m20261202_000103_create_second_factors;
mod m20261202_000104_create_member_invitations;
mod m20261202_000105_add_outbox_scrub_after_send;

mod m20261202_000201_create_mail_client_credentials;

pub use m20261202_000102_create_account_tokens::ACCOUNT_TOKEN_PURPOSES;
pub use m20261202_000104_create_member_invitations::MEMBER_INVITATION_ENUMERATED;
pub use m20261202_000201_create_mail_client_credentials::{RECORD_DEVICE_USE, SEND_EMAIL_BIT};
mod m20261202_000301_add_event_positions;
mod m20261202_000302_create_webhooks;
mod m20261202_000710_add_refresh_token_successor;
mod m20261202_000720_add_outbox_listed_body;
mod m20261202_000730_add_domain_ownership;
mod m20261203_000200_add_outbox_secret;
mod m20261203_000301_create_api_tokens;
mod m20261203_000401_create_idempotency_keys;

pub use m20261201_000001_check_stored_values::{ENUMERATED, PERMISSION_BITS_MAX, PERMISSION_SETS};
pub use m20261202_000302_create_webhooks::WEBHOOK_ENUMERATED;

/// The views the mail servers read (and the only objects their database role may SELECT),
/// in creation order. README "Running a real mail server on Postier" documents each one.
pub const MAIL_VIEWS: [&str; 9] = [
    "mail_domains",
    "mail_mailboxes",
    "mail_send_only",
    "mail_aliases",
    "mail_senders",
    "mail_passwords",
    "mail_auto_replies",
    "mail_device_passwords",
    "mail_tokens",
];

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_accounts::Migration),
            Box::new(m20261127_000002_create_mail_services::Migration),
            Box::new(m20261127_000003_create_addresses::Migration),
            Box::new(m20261127_000004_create_events::Migration),
            Box::new(m20261127_000005_create_forwards::Migration),
            Box::new(m20261128_000001_create_mail_views::Migration),
            Box::new(m20261128_000002_create_address_settings::Migration),
            Box::new(m20261128_000003_add_address_count::Migration),
            Box::new(m20261128_000004_one_free_service_per_organization::Migration),
            Box::new(m20261128_000005_add_personal_account::Migration),
            Box::new(m20261201_000001_check_stored_values::Migration),
            Box::new(m20261202_000101_add_login_verified::Migration),
            Box::new(m20261202_000102_create_account_tokens::Migration),
            Box::new(m20261202_000103_create_second_factors::Migration),
            Box::new(m20261202_000104_create_member_invitations::Migration),
            Box::new(m20261202_000105_add_outbox_scrub_after_send::Migration),
            Box::new(m20261202_000201_create_mail_client_credentials::Migration),
            Box::new(m20261202_000301_add_event_positions::Migration),
            Box::new(m20261202_000302_create_webhooks::Migration),
            Box::new(m20261202_000710_add_refresh_token_successor::Migration),
            Box::new(m20261202_000720_add_outbox_listed_body::Migration),
            Box::new(m20261202_000730_add_domain_ownership::Migration),
            Box::new(m20261203_000200_add_outbox_secret::Migration),
            Box::new(m20261203_000301_create_api_tokens::Migration),
            Box::new(m20261203_000401_create_idempotency_keys::Migration),
        ]
    }
}

/// Text compared byte-wise on both backends, so that keyset pagination over addresses and
/// domains orders the same way on SQLite (BINARY) and PostgreSQL (`C`).
pub(crate) fn bytewise(manager: &SchemaManager, mut col: ColumnDef) -> ColumnDef {
    if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        col.extra("COLLATE \"C\"");
    }
    col
}
