//! sea-orm entities, one per table (the schema itself is owned by the `migration` crate).
//! Plain data: validation lives in `domain`, queries in `repo`.

pub mod access;
pub mod account;
pub(crate) mod account_token;
pub mod address;
pub mod alias;
pub(crate) mod api_token;
pub mod auto_reply;
pub mod counter;
pub mod device_password;
pub mod domain;
pub mod event;
pub mod forward;
pub(crate) mod idempotency_key;
pub mod invitation;
pub mod mail_service;
pub mod mailbox_token;
pub(crate) mod member_invitation;
pub mod membership;
pub mod organization;
pub mod outbox;
pub(crate) mod recovery_code;
pub mod refresh_token;
pub mod session;
pub mod setting;
pub mod share_link;
pub(crate) mod totp_credential;
pub mod webhook;
pub mod webhook_attempt;
pub mod webhook_delivery;
