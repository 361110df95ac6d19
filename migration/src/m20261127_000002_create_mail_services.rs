//! Mail services and the customer domains they host (main and linked), with DKIM keys.
//! Free services live on the provider's shared domain and have no row in `domains`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261127_000001_create_accounts::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MailServices::Table)
                    .col(pk_uuid(MailServices::Id))
                    .col(uuid(MailServices::OrganizationId))
                    .col(string(MailServices::Pack))
                    .col(super::bytewise(manager, string(MailServices::Domain)))
                    .col(big_integer(MailServices::DefaultPermissions))
                    .col(big_integer(MailServices::Revision))
                    .col(timestamp_with_time_zone(MailServices::CreatedAt))
                    .col(timestamp_with_time_zone(MailServices::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MailServices::Table, MailServices::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_services_organization")
                    .table(MailServices::Table)
                    .col(MailServices::OrganizationId)
                    .col(MailServices::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Domains::Table)
                    .col(super::bytewise(manager, string(Domains::Name)).primary_key())
                    .col(uuid(Domains::MailServiceId))
                    .col(boolean(Domains::IsMain))
                    .col(string(Domains::DkimSelector))
                    .col(text(Domains::DkimPrivateKey))
                    .col(text(Domains::DkimPublicKey))
                    .col(timestamp_with_time_zone(Domains::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Domains::Table, Domains::MailServiceId)
                            .to(MailServices::Table, MailServices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_domains_mail_service")
                    .table(Domains::Table)
                    .col(Domains::MailServiceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Domains::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MailServices::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum MailServices {
    Table,
    Id,
    OrganizationId,
    Pack,
    Domain,
    DefaultPermissions,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Name,
    MailServiceId,
    IsMain,
    DkimSelector,
    DkimPrivateKey,
    DkimPublicKey,
    CreatedAt,
}
