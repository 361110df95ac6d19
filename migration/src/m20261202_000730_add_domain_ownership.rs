//! Domain ownership (`POSTIER_DOMAIN_OWNERSHIP`, docs/decisions.md "Domains are proven before
//! they count"): `domains.ownership_token`, the value of the TXT record Postier chose for that
//! service and domain, and `domains.proven_at`, when the live DNS check found it (or when the
//! domain was linked, with `trust`). Domains linked before this migration were accepted
//! without proof and keep working: they count as proven at their creation.
//!
//! The mail views now route mail only for proven customer domains: `mail_hosted_addresses`
//! (which every other view reads), `mail_domains`, and the alias parts of `mail_aliases` and
//! `mail_senders` (an alias on a pending domain counts no more than an address) are redefined
//! with the same columns, by
//! `CREATE OR REPLACE VIEW` on PostgreSQL (dependent views and the mail role's grants stay)
//! and by dropping and creating them on SQLite (which resolves views when queried).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn mailbox_id(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "replace(CAST(a.id AS text), '-', '')",
        _ => "lower(hex(a.id))",
    }
}

/// Kinds that have a mailbox (as in m20261128_000001).
const RECEIVING: &str = "('personal', 'shared', 'catchall')";
/// Kinds that may send (as in m20261128_000001).
const SENDING: &str = "('personal', 'shared', 'no_reply')";

/// `mail_aliases` and `mail_senders` of m20261128_000001, with `alias_counts` a condition on
/// the alias `l` (empty: none).
fn alias_views(alias_counts: &str) -> [(&'static str, String); 2] {
    [
        (
            "mail_aliases",
            format!(
                "SELECT a.address AS source, a.address AS destination \
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
                   WHERE a.kind IN ('personal', 'shared'){alias_counts} \
                 UNION ALL \
                 SELECT '@' || domain, address FROM mail_hosted_addresses WHERE kind = 'catchall'"
            ),
        ),
        (
            "mail_senders",
            format!(
                "SELECT address AS sender, address AS login \
                   FROM mail_hosted_addresses WHERE kind IN {SENDING} \
                 UNION ALL \
                 SELECT l.alias, a.address FROM aliases l \
                   JOIN mail_hosted_addresses a ON a.id = l.address_id \
                   WHERE a.kind IN {SENDING}{alias_counts}"
            ),
        ),
    ]
}

/// An alias counts when its domain is hosted (`mail_domains`: proven or the free domain).
fn alias_domain_counts(backend: DatabaseBackend) -> String {
    let position = match backend {
        DatabaseBackend::Postgres => "strpos",
        _ => "instr",
    };
    format!(
        " AND EXISTS (SELECT 1 FROM mail_domains md \
                      WHERE md.domain = substr(l.alias, {position}(l.alias, '@') + 1))"
    )
}

/// The four views, with `proven` the condition a customer domain row `d` must meet.
fn views(backend: DatabaseBackend, proven: &str) -> Vec<(&'static str, String)> {
    let mailbox_id = mailbox_id(backend);
    let mut views = vec![
        // Addresses on a proven customer domain of their own service, or on the provider's
        // free domain (a service's main domain without a customer domain row).
        (
            "mail_hosted_addresses",
            format!(
                "SELECT a.id, a.address, a.domain, a.kind, a.password_hash, {mailbox_id} AS mailbox_id \
                 FROM addresses a \
                 WHERE EXISTS (SELECT 1 FROM domains d \
                               WHERE d.name = a.domain AND d.mail_service_id = a.mail_service_id{proven}) \
                    OR EXISTS (SELECT 1 FROM mail_services s \
                               WHERE s.id = a.mail_service_id AND s.domain = a.domain \
                                 AND NOT EXISTS (SELECT 1 FROM domains d WHERE d.name = s.domain))"
            ),
        ),
        (
            "mail_domains",
            format!(
                "SELECT d.name AS domain FROM domains d WHERE 1 = 1{proven} \
                 UNION \
                 SELECT s.domain FROM mail_services s \
                 WHERE NOT EXISTS (SELECT 1 FROM domains d WHERE d.name = s.domain)"
            ),
        ),
    ];
    views.extend(alias_views(&alias_domain_counts(backend)));
    views
}

/// The definitions of migration m20261128_000001, restored by `down`.
fn old_views(backend: DatabaseBackend) -> Vec<(&'static str, String)> {
    let mailbox_id = mailbox_id(backend);
    let mut views = vec![
        (
            "mail_hosted_addresses",
            format!(
                "SELECT a.id, a.address, a.domain, a.kind, a.password_hash, {mailbox_id} AS mailbox_id \
                 FROM addresses a \
                 WHERE EXISTS (SELECT 1 FROM domains d \
                               WHERE d.name = a.domain AND d.mail_service_id = a.mail_service_id) \
                    OR EXISTS (SELECT 1 FROM mail_services s \
                               WHERE s.id = a.mail_service_id AND s.domain = a.domain)"
            ),
        ),
        (
            "mail_domains",
            "SELECT name AS domain FROM domains UNION SELECT domain FROM mail_services".into(),
        ),
    ];
    views.extend(alias_views(""));
    views
}

async fn replace_views(
    manager: &SchemaManager<'_>,
    views: Vec<(&'static str, String)>,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for (name, select) in views {
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared(&format!("CREATE OR REPLACE VIEW {name} AS {select}"))
                    .await?;
            }
            _ => {
                db.execute_unprepared(&format!("DROP VIEW IF EXISTS {name}"))
                    .await?;
                db.execute_unprepared(&format!("CREATE VIEW {name} AS {select}"))
                    .await?;
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Domains::Table)
                    .add_column(ColumnDef::new(Domains::OwnershipToken).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Domains::Table)
                    .add_column(
                        ColumnDef::new(Domains::ProvenAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE domains SET proven_at = created_at")
            .await?;
        replace_views(
            manager,
            views(
                manager.get_database_backend(),
                " AND d.proven_at IS NOT NULL",
            ),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_views(manager, old_views(manager.get_database_backend())).await?;
        for column in [Domains::ProvenAt, Domains::OwnershipToken] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Domains::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    OwnershipToken,
    ProvenAt,
}
