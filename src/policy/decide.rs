//! The decision engine: one [`Request`] in, one [`Action`] out. Owns the rules of docs/limits.md "Sending limits" as
//! the policy service applies them, the in-memory state ([`super::cache`]), the database reads
//! and the fail mode. Knows nothing of sockets.
//!
//! Rules, keyed by the authenticated login (`sasl_username`, normalised):
//! 1. no login (inbound mail on port 25), a login that is not a hosted address, or a stage
//!    other than `MAIL`, `RCPT`, `DATA`, `END-OF-MESSAGE` → `DUNNO`;
//! 2. a catchall address → `REJECT 5.7.1` at every stage: it receives, it never sends;
//! 3. the envelope sender must be the address, one of its aliases, or `<>` → else
//!    `REJECT 5.7.1`;
//! 4. recipients per message: distinct recipients (normalised) counted per `instance` at
//!    `RCPT`; the one past the pack's limit is `REJECT 5.5.3`, and so is every later request of
//!    that transaction (`DATA`, `END-OF-MESSAGE`), so that nothing is delivered to the first
//!    ones. At `DATA`/`END-OF-MESSAGE` Postfix's `recipient_count` is checked too;
//! 5. the 24 h budget (each recipient counts): checked at `MAIL` (exhausted?), at `RCPT` (does
//!    this recipient, with those already accepted in the transaction, fit?) and at `DATA`;
//!    over it → `DEFER 4.7.1 … retry after <RFC 3339>`, the moment enough has left the window.
//!    The message's recipients are *added* once, at `END-OF-MESSAGE` (or at `DATA` with
//!    `POSTIER_POLICY_COUNT_AT=data`), atomically with a last check, and the answer waits
//!    until the count is written;
//! 6. anything else → `DUNNO`.
//!
//! Database trouble (an error, or no answer within [`DB_TIMEOUT`]) gives the fail-mode answer:
//! `closed` (default) → `DEFER 4.3.0`, `open` → `DUNNO`, logged (at most once a second). After
//! a failure, requests that need the database get that answer at once for [`BREAKER`] instead
//! of each waiting for a timeout; requests answered from fresh caches go on as usual.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{DatabaseConnection, DbErr};

use super::cache::{
    Budget, Budgets, Instance, Instances, Recipient, Sender, SenderCache, WINDOW_SECS,
};
use super::protocol::{Action, Request, Stage};
use super::recorder::Recorder;
use crate::clock::Clock;
use crate::config::{Config, PolicyCountStage, PolicyFailMode};
use crate::domain::AddressKind;
use crate::repo::{counters, sending};

/// Longest a database call may take before the fail mode applies (Postfix's own
/// `smtpd_policy_service_timeout` is 100 s by default, 10 s in our recommended setup).
pub(crate) const DB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long the database is not asked again after it failed.
pub(crate) const BREAKER: chrono::Duration = chrono::Duration::seconds(1);

pub struct Engine {
    db: DatabaseConnection,
    clock: Clock,
    fail_mode: PolicyFailMode,
    count_at: PolicyCountStage,
    senders: SenderCache,
    instances: Instances,
    budgets: Budgets,
    recorder: Recorder,
    /// Unix milliseconds until which the database is considered down.
    unhealthy_until: AtomicI64,
    /// Unix milliseconds of the last fail-mode log line.
    logged_failure_at: AtomicI64,
}

/// The counter holding an address's sent recipients (`repo::counters`, per minute).
pub fn counter_key(address_id: uuid::Uuid) -> String {
    format!("send:{address_id}")
}

/// Lower-case, without surrounding spaces or angle brackets; a non-ASCII domain becomes its
/// IDNA A-label form, as addresses are stored.
pub fn normalise(address: &str) -> String {
    let trimmed = address.trim();
    let bare = trimmed
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(trimmed);
    if bare.is_ascii() {
        return bare.to_ascii_lowercase();
    }
    match bare.rsplit_once('@') {
        Some((local, domain)) => {
            let domain = idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase());
            format!("{}@{domain}", local.to_lowercase())
        }
        None => bare.to_lowercase(),
    }
}

