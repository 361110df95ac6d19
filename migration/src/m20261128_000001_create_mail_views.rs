//! Read-only views for the mail servers (Postfix and Dovecot, README "Running a real mail
//! server on Postier"): hosted domains, mailboxes, aliases, sender ownership, send-only
//! addresses and the password lookup. The mail servers' database role gets SELECT on
//! [`crate::MAIL_VIEWS`] and nothing else; the views run with their owner's rights.
//!
//! The views read `addresses`, `aliases`, `forwards`, `domains` and `mail_services`. A later migration
//! that drops or retypes a column they use must drop the views first and create them again
//! (PostgreSQL refuses otherwise) and the role's grants must then be given again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Kinds that have a mailbox (receive mail and may read it over IMAP).
const RECEIVING: &str = "('personal', 'shared', 'catchall')";
/// Kinds that may authenticate to SMTP and send (a catchall cannot send: docs/resources.md "Address kinds").
const SENDING: &str = "('personal', 'shared', 'no_reply')";

fn create_statements(backend: DatabaseBackend) -> Vec<String> {
    // A stable, path-safe name for the mailbox's storage: the address id as 32 hex digits.
    // Deleting an address and creating it again gives a new, empty mailbox.
    let mailbox_id = match backend {
        DatabaseBackend::Postgres => "replace(CAST(a.id AS text), '-', '')",
        // sqlx stores a UUID in SQLite as a 16-byte blob.
        _ => "lower(hex(a.id))",
    };
    vec![
        // Internal (not granted): addresses whose domain is hosted by their own mail service,
        // either as a customer domain or as the main domain (the shared free domain of free
        // services lives only in `mail_services.domain`).
        format!(
            "CREATE VIEW mail_hosted_addresses AS \
             SELECT a.id, a.address, a.domain, a.kind, a.password_hash, {mailbox_id} AS mailbox_id \
             FROM addresses a \
             WHERE EXISTS (SELECT 1 FROM domains d \
                           WHERE d.name = a.domain AND d.mail_service_id = a.mail_service_id) \
                OR EXISTS (SELECT 1 FROM mail_services s \
                           WHERE s.id = a.mail_service_id AND s.domain = a.domain)"
        ),
        // Hosted domains: every customer domain (main and linked) and every service's main
        // domain, which brings in the free domain as soon as one free service exists.
        "CREATE VIEW mail_domains AS \
         SELECT name AS domain FROM domains \
         UNION \
         SELECT domain FROM mail_services"
            .to_string(),
        format!(
            "CREATE VIEW mail_mailboxes AS \
             SELECT address, mailbox_id FROM mail_hosted_addresses WHERE kind IN {RECEIVING}"
        ),
        // Addresses that exist but take no mail (no-reply): the MTA refuses mail to them
        // instead of handing it to a catchall or bouncing it later.
        "CREATE VIEW mail_send_only AS \
         SELECT address FROM mail_hosted_addresses WHERE kind = 'no_reply'"
            .to_string(),
        // Every mailbox maps to itself so that a domain's catchall (`@domain`) only takes
        // mail for local parts that do not exist (Postfix tries `user@domain` before
        // `@domain`), unless its confirmed forwards all say not to keep a copy; then to its
        // confirmed forwarding targets, each alias to its address, and `@domain` to the
        // catchall. Postfix expands the result again (an alias of a forwarded address).
        format!(
            "CREATE VIEW mail_aliases AS \
             SELECT a.address AS source, a.address AS destination \
               FROM mail_hosted_addresses a WHERE a.kind IN {RECEIVING} \
               AND (NOT EXISTS (SELECT 1 FROM forwards f \
                                WHERE f.address_id = a.id AND f.confirmed_at IS NOT NULL) \
                    OR EXISTS (SELECT 1 FROM forwards f WHERE f.address_id = a.id \
                               AND f.confirmed_at IS NOT NULL AND f.keep_copy)) \
             UNION ALL \
             SELECT a.address, f.target FROM forwards f \
               JOIN mail_hosted_addresses a ON a.id = f.address_id \
               WHERE f.confirmed_at IS NOT NULL AND a.kind IN {RECEIVING} \
             UNION ALL \
             SELECT l.alias, a.address FROM aliases l \
               JOIN mail_hosted_addresses a ON a.id = l.address_id \
               WHERE a.kind IN ('personal', 'shared') \
             UNION ALL \
             SELECT '@' || domain, address FROM mail_hosted_addresses WHERE kind = 'catchall'"
        ),
        // Which SASL login may use which envelope sender: an address owns itself and its
        // aliases.
        format!(
            "CREATE VIEW mail_senders AS \
             SELECT address AS sender, address AS login \
               FROM mail_hosted_addresses WHERE kind IN {SENDING} \
             UNION ALL \
             SELECT l.alias, a.address FROM aliases l \
               JOIN mail_hosted_addresses a ON a.id = l.address_id \
               WHERE a.kind IN {SENDING}"
        ),
        // The raw argon2id PHC string (Dovecot needs the `{ARGON2ID}` prefix, added by its
        // query) and what the login may be used for.
        format!(
            "CREATE VIEW mail_passwords AS \
             SELECT address, password_hash, \
                    kind IN {RECEIVING} AS receives, kind IN {SENDING} AS sends \
             FROM mail_hosted_addresses \
             WHERE password_hash IS NOT NULL AND password_hash LIKE '$argon2id$%'"
        ),
        // The catchall lookup is by `'@' || domain`: index exactly that expression.
        "CREATE INDEX idx_addresses_catchall ON addresses (('@' || domain)) \
         WHERE kind = 'catchall'"
            .to_string(),
        "CREATE INDEX idx_mail_services_domain ON mail_services (domain)".to_string(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in create_statements(manager.get_database_backend()) {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_mail_services_domain")
            .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS idx_addresses_catchall")
            .await?;
        for view in crate::MAIL_VIEWS.iter().rev() {
            db.execute_unprepared(&format!("DROP VIEW IF EXISTS {view}"))
                .await?;
        }
        db.execute_unprepared("DROP VIEW IF EXISTS mail_hosted_addresses")
            .await?;
        Ok(())
    }
}
