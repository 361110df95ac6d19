//! The Postfix policy service (docs/limits.md "Sending limits"): where sending limits are enforced. Postfix asks it,
//! over the policy delegation protocol, at `RCPT`, `DATA` and `END-OF-MESSAGE` of every
//! authenticated submission whether to accept (`DUNNO`), reject (`REJECT 5.x.x`) or defer
//! (`DEFER 4.x.x`). Also answers the API's question "how much has this address sent?"
//! ([`usage`]). Must not serve HTTP nor change anything but sending counts.
//!
//! - [`protocol`]: the wire format (bounded parser, reply formatter);
//! - [`decide`]: the rules, the fail mode, where counting happens;
//! - [`clients`]: who may connect (the MTAs' networks, a cap per client);
//! - [`cache`]: the in-memory state and its lifetimes (logins 5 s, 24 h totals 2 s);
//! - [`recorder`]: the single writer that group-commits counts;
//! - [`server`]: the TCP listener started by `startup` when `POSTIER_POLICY_LISTEN` is set.
//!
//! Counts live in the `counters` table under `send:<address id>`, one row per minute with
//! recipients, so that restarts and every instance share them (docs/architecture.md "Stateless instances"); the 24 h budget is
//! the sum of the last 1440 buckets.

pub mod cache;
pub(crate) mod clients;
pub(crate) mod decide;
pub(crate) mod protocol;
pub(crate) mod recorder;
pub mod server;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub use decide::{counter_key, normalise, Engine};
pub use protocol::{Action, Request, Stage};
pub use server::PolicyServer;

use crate::domain::{AddressKind, Pack};
use crate::repo::{counters, sending};
use cache::{Budget, Sender, WINDOW_SECS};

/// An address's sending limits and what it sent over the sliding 24 h.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SendingUsage {
    /// The pack of the address's mail service, which sets the limits.
    pub pack: Pack,
    /// Whether the address may send at all (a catchall may not).
    pub can_send: bool,
    /// Most recipients per message, To + Cc + Bcc.
    pub recipients_per_message: u32,
    /// Most messages per sliding 24 h, each recipient of each message counting once.
    pub messages_per_24h: u32,
    /// Recipients counted over the last 24 h.
    pub sent_last_24h: u64,
    /// What is left of `messages_per_24h` now.
    pub remaining: u64,
    /// When the oldest counted recipients leave the 24 h window (and `remaining` grows);
    /// `null` when nothing is counted.
    pub frees_at: Option<DateTime<Utc>>,
}

/// The sending limits and usage of the address `address_id` at `now`, read from the database
/// (what every instance sees). `DbErr::RecordNotFound` when no such address exists.
pub async fn usage(
    db: &impl ConnectionTrait,
    address_id: Uuid,
    now: DateTime<Utc>,
) -> Result<SendingUsage, DbErr> {
    let identity = sending::find_by_id(db, address_id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("address {address_id}")))?;
    let sender = Sender::new(identity);
    let first = counters::first_bucket(now, WINDOW_SECS);
    let mut budget = Budget::default();
    budget.load(
        counters::buckets(db, &counter_key(address_id), first).await?,
        now,
    );
    let sent = u64::try_from(budget.total()).unwrap_or(0);
    Ok(SendingUsage {
        pack: sender.pack,
        can_send: sender.kind != AddressKind::Catchall,
        recipients_per_message: sender.recipients_per_message,
        messages_per_24h: sender.recipients_per_24h,
        sent_last_24h: sent,
        remaining: u64::from(sender.recipients_per_24h).saturating_sub(sent),
        frees_at: budget.oldest_bucket().and_then(cache::leaves_window_at),
    })
}
