//! The flows of the API: every multi-step write lives here, each in a [`UnitOfWork`]
//! (one transaction, then its post-commit effects), with the access rules every route shares
//! (`authz`) and the audit vocabulary (`audit`). Services take a plain [`crate::auth::Caller`]
//! and the application state, never an HTTP type; they answer entities or the JSON views the
//! routes send (docs/architecture.md).

pub mod accounts;
pub mod addresses;
pub mod audit;
pub mod authz;
pub mod dangerous;
pub mod domain_claims;
pub mod domains;
pub mod import;
pub(crate) mod links;
pub mod mail_clients;
pub mod mail_services;
pub(crate) mod member_invitations;
pub mod organizations;
pub(crate) mod outreach;
pub mod sessions;
pub mod settings;
pub mod sharing;
pub(crate) mod two_factor;
pub mod uow;
pub mod webhooks;

pub use uow::UnitOfWork;
