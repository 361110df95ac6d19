//! Address settings (docs/resources.md) beyond aliases: the confirmation token of a forwarding
//! target, and the auto-reply, with `mail_auto_replies` for the mail servers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Forwards::Table)
                    .add_column(string_null(Forwards::TokenHash))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_forwards_token_hash")
                    .table(Forwards::Table)
                    .col(Forwards::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AutoReplies::Table)
                    .col(uuid(AutoReplies::AddressId).primary_key())
                    .col(boolean(AutoReplies::Enabled))
                    .col(string(AutoReplies::Subject))
                    .col(text(AutoReplies::Body))
                    .col(timestamp_with_time_zone_null(AutoReplies::StartsAt))
                    .col(timestamp_with_time_zone_null(AutoReplies::EndsAt))
                    .col(timestamp_with_time_zone(AutoReplies::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AutoReplies::Table, AutoReplies::AddressId)
                            .to(Addresses::Table, Addresses::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // What the mail servers' vacation handling reads: enabled auto-replies of hosted
        // addresses, with their optional period.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE VIEW mail_auto_replies AS \
                 SELECT h.address, r.subject, r.body, r.starts_at, r.ends_at \
                 FROM auto_replies r JOIN mail_hosted_addresses h ON h.id = r.address_id \
                 WHERE r.enabled",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP VIEW IF EXISTS mail_auto_replies")
            .await?;
        manager
            .drop_table(Table::drop().table(AutoReplies::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_forwards_token_hash")
                    .table(Forwards::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Forwards::Table)
                    .drop_column(Forwards::TokenHash)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Forwards {
    Table,
    TokenHash,
}

#[derive(DeriveIden)]
enum AutoReplies {
    Table,
    AddressId,
    Enabled,
    Subject,
    Body,
    StartsAt,
    EndsAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Addresses {
    Table,
    Id,
}
