//! A unit of work: one write transaction, the instant it happens at, and what must run once
//! it has committed (waking the outbox and webhook workers and this instance's event
//! streams, forgetting cached sessions). Every multi-step write of the service layer goes
//! through one, so that a change, its audit event and its notification commit together or
//! not at all, and the post-commit effects run in one place. Sessions are ended only here
//! ([`UnitOfWork::revoke_session`], [`UnitOfWork::revoke_sessions_of`]), so that this
//! instance's session cache forgets them as soon as the change is committed. A flow whose
//! writes need no answers and follow no read of its own may send them as a [`WriteBatch`]
//! instead: one round trip.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::mailer::{Mail, Secret};
use crate::repo;
use crate::repo::batch::Batch;
use crate::repo::events::{Actor, Scope};
use crate::service::audit::{self, Change};
use crate::state::AppState;

pub struct UnitOfWork<'s> {
    state: &'s AppState,
    txn: DatabaseTransaction,
    now: DateTime<Utc>,
    wake_outbox: bool,
    /// Accounts whose cached sessions are forgotten once committed.
    forget_accounts: Vec<Uuid>,
    /// Sessions forgotten once committed.
    forget_sessions: Vec<Uuid>,
    /// Set by `record` (which takes `&self`): an event was written / deliveries queued.
    recorded: AtomicBool,
    queued: AtomicBool,
}

impl<'s> UnitOfWork<'s> {
    /// Begins a write transaction (on SQLite it takes the write lock first: see
    /// `db::begin_write`).
    pub async fn begin(state: &'s AppState) -> ApiResult<Self> {
        let txn = crate::db::begin_write(&state.db).await?;
        Ok(Self {
            state,
            txn,
            now: state.clock.now(),
            wake_outbox: false,
            forget_accounts: Vec::new(),
            forget_sessions: Vec::new(),
            recorded: AtomicBool::new(false),
            queued: AtomicBool::new(false),
        })
    }

    /// The transaction, for `repo` functions.
    pub fn tx(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The instant of this unit: every row it writes carries the same time.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn state(&self) -> &'s AppState {
        self.state
    }

    /// Records `change` in the audit log, and its webhook deliveries, in this transaction.
    pub async fn record(
        &self,
        actor: &Actor,
        scope: Scope,
        change: Change,
        target: &str,
    ) -> ApiResult<()> {
        let recorded = audit::record(&self.txn, self.now, actor, scope, &change, target).await?;
        self.note(recorded);
        Ok(())
    }

    fn note(&self, recorded: audit::Recorded) {
        self.recorded.store(true, Ordering::Relaxed);
        if recorded.deliveries > 0 {
            self.queued.store(true, Ordering::Relaxed);
        }
    }

    /// Marks webhook deliveries queued outside `record` (pings, redeliveries).
    pub fn queued_deliveries(&self) {
        self.queued.store(true, Ordering::Relaxed);
    }

    /// Records a change to the account itself in its own log (its personal organization).
    pub async fn record_for_account(
        &self,
        actor: &Actor,
        account_id: Uuid,
        change: Change,
        target: &str,
    ) -> ApiResult<()> {
        let recorded =
            audit::record_for_account(&self.txn, self.now, actor, account_id, &change, target)
                .await?;
        self.note(recorded);
        Ok(())
    }

    /// Runs the writes of `batch` in this transaction (as one statement on PostgreSQL).
    pub(crate) async fn run(&self, batch: Batch) -> ApiResult<()> {
        batch.run_in(&self.txn).await?;
        Ok(())
    }

    /// Queues a notification e-mail in this transaction; the outbox worker is woken once it
    /// commits. For a message without any single-use token.
    pub async fn send_mail(
        &mut self,
        organization_id: Option<Uuid>,
        recipient: &str,
        subject: &str,
        body: &str,
    ) -> ApiResult<()> {
        self.enqueue(Mail {
            organization_id,
            recipient,
            subject,
            body,
            secret: None,
        })
        .await
    }

    /// Queues an e-mail whose links carry the single-use `token` of an offer the
    /// organization makes (an invitation onto an address, an invitation to join): its owners
    /// may read it in the outbox while it waits, and the links are removed from the stored
    /// body once it is delivered or abandoned.
    pub async fn send_link_mail(
        &mut self,
        organization_id: Option<Uuid>,
        recipient: &str,
        subject: &str,
        (body, token): (&str, &str),
    ) -> ApiResult<()> {
        self.enqueue(Mail {
            organization_id,
            recipient,
            subject,
            body,
            secret: Some(Secret {
                token,
                private: false,
            }),
        })
        .await
    }

