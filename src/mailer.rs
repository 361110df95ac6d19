//! Notification e-mails through a transactional outbox: messages are written in the same
//! transaction as the change that causes them, then a worker in every instance sends them
//! through `POSTIER_SMTP_URL` (lettre, rustls), retrying with backoff. Rows are claimed with a
//! lease so that several instances never send one message twice. Without a relay, messages
//! stay in the outbox, where the organization's owners read them. A message that carries a
//! single-use token loses it (the words holding it) once delivered or abandoned; a message
//! not delivered within `outbox_give_up_hours` is abandoned, and rows older than
//! `outbox_retention_days` are deleted ([`maintain`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::{ConnectionTrait, DbErr};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::entity::outbox;
use crate::repo;
use crate::state::AppState;

const BATCH: u64 = 20;
const LEASE_SECS: i64 = 60;
const POLL: Duration = Duration::from_secs(2);
/// How often each instance abandons overdue messages and deletes old rows.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// What remains of a body that held a single-use link once the relay accepted it (messages
/// queued before the outbox knew their token; newer ones lose only the link, see
/// [`DELIVERED_NOTE`]).
pub(crate) const SCRUBBED_BODY: &str =
    "[removed after delivery: this message held a single-use link]";
/// What replaces a link once its message was delivered.
pub(crate) const DELIVERED_NOTE: &str = "[link removed after delivery]";
/// What replaces a link once its message was abandoned.
pub(crate) const ABANDONED_NOTE: &str = "[link removed: the message was not delivered]";
/// What the owners' listing shows instead of a link that is for its recipient only.
pub(crate) const WITHHELD_NOTE: &str = "[link withheld: it is for the recipient only]";

/// The single-use token a message carries, and who may read it while it waits.
#[derive(Clone, Copy)]
pub(crate) struct Secret<'a> {
    /// The raw token, exactly as it appears in the body's links.
    pub token: &'a str,
    /// It stands for the recipient's consent or identity: the organization's owners never
    /// read it in the outbox.
    pub private: bool,
}

/// A message to queue.
pub(crate) struct Mail<'a> {
    pub organization_id: Option<Uuid>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// The token the body carries, removed from it once delivered or abandoned.
    pub secret: Option<Secret<'a>>,
}

/// Queues a message (call inside the transaction of the change).
pub(crate) async fn enqueue(
    conn: &impl ConnectionTrait,
    mail: &Mail<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    repo::outbox::insert(
        conn,
        repo::outbox::NewMessage {
            organization_id: mail.organization_id,
            recipient: mail.recipient,
            subject: mail.subject,
            body: mail.body,
            secret: mail.secret.map(|s| s.token),
            secret_private: mail.secret.is_some_and(|s| s.private),
        },
        now,
    )
    .await
}

