//! What a dangerous operation (deleting an address or a mail service, unlinking a domain)
//! asks of its caller once it is known to be allowed: a recent password proof and the typed
//! name of what goes (docs/flows.md "Deleting").

use crate::auth::Caller;
use crate::domain::DomainName;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::state::AppState;

/// Demands a password proof younger than `POSTIER_REAUTH_WINDOW_SECS`.
pub(crate) fn recent_proof(state: &AppState, caller: &Caller) -> ApiResult<()> {
    caller.require_recent_proof(state.config.reauth_window_secs, state.clock.now())
}

/// Demands `?confirm=` naming `expected` (case-insensitive; a domain may be typed in its
/// Unicode form).
pub(crate) fn confirmation(confirm: Option<&str>, expected: &str) -> ApiResult<()> {
    let given = confirm.map(|c| c.trim().to_lowercase());
    let matches = given.as_deref().is_some_and(|g| {
        g == expected || DomainName::parse(g).is_ok_and(|d| d.as_str() == expected)
    });
    if !matches {
        return Err(ApiError::new(
            ErrorCode::ConfirmationRequired,
            format!("add ?confirm={expected} to confirm the deletion"),
        )
        .with_errors(vec![FieldError::new(
            "confirm",
            format!("must be {expected}"),
        )]));
    }
    Ok(())
}
