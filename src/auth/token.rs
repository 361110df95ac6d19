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

/// The key that seals the successor of the refresh token `token`: derived from the token
/// itself, so that only its holder can open what is stored (a database dump reveals no live
/// token, and no server key is needed: any instance opens it).
fn successor_key(token: &str) -> chacha20poly1305::Key {
    let mut hasher = Sha256::new();
    hasher.update(b"postier refresh-token successor v1\0");
    hasher.update(token.as_bytes());
    hasher.finalize()
}

/// `successor` sealed for the holder of the rotated `token` (XChaCha20-Poly1305, the
/// session id as associated data): base64url of the nonce and the ciphertext.
pub fn seal_successor(token: &str, successor: &str, session_id: uuid::Uuid) -> String {
    use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, Payload};
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&successor_key(token));
    let nonce = chacha20poly1305::XChaCha20Poly1305::generate_nonce(&mut rand::rngs::OsRng);
    let payload = Payload {
        msg: successor.as_bytes(),
        aad: session_id.as_bytes(),
    };
    // Encrypting a few bytes in memory cannot fail; an empty seal would only never open.
    let sealed = cipher.encrypt(&nonce, payload).unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(out)
}

/// The successor sealed by [`seal_successor`], opened with the rotated `token`; `None` when
/// it does not open (another token, another session, altered).
pub fn open_successor(token: &str, sealed: &str, session_id: uuid::Uuid) -> Option<String> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let (nonce, ciphertext) = bytes.split_first_chunk::<24>()?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&successor_key(token));
    let payload = Payload {
        msg: ciphertext,
        aad: session_id.as_bytes(),
    };
    let plain = cipher
        .decrypt(&chacha20poly1305::XNonce::from(*nonce), payload)
        .ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successor_opens_only_with_its_token_and_session() {
        let (old, new) = (generate(), generate());
        let session = uuid::Uuid::now_v7();
        let sealed = seal_successor(&old, &new, session);
        assert!(!sealed.contains(&new));
        assert_eq!(
            open_successor(&old, &sealed, session).as_deref(),
            Some(new.as_str())
        );
        assert_eq!(open_successor(&generate(), &sealed, session), None);
        assert_eq!(open_successor(&old, &sealed, uuid::Uuid::now_v7()), None);
        assert_eq!(open_successor(&old, "garbage", session), None);
    }

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
