//! The delivery worker, one in every instance: it claims due deliveries with a lease (so two
//! instances never send the same attempt at once, and a crashed instance's claims run out
//! and are taken over), sends up to `POSTIER_WEBHOOK_CONCURRENCY` at a time, records every
//! attempt, retries with exponential backoff and jitter for `POSTIER_WEBHOOK_RETRY_HOURS`,
//! and disables an endpoint that has failed without a success for
//! `POSTIER_WEBHOOK_DISABLE_AFTER_HOURS`, telling its organization's owners by e-mail
//! (through the outbox). Woken at once after a commit that queued deliveries; polls for the
//! ones other instances queued.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::domain::{DeliveryStatus, WebhookDisabledReason, WebhookSecret};
use crate::entity::{webhook, webhook_delivery};
use crate::error::{ApiError, ApiResult};
use crate::repo::{self, events::Actor, events::Scope, webhooks::AttemptResult};
use crate::service::audit::Change;
use crate::service::UnitOfWork;
use crate::state::AppState;
use crate::webhooks::sender::{Message, Outcome, Sender};
use crate::webhooks::signature;
use crate::webhooks::target::TargetPolicy;

const POLL: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Finished deliveries (and their attempts) are kept this long.
pub(crate) const KEEP_DAYS: i64 = 30;

