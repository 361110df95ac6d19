//! Flows that span several resources in one transaction, and the access rules every route
//! shares. No HTTP types beyond `ApiError`.

pub mod accounts;
pub mod addresses;
pub mod authz;
pub mod import;
pub mod settings;
pub mod sharing;
