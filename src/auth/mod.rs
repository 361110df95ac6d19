//! The account identity at request time: password hashing on a fixed pool of workers, access
//! tokens (JWT) and refresh tokens, the short-lived session cache, the request extractors
//! (`AuthUser`, `ClientIp`), the plain [`Caller`] they give the service layer, opaque random
//! tokens and TOTP codes. `service::authz` decides
//! *what* is allowed; this decides *who*.

pub mod api_token;
pub(crate) mod caller;
pub(crate) mod extractor;
pub(crate) mod jwt;
pub(crate) mod password;
pub mod rate_limit;
pub(crate) mod scopes;
pub(crate) mod session_cache;
pub(crate) mod throttle;
pub mod token;
pub(crate) mod totp;

pub use caller::{Caller, TokenGrant};
pub use extractor::{AuthUser, ClientIp};
pub use jwt::JwtKeys;
pub use password::PasswordHasher;
pub use session_cache::SessionCache;
