//! The account identity at request time: password hashing on a fixed pool of workers, access
//! tokens (JWT) and refresh tokens, the short-lived session cache, the request extractors
//! (`AuthUser`, `ClientIp`), the plain [`Caller`] they give the service layer, opaque random
//! tokens and TOTP codes. `service::authz` decides
//! *what* is allowed; this decides *who*.

pub mod caller;
pub mod extractor;
pub mod jwt;
pub mod password;
pub mod session_cache;
pub mod throttle;
pub mod token;
pub mod totp;

pub use caller::Caller;
pub use extractor::{AuthUser, ClientIp};
pub use jwt::JwtKeys;
pub use password::PasswordHasher;
pub use session_cache::SessionCache;