fn too_many_recipients(limit: u32) -> Action {
    Action::Reject(format!(
        "5.5.3 Too many recipients: for security reasons a message may have at most {limit} \
         recipients (To, Cc and Bcc together) on this address's pack; for mass mailings to \
         many recipients, use a newsletter tool"
    ))
}

fn sender_mismatch() -> Action {
    Action::Reject(
        "5.7.1 Sender address rejected: not owned by the authenticated address; send as the \
         address you logged in with or one of its aliases"
            .into(),
    )
}

fn catchall_cannot_send() -> Action {
    Action::Reject("5.7.1 A catchall address receives mail but cannot send it".into())
}

fn unavailable() -> Action {
    Action::Defer("4.3.0 Sending limits cannot be checked right now; please try again later".into())
}

fn over_budget(sender: &Sender, budget: &Budget, needed: i64) -> Action {
    let limit = sender.recipients_per_24h;
    let when = match budget.frees_at(needed) {
        Some(at) => format!(
            "retry after {}",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        None => "this message has more recipients than the whole budget".into(),
    };
    Action::Defer(format!(
        "4.7.1 Sending limit reached: this address may send to at most {limit} recipients per \
         24 hours (each recipient of each message counts); {when}"
    ))
}

impl Engine {
    /// A new engine; starts the counter writer on the current runtime.
    pub fn new(db: DatabaseConnection, clock: Clock, config: &Config) -> Engine {
        Engine {
            recorder: Recorder::start(db.clone(), DB_TIMEOUT),
            db,
            clock,
            fail_mode: config.policy_fail_mode,
            count_at: config.policy_count_at,
            senders: SenderCache::default(),
            instances: Instances::default(),
            budgets: Budgets::default(),
            unhealthy_until: AtomicI64::new(i64::MIN),
            logged_failure_at: AtomicI64::new(i64::MIN),
        }
    }

    /// The answer to one request.
    pub async fn decide(&self, request: &Request) -> Action {
        let now = self.clock.now();
        let action = match self.try_decide(request, now).await {
            Ok(action) => action,
            Err(e) => self.failed(&e, request, now),
        };
        if action != Action::Dunno {
            tracing::info!(
                login = %request.sasl_username,
                stage = ?request.stage,
                instance = %request.instance,
                %action,
                "policy decision"
            );
        }
        action
    }

    async fn try_decide(&self, request: &Request, now: DateTime<Utc>) -> Result<Action, DbErr> {
        if request.sasl_username.is_empty()
            || !matches!(
                request.stage,
                Stage::Mail | Stage::Rcpt | Stage::Data | Stage::EndOfMessage
            )
        {
            return Ok(Action::Dunno);
        }
        let login = normalise(&request.sasl_username);
        let Some(sender) = self.sender(&login, now).await? else {
            return Ok(Action::Dunno);
        };
        if sender.kind == AddressKind::Catchall {
            return Ok(catchall_cannot_send());
        }
        if !sender.may_send_as(&normalise(&request.sender)) {
            return Ok(sender_mismatch());
        }
        let key = (!request.instance.is_empty()).then(|| format!("{login}\n{}", request.instance));
        let key = key.as_deref();
        match request.stage {
            Stage::Mail => self.check_budget(&sender, 1, now).await,
            Stage::Rcpt => self.on_rcpt(&sender, key, &request.recipient, now).await,
            Stage::Data => {
                self.on_data(&sender, key, request.recipient_count, now)
                    .await
            }
            Stage::EndOfMessage => {
                self.on_end(&sender, key, request.recipient_count, now)
                    .await
            }
            _ => Ok(Action::Dunno),
        }
    }

    async fn on_rcpt(
        &self,
        sender: &Sender,
        key: Option<&str>,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<Action, DbErr> {
        let limit = sender.recipients_per_message;
        let hash = self.instances.hash(&normalise(recipient));
        let accepted = match key {
            Some(key) => match self.instances.with(key, now, |i| i.recipient(hash, limit)) {
                Recipient::Duplicate => return Ok(Action::Dunno),
                Recipient::TooMany => return Ok(too_many_recipients(limit)),
                Recipient::Within { accepted } => accepted,
            },
            None => 0,
        };
        let action = self
            .check_budget(sender, i64::from(accepted) + 1, now)
            .await?;
        if let (Action::Dunno, Some(key)) = (&action, key) {
            self.instances.with(key, now, |i| i.accept(hash));
        }
        Ok(action)
    }

    async fn on_data(
        &self,
        sender: &Sender,
        key: Option<&str>,
        recipient_count: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Action, DbErr> {
        let instance = key.and_then(|k| self.instances.get(k));
        let recipients = match self.recipients(sender, key, instance.as_ref(), recipient_count, now)
        {
            Ok(n) => n,
            Err(reject) => return Ok(reject),
        };
        match self.count_at {
            PolicyCountStage::Data => self.count(sender, key, recipients, now).await,
            PolicyCountStage::EndOfMessage => self.check_budget(sender, recipients, now).await,
        }
    }

    async fn on_end(
        &self,
        sender: &Sender,
        key: Option<&str>,
        recipient_count: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Action, DbErr> {
        let instance = key.and_then(|k| self.instances.get(k));
        let action = match self.recipients(sender, key, instance.as_ref(), recipient_count, now) {
            Err(reject) => Ok(reject),
            // With counting at DATA, the message was counted (or deferred) there.
            Ok(_) if self.count_at == PolicyCountStage::Data => Ok(Action::Dunno),
            Ok(_) if instance.as_ref().is_some_and(|i| i.counted) => Ok(Action::Dunno),
            Ok(recipients) => self.count(sender, key, recipients, now).await,
        };
        // The transaction is over either way.
        if let Some(key) = key {
            self.instances.remove(key);
        }
        action
    }

    /// The message's recipients at `DATA`/`END-OF-MESSAGE`, or the rejection when the
    /// transaction was refused or has too many. Distinct accepted recipients when this
    /// instance saw the `RCPT`s (capped by Postfix's count, which excludes recipients refused
    /// after our answer), else Postfix's count.
    fn recipients(
        &self,
        sender: &Sender,
        key: Option<&str>,
        instance: Option<&Instance>,
        recipient_count: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<i64, Action> {
        let limit = sender.recipients_per_message;
        if instance.is_some_and(|i| i.rejected) {
            return Err(too_many_recipients(limit));
        }
        let counted_here = instance.map(|i| i.accepted).filter(|n| *n > 0);
        let recipients = match (counted_here, recipient_count.filter(|n| *n > 0)) {
            (Some(here), Some(postfix)) => here.min(postfix),
            (Some(n), None) | (None, Some(n)) => n,
            (None, None) => 1,
        };
        if recipients > limit {
            if let Some(key) = key {
                self.instances.with(key, now, |i| i.rejected = true);
            }
            return Err(too_many_recipients(limit));
        }
        Ok(i64::from(recipients))
    }

    /// `DEFER` when `extra` more recipients would not fit in the 24 h budget.
    async fn check_budget(
        &self,
        sender: &Sender,
        extra: i64,
        now: DateTime<Utc>,
    ) -> Result<Action, DbErr> {
        let entry = self.budgets.entry(sender.address_id);
        let mut budget = entry.lock().await;
        self.refresh(&mut budget, sender, now).await?;
        Ok(self.verdict(sender, &budget, extra))
    }

    fn verdict(&self, sender: &Sender, budget: &Budget, extra: i64) -> Action {
        let over = budget.total() + extra - i64::from(sender.recipients_per_24h);
        if over > 0 {
            over_budget(sender, budget, over)
        } else {
            Action::Dunno
        }
    }

    /// Checks and adds `recipients` to the sender's 24 h count, atomically within this
    /// instance, answering once the count is written.
    async fn count(
        &self,
        sender: &Sender,
        key: Option<&str>,
        recipients: i64,
        now: DateTime<Utc>,
    ) -> Result<Action, DbErr> {
        let entry = self.budgets.entry(sender.address_id);
        let mut budget = entry.lock().await;
        self.refresh(&mut budget, sender, now).await?;
        let verdict = self.verdict(sender, &budget, recipients);
        if verdict != Action::Dunno {
            return Ok(verdict);
        }
        let bucket = counters::bucket_of(now);
        let written = self
            .db(
                now,
                self.recorder
                    .add(counter_key(sender.address_id), bucket, recipients),
            )
            .await;
        if written.is_ok() || self.fail_mode == PolicyFailMode::Open {
            // Failing open sends the message: count it here at least.
            budget.add(bucket, recipients);
            if let Some(key) = key {
                self.instances.with(key, now, |i| i.counted = true);
            }
        }
        written.map(|()| Action::Dunno)
    }

    /// Reloads the budget when stale, then drops what left the window.
    async fn refresh(
        &self,
        budget: &mut Budget,
        sender: &Sender,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        if !budget.is_fresh(now) {
            let key = counter_key(sender.address_id);
            let first = counters::first_bucket(now, WINDOW_SECS);
            let buckets = self
                .db(now, counters::buckets(&self.db, &key, first))
                .await?;
            budget.load(buckets, now);
        }
        budget.trim(now);
        Ok(())
    }

    /// The hosted address `login`, from the cache or the database.
    async fn sender(&self, login: &str, now: DateTime<Utc>) -> Result<Option<Arc<Sender>>, DbErr> {
        if let Some(cached) = self.senders.get(login, now) {
            return Ok(cached);
        }
        let identity = self
            .db(now, sending::find_by_address(&self.db, login))
            .await?;
        let sender = identity.map(|i| Arc::new(Sender::new(i)));
        self.senders.put(login.to_string(), sender.clone(), now);
        Ok(sender)
    }

    /// Runs a database call with a deadline, unless the database failed moments ago.
    async fn db<T>(
        &self,
        now: DateTime<Utc>,
        call: impl std::future::Future<Output = Result<T, DbErr>>,
    ) -> Result<T, DbErr> {
        let now_ms = now.timestamp_millis();
        if now_ms < self.unhealthy_until.load(Ordering::Relaxed) {
            return Err(DbErr::Custom(
                "the database failed moments ago; not asking it again yet".into(),
            ));
        }
        let result = match tokio::time::timeout(DB_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(DbErr::Custom(format!("no answer within {DB_TIMEOUT:?}"))),
        };
        if result.is_err() {
            self.unhealthy_until
                .store(now_ms + BREAKER.num_milliseconds(), Ordering::Relaxed);
        }
        result
    }

    fn failed(&self, error: &DbErr, request: &Request, now: DateTime<Utc>) -> Action {
        let now_ms = now.timestamp_millis();
        let last = self.logged_failure_at.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= 1000
            && self
                .logged_failure_at
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %error,
                fail_mode = ?self.fail_mode,
                login = %request.sasl_username,
                stage = ?request.stage,
                "policy service: database unavailable, answering per POSTIER_POLICY_FAIL_MODE"
            );
        }
        match self.fail_mode {
            PolicyFailMode::Closed => unavailable(),
            PolicyFailMode::Open => Action::Dunno,
        }
    }

    /// Forgets stale cache entries (called periodically).
    pub fn sweep(&self) {
        let now = self.clock.now();
        self.senders.sweep(now);
        self.instances.sweep(now);
        self.budgets.sweep(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_as_they_are_stored() {
        assert_eq!(normalise(" Bob@Example.TEST "), "bob@example.test");
        assert_eq!(normalise("<Alice@Example.test>"), "alice@example.test");
        assert_eq!(normalise(""), "");
        assert_eq!(normalise("Zoé@Café.example"), "zoé@xn--caf-dma.example");
    }

    #[test]
    fn rejection_texts_give_the_limit_and_the_advice() {
        let Action::Reject(text) = too_many_recipients(10) else {
            panic!("a rejection")
        };
        assert!(text.starts_with("5.5.3 "));
        assert!(text.contains("at most 10 recipients"));
        assert!(text.contains("newsletter tool"));
        assert!(matches!(unavailable(), Action::Defer(t) if t.starts_with("4.3.0 ")));
        assert!(matches!(sender_mismatch(), Action::Reject(t) if t.starts_with("5.7.1 ")));
        assert!(matches!(catchall_cannot_send(), Action::Reject(t) if t.starts_with("5.7.1 ")));
    }
}
