//! `account_tokens`: the single-use secrets of an account's own flows (verifying its login,
//! changing it, resetting its password, the second step of a two-factor login). Only their
//! SHA-256 is stored; each has a purpose (checked by the schema), an expiry, and `used_at`
//! once spent. `email` is where the link was sent (the login to verify or to move to).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The purposes of account tokens (`domain::AccountTokenPurpose`; a unit test there
/// compares the two lists).
pub const ACCOUNT_TOKEN_PURPOSES: [&str; 4] = [
    "login_verification",
    "login_change",
    "password_reset",
    "second_factor_challenge",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountTokens::Table)
                    .col(pk_uuid(AccountTokens::Id))
                    .col(uuid(AccountTokens::AccountId))
                    .col(
                        string(AccountTokens::Purpose)
                            .check(Expr::col(AccountTokens::Purpose).is_in(ACCOUNT_TOKEN_PURPOSES)),
                    )
                    .col(string_uniq(AccountTokens::TokenHash))
                    .col(string_null(AccountTokens::Email))
                    .col(timestamp_with_time_zone(AccountTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(AccountTokens::UsedAt))
                    .col(timestamp_with_time_zone(AccountTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountTokens::Table, AccountTokens::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_tokens_account")
                    .table(AccountTokens::Table)
                    .col(AccountTokens::AccountId)
                    .col(AccountTokens::Purpose)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccountTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    Id,
    AccountId,
    Purpose,
    TokenHash,
    Email,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}
