//! Forwarding targets of an address (docs/resources.md "Forward"), e.g. from a bulk import's redirect column.
//! A target receives nothing until it confirms (`confirmed_at`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Forwards::Table)
                    .col(pk_uuid(Forwards::Id))
                    .col(uuid(Forwards::AddressId))
                    .col(string(Forwards::Target))
                    .col(boolean(Forwards::KeepCopy))
                    .col(timestamp_with_time_zone_null(Forwards::ConfirmedAt))
                    .col(timestamp_with_time_zone(Forwards::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Forwards::Table, Forwards::AddressId)
                            .to(Addresses::Table, Addresses::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_forwards_address_target")
                    .table(Forwards::Table)
                    .col(Forwards::AddressId)
                    .col(Forwards::Target)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Forwards::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Forwards {
    Table,
    Id,
    AddressId,
    Target,
    KeepCopy,
    ConfirmedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Addresses {
    Table,
    Id,
}
