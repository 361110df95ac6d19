//! The flows of the API: every multi-step write lives here, each in a [`UnitOfWork`]
//! (one transaction, then its post-commit effects), with the access rules every route shares
//! (`authz`) and the audit vocabulary (`audit`). Services take a plain [`crate::auth::Caller`]
//! and the application state, never an HTTP type; they answer entities or the JSON views the
//! routes send (docs/architecture.md).

pub(crate) mod accounts;
pub(crate) mod addresses;
pub mod api_tokens;
pub mod audit;
pub(crate) mod authz;
pub(crate) mod dangerous;
pub mod domain_claims;
pub(crate) mod domains;
pub(crate) mod import;
pub(crate) mod links;
pub(crate) mod mail_clients;
pub(crate) mod mail_services;
pub(crate) mod member_invitations;
pub(crate) mod organizations;
pub(crate) mod outreach;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod sharing;
pub(crate) mod two_factor;
pub(crate) mod uow;
pub(crate) mod webhooks;

pub use uow::{UnitOfWork, WriteBatch};
