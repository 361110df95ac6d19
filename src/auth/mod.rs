//! The account identity at request time: password hashing on a bounded blocking pool, access
//! tokens (JWT) and refresh tokens, the request extractors (`AuthUser`, `ClientIp`; the
//! fresh-proof check `AuthUser::require_recent_proof`) and opaque random tokens. Routes decide *what* is allowed; this decides *who*.

pub mod extractor;
pub mod jwt;
pub mod password;
pub mod throttle;
pub mod token;

pub use extractor::{AuthUser, ClientIp};
pub use jwt::JwtKeys;
pub use password::PasswordHasher;
