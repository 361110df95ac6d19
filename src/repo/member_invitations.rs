//! Invitations to join an organization. Answering one is a conditional update on a pending,
//! unexpired row: true for exactly one caller.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::{InvitationStatus, Role};
use crate::entity::member_invitation;

pub(crate) struct NewMemberInvitation<'a> {
    pub organization_id: Uuid,
    pub login: &'a str,
    pub role: Role,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_by: Uuid,
}

pub(crate) async fn insert(
    conn: &impl ConnectionTrait,
    new: NewMemberInvitation<'_>,
    now: DateTime<Utc>,
) -> Result<member_invitation::Model, DbErr> {
    member_invitation::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(new.organization_id),
        login: Set(new.login.to_string()),
        role: Set(new.role),
        status: Set(InvitationStatus::Pending),
        token_hash: Set(new.token_hash),
        expires_at: Set(new.expires_at),
        created_by: Set(Some(new.created_by)),
        created_at: Set(now),
        answered_at: Set(None),
        answered_by: Set(None),
    }
    .insert(conn)
    .await
}

pub(crate) async fn find(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<member_invitation::Model>, DbErr> {
    member_invitation::Entity::find_by_id(id).one(conn).await
}

pub(crate) async fn find_by_token_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<member_invitation::Model>, DbErr> {
    member_invitation::Entity::find()
        .filter(member_invitation::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Whether a pending, unexpired invitation to `login` exists in the organization.
pub(crate) async fn has_pending(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    login: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(member_invitation::Entity::find()
        .filter(member_invitation::Column::OrganizationId.eq(organization_id))
        .filter(member_invitation::Column::Login.eq(login))
        .filter(member_invitation::Column::Status.eq(InvitationStatus::Pending))
        .filter(member_invitation::Column::ExpiresAt.gt(now))
        .one(conn)
        .await?
        .is_some())
}

/// Moves a pending, unexpired invitation to `status`; true for exactly one caller.
pub(crate) async fn answer(
    conn: &impl ConnectionTrait,
    id: Uuid,
    status: InvitationStatus,
    by: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    member_invitation::Entity::update_many()
        .col_expr(member_invitation::Column::Status, Expr::value(status))
        .col_expr(member_invitation::Column::AnsweredAt, Expr::value(now))
        .col_expr(member_invitation::Column::AnsweredBy, Expr::value(by))
        .filter(member_invitation::Column::Id.eq(id))
        .filter(member_invitation::Column::Status.eq(InvitationStatus::Pending))
        .filter(member_invitation::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Every invitation of an organization, ordered by id, after `after`.
pub(crate) async fn list_for_organization(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<member_invitation::Model>, DbErr> {
    let mut query = member_invitation::Entity::find()
        .filter(member_invitation::Column::OrganizationId.eq(organization_id));
    if let Some(after) = after {
        query = query.filter(member_invitation::Column::Id.gt(after));
    }
    query
        .order_by_asc(member_invitation::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Pending, unexpired invitations sent to `login`, ordered by id, after `after`.
pub(crate) async fn list_pending_for_login(
    conn: &impl ConnectionTrait,
    login: &str,
    now: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<member_invitation::Model>, DbErr> {
    let mut query = member_invitation::Entity::find()
        .filter(member_invitation::Column::Login.eq(login))
        .filter(member_invitation::Column::Status.eq(InvitationStatus::Pending))
        .filter(member_invitation::Column::ExpiresAt.gt(now));
    if let Some(after) = after {
        query = query.filter(member_invitation::Column::Id.gt(after));
    }
    query
        .order_by_asc(member_invitation::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}
