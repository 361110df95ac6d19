//! Opaque secrets handed to clients (refresh tokens, invitation and share-link tokens):
//! 256 random bits, base64url, stored only as their SHA-256 and compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new random token (43 characters of base64url).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a token: hex SHA-256. A token carries 256 bits of entropy, so a fast
/// hash is enough (no dictionary to attack) and allows lookup by equality.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison of a presented token with a stored hash.
pub fn matches(token: &str, stored_hash: &str) -> bool {
    hash(token).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Tokens are base64url of 32 bytes; anything else is refused before touching the database.
pub fn looks_valid(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_256_bit_values_matched_by_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(looks_valid(&a));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
    }
}
