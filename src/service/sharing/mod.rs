//! Sharing an address with users: invitations (by login to members, by e-mail to anyone
//! else) and their answers, share links, and the accesses they give (`users`). Each answer
//! is single-use and atomic: the status or use count moves with a conditional update, and
//! the access is written in the same transaction.

pub(crate) mod invitations;
pub(crate) mod share_links;
pub(crate) mod users;

use sea_orm::ConnectionTrait;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{AccountBinding, EmailAddress, Secret};
use crate::entity::{account, address, mail_service};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo;
use crate::state::AppState;

/// The invitee of an address: a member of the organization by `login`, or anyone else by
/// `email` (exactly one of the two).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteeRequest {
    pub login: Option<EmailAddress>,
    pub email: Option<EmailAddress>,
}

/// `oneOf` the two forms, each with its one required member, so that the document states
/// "exactly one of the two" as the server checks it.
impl utoipa::PartialSchema for InviteeRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder};
        use utoipa::openapi::Ref;
        let form = |name: &str, title: &str, description: &str| {
            ObjectBuilder::new()
                .title(Some(title))
                .description(Some(description))
                .property(name, Ref::from_schema_name("EmailAddress"))
                .required(name)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .description(Some(
                "A member of the organization by `login`, or anyone else by `email`: exactly one of the two.",
            ))
            .item(form(
                "login",
                "InviteeByLogin",
                "A member of the organization, by login",
            ))
            .item(form("email", "InviteeByEmail", "Anyone, by e-mail address"))
            .into()
    }
}

impl ToSchema for InviteeRequest {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("EmailAddress".into(), EmailAddress::schema()));
    }
}

/// A token from an e-mailed link or a share link (`{token}`).
#[derive(Debug, Deserialize, validator::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRequest {
    /// The token from the e-mailed link, or of the share link.
    #[schema(value_type = String)]
    pub token: Secret,
}

/// Who is invited.
pub(crate) enum Invitee {
    /// An account that is a member of the organization, found by login.
    Member(account::Model),
    /// Anyone else, by e-mail.
    Email(EmailAddress),
}

/// Turns `{login}` / `{email}` into an invitee: a login must be a member of the
/// organization; anyone else is invited by e-mail.
pub(crate) async fn resolve_invitee(
    state: &AppState,
    service: &mail_service::Model,
    invitee: &InviteeRequest,
) -> ApiResult<Invitee> {
    match (&invitee.login, &invitee.email) {
        (Some(login), None) => {
            let member = match repo::accounts::find_by_login(&state.db, login.as_str()).await? {
                Some(account)
                    if repo::organizations::role_of(&state.db, service.organization_id, account.id)
                        .await?
                        .is_some() =>
                {
                    account
                }
                _ => {
                    return Err(ApiError::invalid_field(
                        "invitee.login",
                        format!("{login} is not a member of this organization; invite them by e-mail instead"),
                    ))
                }
            };
            Ok(Invitee::Member(member))
        }
        (None, Some(email)) => Ok(Invitee::Email(email.clone())),
        _ => Err(ApiError::invalid_field(
            "invitee",
            "give either login (a member of the organization) or email (anyone else)",
        )),
    }
}

/// `account_binding` is for invitations by e-mail only.
pub(crate) fn check_binding(invitee: &Invitee, binding: Option<AccountBinding>) -> ApiResult<()> {
    if matches!(invitee, Invitee::Member(_)) && binding == Some(AccountBinding::ThisAddress) {
        return Err(ApiError::invalid_field(
            "account_binding",
            "applies to invitations by e-mail only",
        ));
    }
    Ok(())
}

/// An address that is the login of an account cannot be shared with anyone else (seed
/// rule): once that account holds an access to it, only that account may receive one. Only
/// an account that verified the login counts, and only once it holds an access: signing up
/// with the address as login proves no ownership of it, and must not lock its organization
/// out of sharing it.
pub(crate) async fn ensure_shareable(
    conn: &impl ConnectionTrait,
    address: &address::Model,
    recipient: Option<Uuid>,
) -> ApiResult<()> {
    if let Some(owner) = repo::accounts::find_verified_by_login(conn, &address.address).await? {
        let holds_it = repo::sharing::find_access(conn, address.id, owner.id)
            .await?
            .is_some();
        if holds_it && Some(owner.id) != recipient {
            return Err(ApiError::conflict(
                ErrorCode::AddressIsAccountLogin,
                format!(
                    "{} is the login of an account and cannot be shared with anyone else",
                    address.address
                ),
            ));
        }
    }
    Ok(())
}
