//! All database access. Functions take `&impl ConnectionTrait` so that they run on the pool
//! or inside a caller's transaction alike; they return entities or plain values, never HTTP.

pub(crate) mod account_tokens;
pub mod accounts;
pub mod addresses;
pub(crate) mod api_tokens;
pub(crate) mod batch;
pub mod counters;
pub mod events;
pub(crate) mod idempotency_keys;
pub(crate) mod mail_clients;
pub mod mail_services;
pub(crate) mod member_invitations;
pub(crate) mod organizations;
pub(crate) mod outbox;
pub(crate) mod second_factors;
pub(crate) mod sending;
pub(crate) mod sessions;
pub(crate) mod sharing;
pub(crate) mod webhooks;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sea_orm::sea_query::{Alias, Expr, SelectStatement};
use sea_orm::{Condition, ConnectionTrait, DbErr, EntityTrait, IdenStatic, Iterable, QueryFilter};

use crate::error::ApiError;

/// Reads the row of `E` that `which` selects (one at most), locked until the transaction
/// `conn` ends: a change decided on this row (a precondition, a limit) cannot be overtaken
/// by a concurrent one. The lock is an `UPDATE` of `column` to itself, the form every engine
/// of docs/distributed.md accepts (as `mail_services::lock` and `webhooks::find_for_update`
/// do); on SQLite the write transaction holds the database lock already. `None` when no row
/// matches.
pub(crate) async fn find_locked<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    column: E::Column,
    which: Condition,
) -> Result<Option<E::Model>, DbErr> {
    let locked = E::update_many()
        .col_expr(column, Expr::col(column))
        .filter(which.clone())
        .exec(conn)
        .await?;
    if locked.rows_affected == 0 {
        return Ok(None);
    }
    E::find().filter(which).one(conn).await
}

/// Selects every column of `E` as `<prefix><column>`, so that one joined query brings back
/// several models, each read with `FromQueryResult::from_query_result(&row, prefix)`. Every
/// query is a round trip to a database thread or server: the authorization of a request
/// reads its resource, its service, the caller's role and access in one.
pub fn select_prefixed<E: EntityTrait + Default>(query: &mut SelectStatement, prefix: &str) {
    for column in E::Column::iter() {
        query.expr_as(
            Expr::col((E::default(), column)),
            Alias::new(format!("{prefix}{}", column.as_str())),
        );
    }
}

/// Default page size of every list (docs/limits.md "Pagination"). The largest, 200, is
/// declared on each query type (`validate` and `param` attributes take literals).
pub const DEFAULT_LIMIT: u64 = 50;

/// Opaque cursors: base64url of the sort key of the last item returned.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid_field("cursor", "is not a cursor returned by this list"))
}

/// A cursor holding a UUID (lists ordered by time-ordered ids).
pub fn decode_uuid_cursor(cursor: &str) -> Result<uuid::Uuid, ApiError> {
    decode_cursor(cursor)?
        .parse()
        .map_err(|_| ApiError::invalid_field("cursor", "is not a cursor returned by this list"))
}
