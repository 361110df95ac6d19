//! Device passwords (issue 14; docs/identities.md): a printer, a scanner or a mail client gets
//! its own password for one address, generated here and shown once, that logs in with the
//! address as user name beside the address password and can be revoked alone. The secret is
//! `pst_<public id>_<50 random [a-z0-9]>` (258 bits): the public id is not secret and lets
//! Dovecot's SQL passdb select the one row whose argon2id hash it verifies, so the query text
//! never holds the secret (README "Device passwords").

use chrono::{DateTime, Utc};
use rand::Rng;
use uuid::Uuid;

use super::{choose_protocols, holder_access};
use crate::auth::Caller;
use crate::domain::MailProtocol;
use crate::entity::{account, device_password};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo;
use crate::service::audit::Change;
use crate::service::authz::{self, AddressContext, Need};
use crate::service::UnitOfWork;
use crate::state::AppState;

/// Device passwords one access may hold, expired ones included.
pub(crate) const MAX_PER_ACCESS: u64 = 20;
/// What every device password starts with; the generated mail stack relies on it.
pub(crate) const PREFIX: &str = "pst_";
const PUBLIC_ID_LEN: usize = 8;
const SECRET_LEN: usize = 50;

/// `n` characters of `[a-z0-9]`, uniformly from the OS's generator (5.17 bits each).
fn alphanumeric(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// What the holder asks for.
pub(crate) struct DevicePasswordRequest {
    pub label: String,
    pub protocols: Option<Vec<MailProtocol>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new device password: the only time its secret exists outside the device.
pub(crate) struct CreatedDevicePassword {
    pub device_password: device_password::Model,
    pub holder: account::Model,
    /// The user name to type: the full address.
    pub username: String,
    pub password: String,
}

/// Creates a device password of the caller's own access to the address.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    request: DevicePasswordRequest,
) -> ApiResult<CreatedDevicePassword> {
    let ctx = authz::address(&state.db, caller, address_id, Need::See).await?;
    holder_access(&ctx)?;
    let label = request.label.trim().to_string();
    if label.is_empty() || label.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "label",
            "must be 1 to 64 characters without control characters",
        ));
    }
    if let Some(at) = request.expires_at {
        if at <= state.clock.now() {
            return Err(ApiError::invalid_field(
                "expires_at",
                "must be in the future",
            ));
        }
    }
    let public_id = alphanumeric(PUBLIC_ID_LEN);
    let password = format!("{PREFIX}{public_id}_{}", alphanumeric(SECRET_LEN));
    // Hashed before the transaction: argon2id takes tens of milliseconds.
    let password_hash = state.passwords.hash(password.clone()).await?;
    let uow = UnitOfWork::begin(state).await?;
    // The limit and the permissions are read under the access's lock: two requests cannot
    // both take the twentieth place, nor use a send_email taken away meanwhile.
    let access = repo::mail_clients::lock_access(uow.tx(), address_id, caller.account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let protocols = choose_protocols(
        "protocols",
        ctx.address.kind,
        access.permissions,
        MailProtocol::ALL,
        request.protocols.as_deref(),
    )?;
    let held =
        repo::mail_clients::count_device_passwords(uow.tx(), address_id, caller.account_id).await?;
    if held >= MAX_PER_ACCESS {
        return Err(ApiError::new(
            ErrorCode::DevicePasswordLimitReached,
            format!(
                "an access holds at most {MAX_PER_ACCESS} device passwords (expired ones \
                 included): revoke unused ones first"
            ),
        ));
    }
    let created = repo::mail_clients::insert_device_password(
        uow.tx(),
        repo::mail_clients::NewDevicePassword {
            public_id,
            address_id,
            account_id: caller.account_id,
            label,
            protocols: protocols.clone(),
            password_hash,
            expires_at: request.expires_at,
        },
        uow.now(),
    )
    .await?;
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::DevicePasswordCreated {
            device_password_id: created.id,
            account_id: caller.account_id,
            label: created.label.clone(),
            protocols,
            expires_at: created.expires_at,
        },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await?;
    let holder = repo::accounts::find(&state.db, caller.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
    Ok(CreatedDevicePassword {
        device_password: created,
        holder,
        username: ctx.address.address,
        password,
    })
}

/// Whose device passwords the caller lists on an address: everyone's for owners and admins,
/// else its own (an access is needed).
fn listed_holder(ctx: &AddressContext, caller: &Caller) -> ApiResult<Option<Uuid>> {
    if ctx.manages() {
        return Ok(None);
    }
    holder_access(ctx)?;
    Ok(Some(caller.account_id))
}

/// A page of the address's device passwords as the caller may see them.
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<(device_password::Model, account::Model)>> {
    let ctx = authz::address(&state.db, caller, address_id, Need::See).await?;
    let holder = listed_holder(&ctx, caller)?;
    Ok(
        repo::mail_clients::list_device_passwords(&state.db, address_id, holder, after, limit)
            .await?,
    )
}

/// Revokes one device password: its holder, or an owner or admin of the address's
/// organization. Anyone else gets 404, as for one that does not exist.
pub(crate) async fn revoke(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let not_found = || ApiError::not_found("device password");
    let (found, _) = repo::mail_clients::find_device_password(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = authz::visible_address(&state.db, caller, found.address_id)
        .await?
        .ok_or_else(not_found)?;
    if found.account_id != caller.account_id && !ctx.manages() {
        return Err(not_found());
    }
    let uow = UnitOfWork::begin(state).await?;
    if repo::mail_clients::delete_device_password(uow.tx(), id).await? {
        uow.record(
            &caller.actor(),
            ctx.scope(),
            Change::DevicePasswordRevoked {
                device_password_id: id,
                account_id: found.account_id,
                label: found.label,
            },
            &ctx.address.address,
        )
        .await?;
    }
    uow.commit().await
}

/// Revokes every device password of one holder on the address (the caller's own by
/// default; another account's for owners and admins) and answers how many went.
pub(crate) async fn revoke_all(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    holder: Option<Uuid>,
) -> ApiResult<u64> {
    let ctx = authz::address(&state.db, caller, address_id, Need::See).await?;
    let holder = holder.unwrap_or(caller.account_id);
    if holder == caller.account_id {
        if !ctx.manages() {
            holder_access(&ctx)?;
        }
    } else if !ctx.manages() {
        return Err(ApiError::forbidden(
            "only owners and admins revoke another account's device passwords",
        ));
    }
    let uow = UnitOfWork::begin(state).await?;
    let count =
        repo::mail_clients::delete_device_passwords_of(uow.tx(), address_id, holder).await?;
    if count > 0 {
        uow.record(
            &caller.actor(),
            ctx.scope(),
            Change::DevicePasswordsRevoked {
                account_id: holder,
                count,
            },
            &ctx.address.address,
        )
        .await?;
    }
    uow.commit().await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_parts_are_lower_case_letters_and_digits_of_the_right_length() {
        let id = alphanumeric(PUBLIC_ID_LEN);
        let secret = alphanumeric(SECRET_LEN);
        assert_eq!((id.len(), secret.len()), (8, 50));
        assert!(format!("{id}{secret}")
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(alphanumeric(SECRET_LEN), secret);
        // The mail stack reads the id as the 8 characters after the 4-character prefix.
        assert_eq!(PREFIX.len(), 4);
    }
}
