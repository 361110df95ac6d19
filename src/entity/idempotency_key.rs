use sea_orm::entity::prelude::*;

/// The first answer to a creating POST sent with an `Idempotency-Key` (docs/idempotency.md):
/// the key as its SHA-256, the request's fingerprint, and the answer sealed. No `status` yet:
/// the request is in progress (until `expires_at`, a short lease).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_hash: String,
    /// SHA-256 of the method, path, query and body.
    pub fingerprint: String,
    pub status: Option<i16>,
    /// The sealed answer (status, replayed headers, body).
    pub response: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
