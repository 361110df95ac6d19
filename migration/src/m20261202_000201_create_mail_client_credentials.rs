//! The credentials mail clients and the webmail use besides the address password (issue 14,
//! README "Running a real mail server on Postier"):
//!
//! - `device_passwords`: a generated secret `pst_<public_id>_<random>` per device, held by one
//!   access (address + account) and removed with it; only its argon2id hash is stored. The
//!   non-secret `public_id` lets Dovecot's SQL passdb select the one row to verify.
//! - `mailbox_tokens`: short-lived tokens of an access for SASL XOAUTH2/OAUTHBEARER (the
//!   webmail), stored as their SHA-256, which Dovecot computes itself (`%{sha256:password}`).
//!
//! For the mail servers, two views (granted to their read-only role with the other mail views)
//! show only what may log in *now*: not expired, the access still there, `send_email` still
//! held for SMTP, the address still hosted (they read `mail_hosted_addresses`). On PostgreSQL,
//! `mail_record_device_use` (SECURITY DEFINER) lets a second role that may only EXECUTE it
//! record a device password's last use. Like `create_mail_views`, a later migration that drops
//! `mail_hosted_addresses` or a column these views read must drop and recreate them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Kinds that have a mailbox, and kinds that may send (as in `create_mail_views`).
const RECEIVING: &str = "('personal', 'shared', 'catchall')";
const SENDING: &str = "('personal', 'shared', 'no_reply')";

/// The `send_email` bit of a stored permission set (`domain::Permission::SendEmail`, bit 11;
/// a unit test of postier's `domain` compares them).
pub const SEND_EMAIL_BIT: i64 = 1 << 11;

/// What the device-use function is granted as (its signature).
pub const RECORD_DEVICE_USE: &str = "mail_record_device_use(text, text, text, text)";

fn views(backend: DatabaseBackend) -> [String; 2] {
    // sqlx keeps SQLite timestamps as RFC 3339 text: compare them as instants.
    let (now, expires_at, t_expires_at) = match backend {
        DatabaseBackend::Postgres => ("now()", "d.expires_at", "t.expires_at"),
        _ => (
            "julianday('now')",
            "julianday(d.expires_at)",
            "julianday(t.expires_at)",
        ),
    };
    [
        // A device password that may log in now, with the protocols it still opens: reading
        // needs a mailbox, sending an address that sends and the holder's `send_email`.
        format!(
            "CREATE VIEW mail_device_passwords AS \
             SELECT h.address, d.public_id, d.password_hash, \
                    d.imap AND h.kind IN {RECEIVING} AS imap, \
                    d.pop3 AND h.kind IN {RECEIVING} AS pop3, \
                    d.smtp AND h.kind IN {SENDING} AND (a.permissions & {SEND_EMAIL_BIT}) <> 0 AS smtp \
             FROM device_passwords d \
             JOIN mail_hosted_addresses h ON h.id = d.address_id \
             JOIN accesses a ON a.address_id = d.address_id AND a.account_id = d.account_id \
             WHERE d.expires_at IS NULL OR {expires_at} > {now}"
        ),
        // A mailbox token that may log in now, with what it still allows.
        format!(
            "CREATE VIEW mail_tokens AS \
             SELECT h.address, t.token_hash, \
                    t.imap AND h.kind IN {RECEIVING} AS imap, \
                    t.smtp AND h.kind IN {SENDING} AND (a.permissions & {SEND_EMAIL_BIT}) <> 0 AS smtp \
             FROM mailbox_tokens t \
             JOIN mail_hosted_addresses h ON h.id = t.address_id \
             JOIN accesses a ON a.address_id = t.address_id AND a.account_id = t.account_id \
             WHERE {t_expires_at} > {now}"
        ),
    ]
}

