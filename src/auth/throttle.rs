//! Throttling of password guessing (logins, step-up, attaching an address) per (login, client
//! address) pair, per login from every address (a much higher ceiling) and per client
//! address, of sign-ups per client address, and of the e-mails account flows send on
//! request (verification, password reset, login change) per login and per client address.
//! Counted in the database so that every instance sees the same numbers
//! (docs/architecture.md "Stateless instances").

use sea_orm::sea_query::SelectStatement;
use sea_orm::{ConnectionTrait, QueryResult};

use crate::error::{ApiError, ApiResult};
use crate::repo::batch::Batch;
use crate::repo::counters;
use crate::state::AppState;

/// How long an attempt waits for the attempts in flight ahead of it to settle, when only
/// they (not failures) keep it over a limit, before it is refused.
const WAIT_FOR_IN_FLIGHT: std::time::Duration = std::time::Duration::from_secs(10);

/// The counters one password proof touches: per (subject, client address), per subject from
/// every address, per client address. Each has its failures (`fail:…`) and the proofs in
/// flight (`pending:…`, counted before the argon2 verification).
struct Scope {
    /// `(suffix, limit)`, the suffix naming the counter after `fail:` or `pending:`.
    counters: Vec<(String, u32)>,
    /// The suffixes a success forgets: the subject's consecutive failures.
    cleared_on_success: Vec<String>,
}

fn scope(state: &AppState, subject: &str, ip: Option<&str>) -> Scope {
    let cfg = &state.config.throttle;
    let pair = format!("pair:{subject}|{}", ip.unwrap_or(""));
    let login = format!("login:{subject}");
    let mut counters = vec![
        (pair.clone(), cfg.failures_per_login_and_ip),
        (login.clone(), cfg.failures_per_login),
    ];
    if let Some(ip) = ip {
        counters.push((format!("ip:{ip}"), cfg.failures_per_ip));
    }
    Scope {
        counters,
        cleared_on_success: vec![pair, login],
    }
}

/// A password proof under way, counted as in flight before the argon2 verification so that
/// parallel requests cannot all pass the check before any failure is recorded.
#[must_use = "settle the attempt with succeeded() or failed()"]
pub(crate) struct Attempt {
    scope: Scope,
    /// The bucket its in-flight count went into (taken out of the same one).
    bucket: i64,
    /// Whether failures of the subject were seen when it began: only then has a success
    /// anything to forget (most logins have none, and skip those deletes).
    had_failures: bool,
}

/// Counts an attempt for `subject` (a login, or `address:<address>`) from `ip`. Refused
/// with 429 and `Retry-After` when the failures of the (subject, address) pair, of the
/// subject from every address, or of the address reach their limit. When only attempts
/// still in flight keep it over a limit (their passwords may be right: 16 tabs logging in
/// at once), it waits for them to settle, up to a few seconds: a correct password never
/// counts as a failure. A refused attempt is not counted.
pub(crate) async fn begin_attempt(
    state: &AppState,
    subject: &str,
    ip: Option<&str>,
) -> ApiResult<Attempt> {
    begin_attempt_then(state, subject, ip, None)
        .await
        .map(|(attempt, _)| attempt)
}

