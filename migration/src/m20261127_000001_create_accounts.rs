//! Accounts, organizations and their members, sessions with their refresh tokens, sliding
//! window counters, instance-wide settings and SQLite's write gate.

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
                    .table(WriteGate::Table)
                    .col(integer(WriteGate::Id).primary_key())
                    .col(big_integer(WriteGate::N))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(WriteGate::Table)
                    .columns([WriteGate::Id, WriteGate::N])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(string(Settings::Key).primary_key())
                    .col(text(Settings::Value))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(pk_uuid(Accounts::Id))
                    .col(super::bytewise(manager, string_uniq(Accounts::Login)))
                    .col(string_null(Accounts::DisplayName))
                    .col(string(Accounts::PasswordHash))
                    .col(timestamp_with_time_zone(Accounts::PasswordChangedAt))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(pk_uuid(Organizations::Id))
                    .col(string(Organizations::Name))
                    .col(boolean(Organizations::Personal))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(uuid(Memberships::OrganizationId))
                    .col(uuid(Memberships::AccountId))
                    .col(string(Memberships::Role))
                    .col(timestamp_with_time_zone(Memberships::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Memberships::OrganizationId)
                            .col(Memberships::AccountId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_memberships_account")
                    .table(Memberships::Table)
                    .col(Memberships::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(pk_uuid(Sessions::Id))
                    .col(uuid(Sessions::AccountId))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .col(timestamp_with_time_zone(Sessions::AuthTime))
                    .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                    .col(string_null(Sessions::RevokedReason))
                    .col(string_null(Sessions::Ip))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_account")
                    .table(Sessions::Table)
                    .col(Sessions::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(string(RefreshTokens::TokenHash).primary_key())
                    .col(uuid(RefreshTokens::SessionId))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_session")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .col(string(Counters::Key))
                    .col(big_integer(Counters::Bucket))
                    .col(big_integer(Counters::Count))
                    .primary_key(Index::create().col(Counters::Key).col(Counters::Bucket))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_counters_bucket")
                    .table(Counters::Table)
                    .col(Counters::Bucket)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Counters::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Memberships::Table.into_iden(),
            Organizations::Table.into_iden(),
            Accounts::Table.into_iden(),
            Settings::Table.into_iden(),
            WriteGate::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WriteGate {
    Table,
    Id,
    N,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
}

#[derive(DeriveIden)]
pub enum Accounts {
    Table,
    Id,
    Login,
    DisplayName,
    PasswordHash,
    PasswordChangedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum Organizations {
    Table,
    Id,
    Name,
    Personal,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    OrganizationId,
    AccountId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    AccountId,
    CreatedAt,
    ExpiresAt,
    AuthTime,
    RevokedAt,
    RevokedReason,
    Ip,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    SessionId,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Key,
    Bucket,
    Count,
}
