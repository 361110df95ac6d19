//! Addresses, their aliases, the accounts' accesses to them, invitations and share links.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261127_000001_create_accounts::Accounts;
use crate::m20261127_000002_create_mail_services::MailServices;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Addresses::Table)
                    .col(pk_uuid(Addresses::Id))
                    .col(uuid(Addresses::MailServiceId))
                    .col(super::bytewise(manager, string_uniq(Addresses::Address)))
                    .col(string(Addresses::LocalPart))
                    .col(string(Addresses::Domain))
                    .col(string(Addresses::Kind))
                    .col(string_null(Addresses::DisplayName))
                    .col(string_null(Addresses::PasswordHash))
                    .col(boolean(Addresses::Unified))
                    .col(uuid_null(Addresses::CreatedBy))
                    .col(timestamp_with_time_zone(Addresses::CreatedAt))
                    .col(timestamp_with_time_zone(Addresses::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Addresses::Table, Addresses::MailServiceId)
                            .to(MailServices::Table, MailServices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_addresses_service_address")
                    .table(Addresses::Table)
                    .col(Addresses::MailServiceId)
                    .col(Addresses::Address)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Aliases::Table)
                    .col(super::bytewise(manager, string(Aliases::Alias)).primary_key())
                    .col(uuid(Aliases::AddressId))
                    .col(timestamp_with_time_zone(Aliases::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Aliases::Table, Aliases::AddressId)
                            .to(Addresses::Table, Addresses::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_aliases_address")
                    .table(Aliases::Table)
                    .col(Aliases::AddressId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Accesses::Table)
                    .col(uuid(Accesses::AddressId))
                    .col(uuid(Accesses::AccountId))
                    .col(big_integer(Accesses::Permissions))
                    .col(string(Accesses::Origin))
                    .col(timestamp_with_time_zone(Accesses::CreatedAt))
                    .col(timestamp_with_time_zone(Accesses::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Accesses::AddressId)
                            .col(Accesses::AccountId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Accesses::Table, Accesses::AddressId)
                            .to(Addresses::Table, Addresses::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Accesses::Table, Accesses::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_accesses_account")
                    .table(Accesses::Table)
                    .col(Accesses::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(pk_uuid(Invitations::Id))
                    .col(uuid(Invitations::AddressId))
                    .col(uuid_null(Invitations::InviteeAccountId))
                    .col(string_null(Invitations::InviteeEmail))
                    .col(big_integer(Invitations::Permissions))
                    .col(string(Invitations::AccountBinding))
                    .col(string(Invitations::Status))
                    .col(string_null(Invitations::TokenHash).unique_key())
                    .col(timestamp_with_time_zone(Invitations::ExpiresAt))
                    .col(uuid_null(Invitations::CreatedBy))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    .col(timestamp_with_time_zone_null(Invitations::AnsweredAt))
                    .col(uuid_null(Invitations::AnsweredBy))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::AddressId)
                            .to(Addresses::Table, Addresses::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::InviteeAccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_invitations_address", Invitations::AddressId),
            ("idx_invitations_invitee", Invitations::InviteeAccountId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Invitations::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ShareLinks::Table)
                    .col(pk_uuid(ShareLinks::Id))
                    .col(uuid(ShareLinks::AddressId))
                    .col(string_uniq(ShareLinks::TokenHash))
                    .col(big_integer(ShareLinks::Permissions))
                    .col(timestamp_with_time_zone(ShareLinks::ExpiresAt))
                    .col(integer(ShareLinks::MaxUses))
                    .col(integer(ShareLinks::Uses))
                    .col(timestamp_with_time_zone_null(ShareLinks::RevokedAt))
                    .col(uuid_null(ShareLinks::CreatedBy))
                    .col(timestamp_with_time_zone(ShareLinks::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ShareLinks::Table, ShareLinks::AddressId)
                            .to(Addresses::Table, Addresses::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_share_links_address")
                    .table(ShareLinks::Table)
                    .col(ShareLinks::AddressId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ShareLinks::Table.into_iden(),
            Invitations::Table.into_iden(),
            Accesses::Table.into_iden(),
            Aliases::Table.into_iden(),
            Addresses::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Addresses {
    Table,
    Id,
    MailServiceId,
    Address,
    LocalPart,
    Domain,
    Kind,
    DisplayName,
    PasswordHash,
    Unified,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Aliases {
    Table,
    Alias,
    AddressId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accesses {
    Table,
    AddressId,
    AccountId,
    Permissions,
    Origin,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    AddressId,
    InviteeAccountId,
    InviteeEmail,
    Permissions,
    AccountBinding,
    Status,
    TokenHash,
    ExpiresAt,
    CreatedBy,
    CreatedAt,
    AnsweredAt,
    AnsweredBy,
}

#[derive(DeriveIden)]
enum ShareLinks {
    Table,
    Id,
    AddressId,
    TokenHash,
    Permissions,
    ExpiresAt,
    MaxUses,
    Uses,
    RevokedAt,
    CreatedBy,
    CreatedAt,
}
