//! Mailbox tokens (issue 14): the webmail, acting for an account, reaches one mailbox at the
//! mail servers with SASL XOAUTH2 or OAUTHBEARER and a token Postier issued for it, so that
//! no long-lived credential of the account ever reaches Dovecot or Postfix. A token is 256
//! random bits, kept as its SHA-256 (which Dovecot computes itself to find the row), for one
//! address, with scopes from the caller's access (`imap` for reading, `smtp` needs
//! `send_email`), and lives `POSTIER_MAILBOX_TOKEN_TTL_SECS` (10 minutes by default). It is
//! not single-use: a webmail opens a new IMAP connection for most requests. Expiry, removing
//! the access or losing `send_email` refuse it at the next login (the `mail_tokens` view).
//! Issuing one is not an audit event (a webmail asks every few minutes, like refreshing a
//! session); the access that allows it is, and the mail servers log every login.

use chrono::Duration;
use uuid::Uuid;

use super::{choose_protocols, holder_access};
use crate::auth::{token, Caller};
use crate::domain::{MailProtocol, MailboxScope};
use crate::error::{ApiError, ApiResult};
use crate::repo::{self, counters};
use crate::service::authz::{self, Need};
use crate::service::UnitOfWork;
use crate::state::AppState;

/// Tokens one access may be issued per window: a webmail needs one per lifetime.
const ISSUED_PER_WINDOW: i64 = 30;
const WINDOW_SECS: i64 = 600;

/// A new token, shown once.
pub(crate) struct IssuedToken {
    pub token: String,
    /// The SASL user name: the full address.
    pub username: String,
    pub expires_in: u64,
    pub scopes: Vec<MailboxScope>,
}

/// Issues a token of the caller's own access to the address.
pub(crate) async fn issue(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    scopes: Option<Vec<MailboxScope>>,
) -> ApiResult<IssuedToken> {
    let ctx = authz::address(&state.db, caller, address_id, Need::See).await?;
    holder_access(&ctx)?;
    let requested: Option<Vec<MailProtocol>> =
        scopes.map(|s| s.iter().map(|s| s.protocol()).collect());
    let now = state.clock.now();
    let key = format!("mailbox_token:{address_id}:{}", caller.account_id);
    let issued = counters::window(&state.db, &key, now, WINDOW_SECS).await?;
    if issued.total >= ISSUED_PER_WINDOW {
        let retry = issued
            .frees_in_secs(now, WINDOW_SECS)
            .unwrap_or(WINDOW_SECS);
        return Err(ApiError::throttled(u64::try_from(retry).unwrap_or(1)));
    }
    let secret = token::generate();
    let ttl = state.config.mailbox_token_ttl_secs;
    let uow = UnitOfWork::begin(state).await?;
    // The permissions as they are now, under the access's lock (a removal or a permission
    // change committing meanwhile is seen).
    let access = repo::mail_clients::lock_access(uow.tx(), address_id, caller.account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let protocols = choose_protocols(
        "scopes",
        ctx.address.kind,
        access.permissions,
        &[MailProtocol::Imap, MailProtocol::Smtp],
        requested.as_deref(),
    )?;
    repo::mail_clients::prune_mailbox_tokens(uow.tx(), uow.now()).await?;
    repo::mail_clients::insert_mailbox_token(
        uow.tx(),
        repo::mail_clients::NewMailboxToken {
            token_hash: token::hash(&secret),
            address_id,
            account_id: caller.account_id,
            imap: protocols.contains(&MailProtocol::Imap),
            smtp: protocols.contains(&MailProtocol::Smtp),
            expires_at: uow.now() + Duration::seconds(i64::try_from(ttl).unwrap_or(600)),
        },
        uow.now(),
    )
    .await?;
    counters::add(uow.tx(), &key, uow.now(), 1).await?;
    uow.commit().await?;
    let scopes = protocols
        .iter()
        .map(|p| match p {
            MailProtocol::Smtp => MailboxScope::Smtp,
            _ => MailboxScope::Imap,
        })
        .collect();
    Ok(IssuedToken {
        token: secret,
        username: ctx.address.address,
        expires_in: ttl,
        scopes,
    })
}
