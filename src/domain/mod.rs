//! Validated domain types: parse once at the edge, then trust the type. Nothing here touches
//! the database or HTTP; each constructor says precisely why it refuses a value.

mod address;
mod kinds;
mod pack;
mod password;
mod permission;
mod role;
mod secret;

pub use address::{DomainName, EmailAddress, LocalPart, ParseError};
pub use kinds::{AccessOrigin, AccountBinding, AddressKind, InvitationStatus};
pub use pack::{Pack, PackLimits};
pub use password::PasswordPolicy;
pub use permission::{Permission, PermissionSet};
pub use role::Role;
pub use secret::Secret;
