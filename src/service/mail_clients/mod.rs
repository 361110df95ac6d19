//! How mail clients and the webmail reach a mailbox without the address password
//! (docs/identities.md "Which credential for what"): device passwords, shown once and held by
//! one access, and short-lived mailbox tokens for SASL XOAUTH2/OAUTHBEARER. Both belong to the
//! caller's own access: what the mail servers check at every login is that access, its
//! `send_email` and the credential's expiry (the views of migration
//! `create_mail_client_credentials`), so removing the access stops both at the next login.

pub(crate) mod apple_profile;
pub(crate) mod device_passwords;
pub(crate) mod discovery;
pub(crate) mod mailbox_tokens;

use crate::domain::{AddressKind, MailProtocol, Permission, PermissionSet};
use crate::entity::access;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::service::authz::AddressContext;

/// The caller's own access to the address: credentials for the mail servers hang off it
/// (owners and admins without one manage the address but hold no mailbox credential).
fn holder_access(ctx: &AddressContext) -> ApiResult<&access::Model> {
    ctx.access.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::AccessRequired,
            "mail credentials belong to an access: only an account with an access to this \
             address has them (owners and admins can invite themselves)",
        )
    })
}

fn send_email_required() -> ApiError {
    ApiError::new(
        ErrorCode::PermissionDenied,
        "the send_email permission on this address is required for smtp",
    )
}

/// The protocols a credential opens: the requested ones (each offered by the address's kind,
/// `smtp` only with `send_email` on the access), or by default every one the address offers
/// and the access allows. `field` names the request's list in problems.
fn choose_protocols(
    field: &str,
    kind: AddressKind,
    permissions: PermissionSet,
    offered: &[MailProtocol],
    requested: Option<&[MailProtocol]>,
) -> ApiResult<Vec<MailProtocol>> {
    let sends = permissions.contains(Permission::SendEmail);
    let Some(requested) = requested else {
        let chosen: Vec<MailProtocol> = offered
            .iter()
            .copied()
            .filter(|p| p.offered_by(kind) && (*p != MailProtocol::Smtp || sends))
            .collect();
        if chosen.is_empty() {
            // Only a no_reply address without send_email: it has nothing to read or send.
            return Err(send_email_required());
        }
        return Ok(chosen);
    };
    if requested.is_empty() {
        return Err(ApiError::invalid_field(
            field,
            "must name at least one protocol (or be left out for every one allowed)",
        ));
    }
    let mut errors = Vec::new();
    for (i, protocol) in requested.iter().enumerate() {
        if !protocol.offered_by(kind) {
            let why = match protocol {
                MailProtocol::Smtp => "a catchall address receives and cannot send",
                _ => "a no_reply address has no mailbox to read",
            };
            errors.push(FieldError::new(format!("{field}[{i}]"), why));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if requested.contains(&MailProtocol::Smtp) && !sends {
        return Err(send_email_required());
    }
    // In the vocabulary's order, each once.
    Ok(offered
        .iter()
        .copied()
        .filter(|p| requested.contains(p))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(
        kind: AddressKind,
        perms: &[Permission],
        requested: Option<&[MailProtocol]>,
    ) -> Result<Vec<MailProtocol>, (ErrorCode, Vec<String>)> {
        let permissions: PermissionSet = perms.iter().copied().collect();
        choose_protocols("protocols", kind, permissions, MailProtocol::ALL, requested).map_err(
            |e| {
                let fields = e.errors.iter().map(|f| f.field.clone()).collect();
                (e.code, fields)
            },
        )
    }

    #[test]
    fn by_default_a_credential_opens_what_the_kind_offers_and_the_access_allows() {
        use MailProtocol::*;
        let all = [Permission::SendEmail];
        assert_eq!(
            choose(AddressKind::Personal, &all, None),
            Ok(vec![Imap, Pop3, Smtp])
        );
        assert_eq!(
            choose(AddressKind::Personal, &[], None),
            Ok(vec![Imap, Pop3])
        );
        assert_eq!(
            choose(AddressKind::Catchall, &all, None),
            Ok(vec![Imap, Pop3])
        );
        assert_eq!(choose(AddressKind::NoReply, &all, None), Ok(vec![Smtp]));
        assert_eq!(
            choose(AddressKind::NoReply, &[], None).unwrap_err().0,
            ErrorCode::PermissionDenied
        );
    }

    #[test]
    fn requested_protocols_must_fit_the_kind_and_the_permissions() {
        use MailProtocol::*;
        assert_eq!(
            choose(AddressKind::Shared, &[], Some(&[Pop3, Imap, Imap])),
            Ok(vec![Imap, Pop3])
        );
        assert_eq!(
            choose(
                AddressKind::NoReply,
                &[Permission::SendEmail],
                Some(&[Smtp, Imap])
            ),
            Err((ErrorCode::ValidationFailed, vec!["protocols[1]".into()]))
        );
        assert_eq!(
            choose(
                AddressKind::Catchall,
                &[Permission::SendEmail],
                Some(&[Smtp])
            ),
            Err((ErrorCode::ValidationFailed, vec!["protocols[0]".into()]))
        );
        assert_eq!(
            choose(AddressKind::Personal, &[], Some(&[Smtp]))
                .unwrap_err()
                .0,
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            choose(AddressKind::Personal, &[], Some(&[])),
            Err((ErrorCode::ValidationFailed, vec!["protocols".into()]))
        );
    }
}