    /// Queues an e-mail whose single-use `token` stands for its recipient's consent or
    /// identity (a forward confirmation, a login verification, a login change, a password
    /// reset): the owners' outbox listing never shows its links, and they are removed from
    /// the stored body once it is delivered or abandoned.
    pub async fn send_consent_mail(
        &mut self,
        organization_id: Option<Uuid>,
        recipient: &str,
        subject: &str,
        (body, token): (&str, &str),
    ) -> ApiResult<()> {
        self.enqueue(Mail {
            organization_id,
            recipient,
            subject,
            body,
            secret: Some(Secret {
                token,
                private: true,
            }),
        })
        .await
    }

    async fn enqueue(&mut self, mail: Mail<'_>) -> ApiResult<()> {
        crate::mailer::enqueue(&self.txn, &mail, self.now).await?;
        self.wake_outbox = true;
        Ok(())
    }

    /// Ends one session (its access and refresh tokens stop working); false when it had
    /// ended already.
    pub async fn revoke_session(&mut self, sid: Uuid, reason: &str) -> ApiResult<bool> {
        let revoked = repo::sessions::revoke(&self.txn, sid, reason, self.now).await?;
        self.forget_sessions.push(sid);
        Ok(revoked > 0)
    }

    /// Ends every session of the account but `keep`.
    pub async fn revoke_sessions_of(
        &mut self,
        account_id: Uuid,
        keep: Option<Uuid>,
        reason: &str,
    ) -> ApiResult<u64> {
        let revoked =
            repo::sessions::revoke_others(&self.txn, account_id, keep, reason, self.now).await?;
        self.forget_accounts.push(account_id);
        Ok(revoked)
    }

    /// Forgets a cached session or API token (by its cache key) once committed.
    pub fn forget_cached(&mut self, key: Uuid) {
        self.forget_sessions.push(key);
    }

    /// The account itself changes (profile, login): this instance stops serving it from
    /// its session cache once committed (read-your-writes).
    pub fn account_changed(&mut self, account_id: Uuid) {
        self.forget_accounts.push(account_id);
    }

    /// Commits, then runs the post-commit effects.
    pub async fn commit(self) -> ApiResult<()> {
        self.txn.commit().await?;
        if self.wake_outbox {
            self.state.outbox_wake.notify_one();
        }
        for sid in self.forget_sessions {
            self.state.sessions.forget_session(sid);
        }
        for account_id in self.forget_accounts {
            self.state.sessions.forget_account(account_id);
        }
        committed(
            self.state,
            self.recorded.load(Ordering::Relaxed),
            self.queued.load(Ordering::Relaxed),
        );
        Ok(())
    }
}

/// The effects of committed events: this instance's event streams look for them, and the
/// webhook worker for the deliveries queued with them.
fn committed(state: &AppState, recorded: bool, queued: bool) {
    if queued {
        state.webhook_wake.notify_one();
    }
    if recorded {
        state
            .events_committed
            .send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A unit of work that reads nothing: its writes, which need no answer, are sent in one
/// round trip at commit (`repo::batch`), all or none, then the same effects as a
/// [`UnitOfWork`]'s run. For a login, the flow run most often with the database's latency
/// on its path.
pub struct WriteBatch<'s> {
    state: &'s AppState,
    batch: Batch,
    now: DateTime<Utc>,
    recorded: bool,
    queued: bool,
}

impl<'s> WriteBatch<'s> {
    pub fn new(state: &'s AppState) -> Self {
        Self {
            state,
            batch: Batch::default(),
            now: state.clock.now(),
            recorded: false,
            queued: false,
        }
    }

    /// The instant of this batch: every row it writes carries the same time.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The statements, for `repo` functions that write into a batch.
    pub(crate) fn batch(&mut self) -> &mut Batch {
        &mut self.batch
    }

    /// Records `change` in the audit log with its webhook deliveries. `endpoints` is
    /// whether the organization of `scope` may have enabled endpoints: when the caller
    /// knows it has none (read with what the flow read first), the batch skips looking them
    /// up, so it stays free of reads. An endpoint enabled in between misses this event, as
    /// it would when enabled while a transaction commits the event.
    pub async fn record(
        &mut self,
        actor: &Actor,
        scope: Scope,
        change: Change,
        target: &str,
        endpoints: bool,
    ) -> ApiResult<()> {
        let event = audit::Event::new(self.now, actor, scope, &change, target)?;
        self.batch.push(event.insert);
        self.recorded = true;
        if let Some(data) = event.webhook_data.filter(|_| endpoints) {
            let (queued, insert) = crate::service::webhooks::queue::deliveries_of(
                &self.state.db,
                &event.action,
                self.now,
                data,
            )
            .await?;
            if let Some(insert) = insert {
                self.batch.push(insert);
            }
            self.queued |= queued > 0;
        }
        Ok(())
    }

    /// Sends every write, then runs the post-commit effects.
    pub async fn commit(self) -> ApiResult<()> {
        self.batch.run(&self.state.db).await?;
        committed(self.state, self.recorded, self.queued);
        Ok(())
    }
}
