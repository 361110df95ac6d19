//! Mail addresses (`/v1/mail-services/{service_id}/addresses`, `/v1/addresses/{address_id}`,
//! `/v1/me/addresses`), one module per sub-resource.

pub mod aliases;
pub mod attach;
pub mod create;
pub mod crud;
pub mod password;
