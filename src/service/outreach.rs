//! E-mails an organization's actions send to an address one of its members typed: forward
//! confirmations, invitations onto an address and invitations to join. They are limited per
//! recipient (whatever organization sends them) and per organization over a sliding window,
//! so that Postier cannot be used to mail-bomb an address (docs/limits.md "Outreach e-mails").
//! Counted in the database like the throttles (`repo::counters`), inside the unit of work that
//! queues the e-mails: a refused or failed change rolls its count back with it.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::counters;
use crate::service::UnitOfWork;

fn recipient_key(recipient: &str) -> String {
    format!("outreach:to:{}", recipient.to_lowercase())
}

fn organization_key(organization_id: Uuid) -> String {
    format!("outreach:org:{organization_id}")
}

/// Counts e-mails about to go from `organization_id` to `recipients` (one each; a recipient
/// named twice counts twice); 429 `too_many_requests` with `Retry-After` when a recipient or
/// the organization would pass its limit. Call once per unit of work, before queueing them:
/// the counter rows stay locked until it commits (PostgreSQL), taken in one statement in key
/// order so that two units of work cannot wait for each other.
pub(crate) async fn count(
    uow: &UnitOfWork<'_>,
    organization_id: Uuid,
    recipients: &[&str],
) -> ApiResult<()> {
    if recipients.is_empty() {
        return Ok(());
    }
    let cfg = &uow.state().config.outreach;
    let window = i64::try_from(cfg.window_secs).unwrap_or(i64::MAX / 2);
    let now = uow.now();
    let mut deltas: BTreeMap<String, (i64, u32)> = BTreeMap::new();
    let sent = i64::try_from(recipients.len()).unwrap_or(i64::MAX);
    deltas.insert(
        organization_key(organization_id),
        (sent, cfg.per_organization),
    );
    for recipient in recipients {
        deltas
            .entry(recipient_key(recipient))
            .or_insert((0, cfg.per_recipient))
            .0 += 1;
    }
    let bucket = counters::bucket_of(now);
    let rows: Vec<(String, i64, i64)> = deltas
        .iter()
        .map(|(key, (n, _))| (key.clone(), bucket, *n))
        .collect();
    counters::add_many(uow.tx(), &rows).await?;
    for (key, (_, limit)) in &deltas {
        let seen = counters::window(uow.tx(), key, now, window).await?;
        if seen.total > i64::from(*limit) {
            let retry = seen.frees_in_secs(now, window).unwrap_or(window);
            let retry = u64::try_from(retry).unwrap_or(1);
            let detail = match key.strip_prefix("outreach:to:") {
                Some(recipient) => format!(
                    "{recipient} was sent {limit} confirmation or invitation e-mails within {} minutes, the most allowed; retry in {retry} seconds",
                    window / 60
                ),
                None => format!(
                    "this organization sent {limit} confirmation or invitation e-mails within {} minutes, the most allowed; retry in {retry} seconds",
                    window / 60
                ),
            };
            // The unit of work is dropped with this error: the counts above roll back.
            return Err(ApiError::new(ErrorCode::TooManyRequests, detail).with_retry_after(retry));
        }
    }
    Ok(())
}