/// `body` with every word (run of non-whitespace) that holds `secret` replaced by `note`:
/// a link goes whole, whatever wraps the token, and the text around it stays.
pub(crate) fn without_secret(body: &str, secret: &str, note: &str) -> String {
    if secret.is_empty() {
        return body.to_string();
    }
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find(secret) {
        let start = rest[..at].rfind(char::is_whitespace).map_or(0, |i| {
            i + rest[i..].chars().next().map_or(1, char::len_utf8)
        });
        let after = at + secret.len();
        let end = rest[after..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |i| after + i);
        out.push_str(&rest[..start]);
        out.push_str(note);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The body to keep once the message is delivered or abandoned (`note` in place of its link).
fn scrubbed_body(message: &outbox::Model, note: &str) -> Option<String> {
    match &message.secret {
        Some(secret) => Some(without_secret(&message.body, secret, note)),
        None if message.scrub_after_send => Some(SCRUBBED_BODY.to_string()),
        None => None,
    }
}

/// What the organization's owners read of a message: all of it, but a link that is for its
/// recipient only.
pub(crate) fn listed_body(message: outbox::Model) -> String {
    if let Some(listed) = message.listed_body {
        return listed;
    }
    match &message.secret {
        Some(secret) if message.secret_private => {
            without_secret(&message.body, secret, WITHHELD_NOTE)
        }
        _ => message.body,
    }
}

/// Sends due messages until the process stops; woken early by `wake` after an enqueue.
pub(crate) async fn run_worker(state: actix_web::web::Data<AppState>, wake: Arc<Notify>) {
    let Some(url) = state.config.smtp_url.clone() else {
        return;
    };
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&url) {
        Ok(builder) => builder.timeout(Some(Duration::from_secs(20))).build(),
        Err(e) => {
            tracing::error!(error = %e, "POSTIER_SMTP_URL is unusable; notifications stay in the outbox");
            return;
        }
    };
    let from: Mailbox = match state.config.effective_mail_from().parse() {
        Ok(from) => from,
        Err(e) => {
            tracing::error!(error = %e, "POSTIER_MAIL_FROM is unusable; notifications stay in the outbox");
            return;
        }
    };
    loop {
        match send_due(&state, &transport, &from).await {
            Ok(sent) if sent == BATCH as usize => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
        }
        let _ = tokio::time::timeout(POLL, wake.notified()).await;
    }
}

/// One pass: claim due messages, send each, record the outcome. Returns how many it tried.
async fn send_due(
    state: &AppState,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> Result<usize, DbErr> {
    let now = state.clock.now();
    let due = repo::outbox::due(&state.db, now, BATCH).await?;
    let tried = due.len();
    for message in due {
        let lease = now + chrono::Duration::seconds(LEASE_SECS);
        if !repo::outbox::claim(&state.db, message.id, now, lease).await? {
            continue;
        }
        let result = send_one(transport, from, &message).await;
        let now = state.clock.now();
        let attempts = message.attempts + 1;
        match result {
            Ok(()) => {
                let kept = scrubbed_body(&message, DELIVERED_NOTE);
                repo::outbox::record_sent(&state.db, message.id, attempts, kept, now).await?;
                tracing::info!(outbox_id = %message.id, "notification sent");
            }
            Err(failure) => {
                let overdue = now - message.created_at >= state.config.outbox_give_up();
                if failure.permanent || overdue {
                    let kept = scrubbed_body(&message, ABANDONED_NOTE);
                    repo::outbox::record_abandoned(
                        &state.db,
                        message.id,
                        attempts,
                        &failure.error,
                        kept,
                        now,
                    )
                    .await?;
                    tracing::warn!(outbox_id = %message.id, attempts, error = %failure.error, "notification abandoned");
                } else {
                    let delay = backoff_secs(attempts);
                    let next = now + chrono::Duration::seconds(delay);
                    repo::outbox::record_retry(
                        &state.db,
                        message.id,
                        attempts,
                        &failure.error,
                        next,
                    )
                    .await?;
                    tracing::warn!(outbox_id = %message.id, attempts, retry_in_secs = delay, error = %failure.error, "notification not sent");
                }
            }
        }
    }
    Ok(tried)
}

/// What one maintenance pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Maintained {
    /// Messages given up on (not delivered within `outbox_give_up_hours`).
    pub abandoned: u64,
    /// Delivered or abandoned rows older than `outbox_retention_days`, deleted.
    pub deleted: u64,
}

/// Abandons the messages not delivered within `outbox_give_up_hours` (with or without a
/// relay: their tokens go as on delivery) and deletes the delivered or abandoned rows older
/// than `outbox_retention_days`. Every statement is conditional, so several instances may
/// run it at once.
pub async fn maintain(state: &AppState) -> Result<Maintained, DbErr> {
    let now = state.clock.now();
    let mut done = Maintained::default();
    let give_up = now - state.config.outbox_give_up();
    loop {
        let overdue = repo::outbox::overdue(&state.db, give_up, now, BATCH).await?;
        let found = overdue.len();
        for message in overdue {
            let error = message.last_error.clone().unwrap_or_else(|| {
                format!(
                    "not delivered within {} hours",
                    state.config.outbox_give_up_hours
                )
            });
            let kept = scrubbed_body(&message, ABANDONED_NOTE);
            if repo::outbox::abandon_waiting(&state.db, message.id, &error, kept, now).await? {
                done.abandoned += 1;
            }
        }
        if found < BATCH as usize {
            break;
        }
    }
    let retention = now - state.config.outbox_retention();
    done.deleted = repo::outbox::delete_finished_before(&state.db, retention).await?;
    Ok(done)
}

/// Runs [`maintain`] every minute until the process stops (relay or not).
pub(crate) async fn run_maintenance(state: actix_web::web::Data<AppState>) {
    let mut every = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        every.tick().await;
        match maintain(&state).await {
            Ok(done) if done == Maintained::default() => {}
            Ok(done) => tracing::info!(
                abandoned = done.abandoned,
                deleted = done.deleted,
                "outbox maintained"
            ),
            Err(e) => tracing::warn!(error = %e, "outbox maintenance failed"),
        }
    }
}

/// 30 s, 1 min, 2 min … capped at one hour.
fn backoff_secs(attempts: i32) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    (30_i64 * 2_i64.pow(exponent)).min(3600)
}