/// [`begin_attempt`], then `then` (what the proof is checked against, such as the account of
/// a login), read after the count that admits the attempt: on SQLite sent with every count, in
/// the same call to a connection (`counters::add_then_windows`), the rows of the admitting one
/// kept; on PostgreSQL sent on its own, prepared, only once the attempt is admitted (a refused
/// or waiting attempt does not read it). Answers its rows.
pub(crate) async fn begin_attempt_then(
    state: &AppState,
    subject: &str,
    ip: Option<&str>,
    then: Option<SelectStatement>,
) -> ApiResult<(Attempt, Vec<QueryResult>)> {
    let cfg = &state.config.throttle;
    let window = i64::try_from(cfg.window_secs).unwrap_or(i64::MAX / 2);
    let scope = scope(state, subject, ip);
    let keys: Vec<String> = scope
        .counters
        .iter()
        .flat_map(|(suffix, _)| [format!("fail:{suffix}"), format!("pending:{suffix}")])
        .collect();
    let deadline = tokio::time::Instant::now() + WAIT_FOR_IN_FLIGHT;
    loop {
        let now = state.clock.now();
        let bucket = counters::bucket_of(now);
        let pending = |n: i64| -> Vec<(String, i64, i64)> {
            scope
                .counters
                .iter()
                .map(|(suffix, _)| (format!("pending:{suffix}"), bucket, n))
                .collect()
        };
        let (seen, read) =
            counters::add_then_windows(&state.db, &pending(1), &keys, now, window, then.as_ref())
                .await?;
        let verdict = judge(&scope, &seen, now, window, 0);
        if let Verdict::Admitted { had_failures } = verdict {
            let attempt = Attempt {
                scope,
                bucket,
                had_failures,
            };
            let read = match (read, then.as_ref()) {
                (Some(read), _) => read,
                (None, Some(then)) => state.db.query_all(then).await?,
                (None, None) => Vec::new(),
            };
            return Ok((attempt, read));
        }
        // The count was in flight for no proof: taken back like it was put, without waiting
        // for a flush (`counters::add_then_windows`). A crash of the database server within
        // the fraction of a second before the flush may keep it counted (one proof fewer for
        // the pair until its bucket leaves the window), never a failure.
        counters::add_many_without_flush(&state.db, &pending(-1)).await?;
        if let Verdict::Refused { retry_after } = verdict {
            return Err(ApiError::throttled(retry_after));
        }
        // Only proofs in flight keep it over a limit: it waits for them by reading the
        // windows, a read instead of two writes per look, and counts itself again once they
        // leave room (the count then decides, as for the first).
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::throttled(1));
            }
            // Jitter, so that waiters do not keep seeing each other's brief counts.
            let pause = 20 + rand::random::<u64>() % 60;
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            let now = state.clock.now();
            let seen = counters::windows(&state.db, &keys, now, window).await?;
            match judge(&scope, &seen, now, window, 1) {
                Verdict::Admitted { .. } => break,
                Verdict::Refused { retry_after } => {
                    return Err(ApiError::throttled(retry_after));
                }
                Verdict::Busy => {}
            }
        }
    }
}

/// What an attempt's counters say of it.
enum Verdict {
    /// It may go on; `had_failures`: the subject's failures were seen (a success clears them).
    Admitted { had_failures: bool },
    /// Failures reached a limit: refused for `retry_after` seconds.
    Refused { retry_after: u64 },
    /// Only proofs still in flight keep it over a limit.
    Busy,
}

/// The verdict of the windows `seen` on an attempt of `scope`, which they count in flight
/// already (`uncounted` 0) or not yet (1).
fn judge(
    scope: &Scope,
    seen: &std::collections::HashMap<String, counters::Window>,
    now: chrono::DateTime<chrono::Utc>,
    window: i64,
    uncounted: i64,
) -> Verdict {
    let mut busy = false;
    let mut refused_for: Option<i64> = None;
    for (suffix, limit) in &scope.counters {
        let limit = i64::from(*limit);
        let failures = seen
            .get(&format!("fail:{suffix}"))
            .copied()
            .unwrap_or_default();
        let in_flight = seen
            .get(&format!("pending:{suffix}"))
            .map_or(0, |w| w.total.max(0))
            + uncounted;
        if failures.total >= limit {
            let retry = failures.frees_in_secs(now, window).unwrap_or(window);
            refused_for = Some(refused_for.map_or(retry, |r| r.max(retry)));
        } else if failures.total + in_flight.max(1) > limit {
            busy = true;
        }
    }
    if let Some(retry) = refused_for {
        return Verdict::Refused {
            retry_after: u64::try_from(retry).unwrap_or(1),
        };
    }
    if busy {
        return Verdict::Busy;
    }
    Verdict::Admitted {
        had_failures: scope.cleared_on_success.iter().any(|suffix| {
            seen.get(&format!("fail:{suffix}"))
                .is_some_and(|w| w.total > 0)
        }),
    }
}

impl Attempt {
    fn settle_rows(&self, failed: Option<i64>) -> Vec<(String, i64, i64)> {
        let mut rows: Vec<(String, i64, i64)> = self
            .scope
            .counters
            .iter()
            .map(|(suffix, _)| (format!("pending:{suffix}"), self.bucket, -1))
            .collect();
        if let Some(bucket) = failed {
            rows.extend(
                self.scope
                    .counters
                    .iter()
                    .map(|(suffix, _)| (format!("fail:{suffix}"), bucket, 1)),
            );
        }
        rows
    }

