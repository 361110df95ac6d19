//! Mail addresses (`/v1/mail-services/{service_id}/addresses`, `/v1/addresses/{address_id}`,
//! `/v1/me/addresses`), one module per sub-resource.

pub(super) mod aliases;
pub(super) mod attach;
pub(super) mod create;
pub(super) mod crud;
pub(super) mod password;