/// Records a device password's last use after Dovecot accepted it (README: "last used"):
/// at most one write per device every 30 s unless the client address or the protocol
/// changed. Runs with its owner's rights so that the calling role needs nothing but EXECUTE.
const RECORD_DEVICE_USE_SQL: &str = "\
CREATE FUNCTION mail_record_device_use(p_address text, p_public_id text, p_ip text, p_service text) \
RETURNS text LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$ \
  UPDATE device_passwords d \
     SET last_used_at = now(), last_used_ip = left(NULLIF(p_ip, ''), 64), last_used_protocol = p_service \
    FROM addresses a \
   WHERE a.id = d.address_id AND a.address = p_address AND d.public_id = p_public_id \
     AND p_service IN ('imap', 'pop3', 'smtp') \
     AND (d.last_used_at IS NULL OR d.last_used_at < now() - interval '30 seconds' \
          OR d.last_used_ip IS DISTINCT FROM left(NULLIF(p_ip, ''), 64) \
          OR d.last_used_protocol IS DISTINCT FROM p_service); \
  SELECT p_address; \
$$";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let access_key = (DevicePasswords::AddressId, DevicePasswords::AccountId);
        manager
            .create_table(
                Table::create()
                    .table(DevicePasswords::Table)
                    .col(pk_uuid(DevicePasswords::Id))
                    .col(string_len_uniq(DevicePasswords::PublicId, 8))
                    .col(uuid(DevicePasswords::AddressId))
                    .col(uuid(DevicePasswords::AccountId))
                    .col(string_len(DevicePasswords::Label, 64))
                    .col(boolean(DevicePasswords::Imap))
                    .col(boolean(DevicePasswords::Pop3))
                    .col(boolean(DevicePasswords::Smtp))
                    .col(text(DevicePasswords::PasswordHash))
                    .col(timestamp_with_time_zone(DevicePasswords::CreatedAt))
                    .col(timestamp_with_time_zone_null(DevicePasswords::ExpiresAt))
                    .col(timestamp_with_time_zone_null(DevicePasswords::LastUsedAt))
                    .col(string_len_null(DevicePasswords::LastUsedIp, 64))
                    .col(string_null(DevicePasswords::LastUsedProtocol))
                    .check((
                        "device_passwords_protocols_check",
                        Expr::cust("imap OR pop3 OR smtp"),
                    ))
                    .check((
                        "device_passwords_last_used_protocol_check",
                        Expr::cust(
                            "last_used_protocol IS NULL \
                             OR last_used_protocol IN ('imap', 'pop3', 'smtp')",
                        ),
                    ))
                    // Removing the access (or the address, or the account) removes its
                    // device passwords.
                    .foreign_key(
                        ForeignKey::create()
                            .from(DevicePasswords::Table, access_key)
                            .to(Accesses::Table, (Accesses::AddressId, Accesses::AccountId))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_device_passwords_access")
                    .table(DevicePasswords::Table)
                    .col(DevicePasswords::AddressId)
                    .col(DevicePasswords::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MailboxTokens::Table)
                    .col(string_len(MailboxTokens::TokenHash, 64).primary_key())
                    .col(uuid(MailboxTokens::AddressId))
                    .col(uuid(MailboxTokens::AccountId))
                    .col(boolean(MailboxTokens::Imap))
                    .col(boolean(MailboxTokens::Smtp))
                    .col(timestamp_with_time_zone(MailboxTokens::CreatedAt))
                    .col(timestamp_with_time_zone(MailboxTokens::ExpiresAt))
                    .check(("mailbox_tokens_scopes_check", Expr::cust("imap OR smtp")))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                MailboxTokens::Table,
                                (MailboxTokens::AddressId, MailboxTokens::AccountId),
                            )
                            .to(Accesses::Table, (Accesses::AddressId, Accesses::AccountId))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_mailbox_tokens_access", MailboxTokens::AddressId),
            ("idx_mailbox_tokens_expires_at", MailboxTokens::ExpiresAt),
        ] {
            let mut index = Index::create();
            index.name(name).table(MailboxTokens::Table).col(column);
            if name == "idx_mailbox_tokens_access" {
                index.col(MailboxTokens::AccountId);
            }
            manager.create_index(index.to_owned()).await?;
        }
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        for sql in views(backend) {
            db.execute_unprepared(&sql).await?;
        }
        if backend == DatabaseBackend::Postgres {
            db.execute_unprepared(RECORD_DEVICE_USE_SQL).await?;
            // Functions are executable by PUBLIC by default.
            db.execute_unprepared(&format!(
                "REVOKE ALL ON FUNCTION {RECORD_DEVICE_USE} FROM PUBLIC"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {RECORD_DEVICE_USE}"))
                .await?;
        }
        db.execute_unprepared("DROP VIEW IF EXISTS mail_tokens")
            .await?;
        db.execute_unprepared("DROP VIEW IF EXISTS mail_device_passwords")
            .await?;
        manager
            .drop_table(Table::drop().table(MailboxTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DevicePasswords::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum DevicePasswords {
    Table,
    Id,
    PublicId,
    AddressId,
    AccountId,
    Label,
    Imap,
    Pop3,
    Smtp,
    PasswordHash,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    LastUsedIp,
    LastUsedProtocol,
}

#[derive(DeriveIden)]
enum MailboxTokens {
    Table,
    TokenHash,
    AddressId,
    AccountId,
    Imap,
    Smtp,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Accesses {
    Table,
    AddressId,
    AccountId,
}