    /// The proof held: it is no longer in flight, and the subject's consecutive failures
    /// (from this address and from all) are forgotten. It never counted as a failure of
    /// the client address (a busy office behind one address is not a guesser).
    pub(crate) async fn succeeded(self, state: &AppState) -> ApiResult<()> {
        let mut batch = Batch::default();
        self.succeeded_into(&mut batch);
        batch.run(&state.db).await?;
        Ok(())
    }

    /// [`Attempt::succeeded`] as writes of a batch (a login's, which writes anyway); the
    /// batch's outcome then goes through [`Attempt::settled_by`].
    pub(crate) fn succeeded_into(&self, batch: &mut Batch) {
        if self.had_failures {
            let keys: Vec<String> = self
                .scope
                .cleared_on_success
                .iter()
                .map(|suffix| format!("fail:{suffix}"))
                .collect();
            batch.push(counters::clear_many_statement(&keys));
        }
        // The cleared keys are `fail:…`, the settled ones `pending:…`: no row is written twice.
        if let Some(settle) = counters::add_many_statement(&self.settle_rows(None)) {
            batch.push(settle);
        }
    }

    /// `written`, the outcome of the batch [`Attempt::succeeded_into`] joined. When it failed
    /// (the batch was refused, the database went away), the proof held but nothing it was for
    /// was written: it is taken out of flight and counts as nothing. Best effort: a database
    /// that refused the batch may refuse this too, and then the count leaves with its bucket.
    pub(crate) async fn settled_by<T>(
        self,
        state: &AppState,
        written: ApiResult<T>,
    ) -> ApiResult<T> {
        if written.is_err() {
            if let Err(err) = counters::add_many(&state.db, &self.settle_rows(None)).await {
                tracing::warn!(error = %err, "an abandoned proof stays counted in flight until its bucket leaves the window");
            }
        }
        written
    }

    /// The proof failed: it counts as a failure of the pair, the subject and the address.
    pub(crate) async fn failed(self, state: &AppState) -> ApiResult<()> {
        let bucket = counters::bucket_of(state.clock.now());
        counters::add_many(&state.db, &self.settle_rows(Some(bucket))).await?;
        Ok(())
    }
}

/// Counts a sign-up attempt from `ip`; 429 beyond the configured rate (counted first, so
/// that parallel sign-ups cannot all slip under the limit).
pub(crate) async fn count_signup(state: &AppState, ip: Option<&str>) -> ApiResult<()> {
    let Some(ip) = ip else { return Ok(()) };
    let cfg = &state.config.throttle;
    let window = i64::try_from(cfg.signup_window_secs).unwrap_or(i64::MAX / 2);
    let now = state.clock.now();
    let key = format!("signup:ip:{ip}");
    counters::add(&state.db, &key, now, 1).await?;
    let seen = counters::window(&state.db, &key, now, window).await?;
    if seen.total > i64::from(cfg.signups_per_ip) {
        counters::add(&state.db, &key, now, -1).await?;
        let retry = seen.frees_in_secs(now, window).unwrap_or(window);
        return Err(ApiError::throttled(u64::try_from(retry).unwrap_or(1)));
    }
    Ok(())
}

/// Counts an e-mail an account flow sends on request (`flow`: `verification`,
/// `password_reset`, `login_change`) for `login` and for `ip`; 429 with `Retry-After` when
/// either is over its limit (a refused request is not counted). The same for a login that
/// no account has, so the answer tells nothing about it.
pub(crate) async fn count_account_mail(
    state: &AppState,
    flow: &str,
    login: &str,
    ip: Option<&str>,
) -> ApiResult<()> {
    let cfg = &state.config.throttle;
    let window = i64::try_from(cfg.account_mail_window_secs).unwrap_or(i64::MAX / 2);
    let now = state.clock.now();
    let mut keys = vec![(
        format!("mail:{flow}:login:{login}"),
        cfg.account_mails_per_login,
    )];
    if let Some(ip) = ip {
        keys.push((format!("mail:{flow}:ip:{ip}"), cfg.account_mails_per_ip));
    }
    for (key, _) in &keys {
        counters::add(&state.db, key, now, 1).await?;
    }
    for (key, limit) in &keys {
        let seen = counters::window(&state.db, key, now, window).await?;
        if seen.total > i64::from(*limit) {
            for (key, _) in &keys {
                counters::add(&state.db, key, now, -1).await?;
            }
            let retry = seen.frees_in_secs(now, window).unwrap_or(window);
            return Err(ApiError::throttled(u64::try_from(retry).unwrap_or(1)));
        }
    }
    Ok(())
}
