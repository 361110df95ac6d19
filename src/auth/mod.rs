//! The account identity at request time: password hashing on a bounded blocking pool, access
//! tokens (JWT) and refresh tokens, the request extractors (`AuthUser`, `ClientIp`), the plain
//! [`Caller`] they give the service layer, opaque random tokens and TOTP codes. `service::authz` decides
//! *what* is allowed; this decides *who*.

pub mod caller;
pub mod extractor;
pub mod jwt;
pub mod password;
pub mod throttle;
pub mod token;
pub mod totp;

pub use caller::Caller;
pub use extractor::{AuthUser, ClientIp};
pub use jwt::JwtKeys;
pub use password::PasswordHasher;