/// Why a message was not sent; a permanent failure (the relay refused it for good, or it
/// cannot be built) is not retried.
struct Failure {
    error: String,
    permanent: bool,
}

impl Failure {
    fn permanent(error: String) -> Self {
        Self {
            error,
            permanent: true,
        }
    }
}

async fn send_one(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    message: &outbox::Model,
) -> Result<(), Failure> {
    let to: Mailbox = message
        .recipient
        .parse()
        .map_err(|e| Failure::permanent(format!("bad recipient: {e}")))?;
    let email = Message::builder()
        .from(from.clone())
        .to(to)
        .raw_header(subject_header(&message.subject))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(message.body.clone())
        .map_err(|e| Failure::permanent(format!("cannot build the message: {e}")))?;
    transport
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| Failure {
            error: e.to_string(),
            permanent: e.is_permanent(),
        })
}

/// Bytes of text per RFC 2047 encoded word: 48 characters of base64, 60 with the framing,
/// well under the 75 a word may have.
const ENCODED_WORD_BYTES: usize = 36;

/// The `Subject` header of a notification. Subjects are built from what customers chose
/// (logins, local parts, organization names), which may look like an RFC 2047 encoded word
/// (`=?utf-8?q?URGENT?=`): lettre would pass such an ASCII word as is, and the reader's mail
/// client would decode it into a subject Postier never wrote. Such a subject (or one with
/// anything but printable ASCII) is therefore encoded whole, in base64 encoded words, which
/// a client decodes once, showing the text exactly as written. Control characters (none
/// should get this far: they are refused at the API) become spaces.
fn subject_header(subject: &str) -> lettre::message::header::HeaderValue {
    use base64::Engine;
    use lettre::message::header::{HeaderName, HeaderValue};
    let name = || HeaderName::new_from_ascii_str("Subject");
    let clean: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let plain = clean.bytes().all(|b| (0x20..0x7f).contains(&b)) && !clean.contains("=?");
    if plain {
        return HeaderValue::new(name(), clean);
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in clean.chars() {
        if chunk.len() + c.len_utf8() > ENCODED_WORD_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    let encoded = words
        .iter()
        .map(|w| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(w.as_bytes());
            format!("=?utf-8?b?{b64}?=")
        })
        .collect::<Vec<_>>()
        .join("\r\n ");
    HeaderValue::dangerous_new_pre_encoded(name(), clean, encoded)
}

#[cfg(test)]
mod tests {
    /// The `Subject` line lettre writes for `subject`, unfolded.
    fn subject_line(subject: &str) -> String {
        let message = lettre::Message::builder()
            .from("a@b.example".parse().unwrap())
            .to("c@d.example".parse().unwrap())
            .raw_header(super::subject_header(subject))
            .body(String::from("x"))
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ");
        head.lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_subject_that_looks_encoded_is_encoded_whole_and_plain_ones_are_kept() {
        use base64::Engine;
        let spoof = "alice invites you to use =?utf-8?q?URGENT=3A_pay_now?=@evil.test";
        let line = subject_line(spoof);
        assert!(!line.contains("=?utf-8?q?"), "{line}");
        let decoded: String = line
            .split(' ')
            .map(|w| {
                let b64 = w
                    .strip_prefix("=?utf-8?b?")
                    .unwrap()
                    .strip_suffix("?=")
                    .unwrap();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap();
                String::from_utf8(bytes).unwrap()
            })
            .collect();
        assert_eq!(decoded, spoof);
        assert_eq!(
            subject_line("Your password was changed"),
            "Your password was changed"
        );
        assert!(!subject_line("a\r\nBcc: x@y.example").contains('\n'));
    }

    #[test]
    fn only_the_words_holding_the_token_are_removed() {
        let body = "Open:\n\n  https://x.example/a?token=SECRET\n\nor decline: <https://x.example/d?token=SECRET>.\nBye SECRET";
        assert_eq!(
            super::without_secret(body, "SECRET", "[gone]"),
            "Open:\n\n  [gone]\n\nor decline: [gone]\nBye [gone]"
        );
        assert_eq!(
            super::without_secret("no token", "SECRET", "[gone]"),
            "no token"
        );
        assert_eq!(
            super::without_secret("SECRET", "SECRET", "[gone]"),
            "[gone]"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(super::backoff_secs(1), 30);
        assert_eq!(super::backoff_secs(2), 60);
        assert_eq!(super::backoff_secs(20), 3600);
    }
}
