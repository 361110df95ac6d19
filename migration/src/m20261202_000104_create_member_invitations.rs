//! `member_invitations`: an invitation to join an organization, sent to a login by e-mail
//! (with a single-use link whose SHA-256 only is kept) and listed to the account whose
//! verified login it is. Joining needs the invitee's consent; role and status are checked by
//! the schema like the other enumerated columns.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(column, allowed names)` of this table's enumerated columns (`domain::Role` and
/// `domain::InvitationStatus` without the derived `expired`; a unit test compares them).
pub const MEMBER_INVITATION_ENUMERATED: [(&str, &[&str]); 2] = [
    ("role", &["owner", "admin", "user"]),
    ("status", &["pending", "accepted", "declined", "revoked"]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let [(_, roles), (_, statuses)] = MEMBER_INVITATION_ENUMERATED;
        manager
            .create_table(
                Table::create()
                    .table(MemberInvitations::Table)
                    .col(pk_uuid(MemberInvitations::Id))
                    .col(uuid(MemberInvitations::OrganizationId))
                    .col(super::bytewise(manager, string(MemberInvitations::Login)))
                    .col(
                        string(MemberInvitations::Role)
                            .check(Expr::col(MemberInvitations::Role).is_in(roles.to_vec())),
                    )
                    .col(
                        string(MemberInvitations::Status)
                            .check(Expr::col(MemberInvitations::Status).is_in(statuses.to_vec())),
                    )
                    .col(string_uniq(MemberInvitations::TokenHash))
                    .col(timestamp_with_time_zone(MemberInvitations::ExpiresAt))
                    .col(uuid_null(MemberInvitations::CreatedBy))
                    .col(timestamp_with_time_zone(MemberInvitations::CreatedAt))
                    .col(timestamp_with_time_zone_null(MemberInvitations::AnsweredAt))
                    .col(uuid_null(MemberInvitations::AnsweredBy))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MemberInvitations::Table, MemberInvitations::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            (
                "idx_member_invitations_organization",
                MemberInvitations::OrganizationId,
            ),
            ("idx_member_invitations_login", MemberInvitations::Login),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(MemberInvitations::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MemberInvitations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MemberInvitations {
    Table,
    Id,
    OrganizationId,
    Login,
    Role,
    Status,
    TokenHash,
    ExpiresAt,
    CreatedBy,
    CreatedAt,
    AnsweredAt,
    AnsweredBy,
}