/// Runs until the process stops.
pub(crate) async fn run(state: web::Data<AppState>) {
    let config = state.config.clone();
    let policy = Arc::new(TargetPolicy::from_config(&config));
    let timeout = Duration::from_secs(config.webhook_timeout_secs);
    let sender = match Sender::new(policy, timeout) {
        Ok(sender) => Arc::new(sender),
        Err(e) => {
            tracing::error!(error = %e, "the webhook sender cannot start; deliveries wait");
            return;
        }
    };
    // A lease outlives the longest attempt; once it runs out (the instance died) another
    // instance takes the delivery over.
    let lease =
        chrono::Duration::seconds(i64::try_from(config.webhook_timeout_secs).unwrap_or(10) + 5);
    let concurrency = config.webhook_concurrency.max(1);
    let mut in_flight = JoinSet::new();
    let mut pruned = Instant::now();
    loop {
        let free = concurrency - in_flight.len().min(concurrency);
        // Claim in batches rather than one row per finished attempt.
        if free > 0 && (in_flight.is_empty() || free * 4 >= concurrency) {
            match claim(&state, free, lease).await {
                Ok(batch) => {
                    for claimed in batch {
                        in_flight.spawn(attempt(state.clone(), sender.clone(), claimed));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
            }
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            let before = state.clock.now() - chrono::Duration::days(KEEP_DAYS);
            if let Err(e) = repo::webhooks::prune(&state.db, before).await {
                tracing::warn!(error = %e, "pruning webhook deliveries failed");
            }
        }
        let full = in_flight.len() >= concurrency;
        tokio::select! {
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = state.webhook_wake.notified(), if !full => {}
            _ = tokio::time::sleep(POLL), if !full => {}
        }
    }
}

struct Claimed {
    delivery: webhook_delivery::Model,
    webhook: webhook::Model,
    lease: Uuid,
}

async fn claim(
    state: &AppState,
    limit: usize,
    lease_for: chrono::Duration,
) -> Result<Vec<Claimed>, sea_orm::DbErr> {
    let now = state.clock.now();
    let lease = Uuid::new_v4();
    let limit = u64::try_from(limit).unwrap_or(1);
    let deliveries =
        repo::webhooks::claim_due(&state.db, now, now + lease_for, lease, limit).await?;
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<Uuid> = deliveries.iter().map(|d| d.webhook_id).collect();
    ids.sort();
    ids.dedup();
    let webhooks = repo::webhooks::find_many(&state.db, ids).await?;
    Ok(deliveries
        .into_iter()
        .filter_map(|delivery| {
            let webhook = webhooks
                .iter()
                .find(|w| w.id == delivery.webhook_id)?
                .clone();
            Some(Claimed {
                delivery,
                webhook,
                lease,
            })
        })
        .collect())
}

/// The secrets that sign now: the current one, and the previous one in its grace period.
fn signing_secrets(webhook: &webhook::Model, now: DateTime<Utc>) -> Vec<&WebhookSecret> {
    let mut secrets = vec![&webhook.secret];
    if let (Some(previous), Some(until)) =
        (&webhook.previous_secret, webhook.previous_secret_expires_at)
    {
        if until > now {
            secrets.push(previous);
        }
    }
    secrets
}

async fn attempt(state: web::Data<AppState>, sender: Arc<Sender>, claimed: Claimed) {
    let delivery_id = claimed.delivery.id;
    if let Err(e) = attempt_and_record(&state, &sender, claimed).await {
        tracing::warn!(%delivery_id, error = %e, "recording a webhook attempt failed; the lease will run out and it is retried");
    }
}

async fn attempt_and_record(state: &AppState, sender: &Sender, claimed: Claimed) -> ApiResult<()> {
    let Claimed {
        delivery,
        webhook,
        lease,
    } = claimed;
    let started = state.clock.now();
    let timestamp = started.timestamp();
    let message_id = delivery.message_id.to_string();
    let signature = signature::header(
        &signing_secrets(&webhook, started),
        &message_id,
        timestamp,
        &delivery.payload,
    );
    let outcome = sender
        .send(&Message {
            url: &webhook.url,
            message_id: &message_id,
            timestamp,
            signature: &signature,
            body: &delivery.payload,
        })
        .await;
    let now = state.clock.now();
    let result = next_step(state, &delivery, &outcome, now);
    let delivered = outcome.delivered();
    tracing::debug!(delivery_id = %delivery.id, status = ?outcome.status, delivered, "webhook attempt");
    let mut uow = UnitOfWork::begin(state).await?;
    // The endpoint's row first, then its delivery's: the order a deletion takes them in
    // (its row, then the cascade), so an attempt recorded while the endpoint is deleted
    // waits instead of deadlocking. Once deleted, the delivery went with it.
    let Some(webhook) = repo::webhooks::find_for_update(uow.tx(), webhook.id).await? else {
        return Ok(());
    };
    repo::webhooks::insert_attempt(
        uow.tx(),
        repo::webhooks::NewAttempt {
            delivery_id: delivery.id,
            attempted_at: started,
            status_code: outcome.status.map(i32::from),
            duration_ms: outcome.duration_ms,
            response_excerpt: outcome.excerpt,
            error: outcome.error,
        },
    )
    .await?;
    repo::webhooks::finish_attempt(uow.tx(), delivery.id, lease, result).await?;
    if delivered {
        if webhook.failing_since.is_some() {
            repo::webhooks::set_failing_since(uow.tx(), webhook.id, None).await?;
        }
    } else {
        failed(&mut uow, webhook, now).await?;
    }
    uow.commit().await
}

/// Where the delivery goes after this outcome: done, given up at the end of the retry
/// window (one attempt at least after it), or retried later.
fn next_step(
    state: &AppState,
    delivery: &webhook_delivery::Model,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> AttemptResult {
    let attempts = delivery.attempts.saturating_add(1);
    let code = outcome.status.map(i32::from);
    let window =
        chrono::Duration::hours(i64::try_from(state.config.webhook_retry_hours).unwrap_or(24));
    let (status, next_attempt_at, finished_at) = if outcome.delivered() {
        (DeliveryStatus::Delivered, now, Some(now))
    } else if now >= delivery.created_at + window {
        (DeliveryStatus::Failed, now, Some(now))
    } else {
        (DeliveryStatus::Pending, now + backoff(attempts), None)
    };
    AttemptResult {
        status,
        attempts,
        next_attempt_at,
        last_status_code: code,
        finished_at,
    }
}

/// 5 s after the first failure, doubling up to 3 h; "equal jitter" (half the delay fixed,
/// half random) spreads the retries of many deliveries that failed together.
pub(crate) fn backoff(attempts: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    let ceiling = (5_i64 << exponent).min(3 * 3600);
    let half = ceiling / 2;
    let secs = half + rand::thread_rng().gen_range(0..=ceiling - half);
    chrono::Duration::seconds(secs.max(1))
}

/// A failed attempt: starts the endpoint's failing streak, and disables it once the streak
/// is older than the configured hours (its owners are e-mailed, in the same transaction).
/// `webhook` is the endpoint as locked in `uow`.
async fn failed(
    uow: &mut UnitOfWork<'_>,
    mut webhook: webhook::Model,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let Some(since) = webhook.failing_since else {
        repo::webhooks::set_failing_since(uow.tx(), webhook.id, Some(now)).await?;
        return Ok(());
    };
    let state = uow.state();
    let limit = chrono::Duration::hours(
        i64::try_from(state.config.webhook_disable_after_hours).unwrap_or(72),
    );
    if !webhook.enabled || now - since < limit {
        return Ok(());
    }
    webhook.enabled = false;
    webhook.disabled_reason = Some(WebhookDisabledReason::Failing);
    webhook.updated_at = now;
    repo::webhooks::update(uow.tx(), &webhook).await?;
    uow.record(
        &Actor::default(),
        Scope::organization(webhook.organization_id),
        Change::WebhookDisabled {
            webhook_id: webhook.id,
            url: webhook.url.clone(),
            failing_since: since,
        },
        &webhook.url,
    )
    .await?;
    let organization = repo::organizations::find(uow.tx(), webhook.organization_id)
        .await?
        .ok_or_else(|| ApiError::internal("a webhook without its organization"))?;
    let subject = format!("Webhook disabled: {}", webhook.url);
    let body = format!(
        "Hello,\n\nThe webhook endpoint {url} of {org} has failed every delivery since {since} \
         and Postier disabled it.\n\nIts deliveries wait. Once the receiver works again, try \
         it with POST /v1/webhooks/{id}/ping, then turn it back on with \
         PATCH /v1/webhooks/{id} {{\"enabled\": true}}: the waiting deliveries are then sent.\n\n\
         The attempts, with the answers received, are listed at \
         GET /v1/webhooks/{id}/deliveries.\n",
        url = webhook.url,
        org = organization.name,
        since = since.format("%Y-%m-%d %H:%M UTC"),
        id = webhook.id,
    );
    for owner in repo::organizations::owner_logins(uow.tx(), webhook.organization_id).await? {
        uow.send_mail(Some(webhook.organization_id), &owner, &subject, &body)
            .await?;
    }
    tracing::warn!(webhook_id = %webhook.id, %since, "webhook endpoint disabled after failing");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(1).num_seconds();
            assert!((2..=5).contains(&first), "{first}");
            let fourth = backoff(4).num_seconds();
            assert!((20..=40).contains(&fourth), "{fourth}");
            let late = backoff(40).num_seconds();
            assert!((5400..=10800).contains(&late), "{late}");
        }
    }
}
