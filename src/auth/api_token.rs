//! The secret of a personal API token: `postier_pat_` and 43 characters of base64url
//! (256 random bits). The prefix lets secret scanners recognise a leaked one and lets the
//! extractor tell it from a JWT; only its SHA-256 is stored, looked up by equality.

use uuid::Uuid;

/// What every API token starts with.
pub const PREFIX: &str = "postier_pat_";

/// Characters of the secret kept as its non-secret hint (the prefix and 4 more).
const HINT_CHARS: usize = PREFIX.len() + 4;

/// A new secret.
pub fn generate() -> String {
    format!("{PREFIX}{}", crate::auth::token::generate())
}

/// True for something shaped like an API token (checked before any lookup).
pub fn looks_like(token: &str) -> bool {
    token
        .strip_prefix(PREFIX)
        .is_some_and(crate::auth::token::looks_valid)
}

/// Hex SHA-256 of the whole secret, as stored.
pub fn hash(token: &str) -> String {
    crate::auth::token::hash(token)
}

/// The beginning shown in lists (`postier_pat_AbCd…`): 24 of 256 bits, useless to a guesser.
pub fn hint(token: &str) -> String {
    format!("{}…", token.get(..HINT_CHARS).unwrap_or(token))
}

/// The key a token's lookups are cached under: derived from its hash, so that the cache is
/// asked before the database knows the token's id.
pub fn cache_key(hash: &str) -> Uuid {
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = hash
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_has_the_prefix_is_recognised_and_hints_only_its_beginning() {
        let secret = generate();
        assert!(secret.starts_with("postier_pat_"));
        assert_eq!(secret.len(), PREFIX.len() + 43);
        assert!(looks_like(&secret));
        assert!(!looks_like("eyJhbGciOiJIUzI1NiJ9.e30.x"));
        assert!(!looks_like("postier_pat_short"));
        assert_eq!(hint(&secret).chars().count(), HINT_CHARS + 1);
        assert_ne!(cache_key(&hash(&secret)), cache_key(&hash(&generate())));
    }
}
