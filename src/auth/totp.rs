//! TOTP for two-factor login (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of
//! clock drift either way), computed by the `totp-rs` crate: new secrets, the `otpauth://`
//! URI authenticator apps read, checking a code (answering the step it matched, so that the
//! caller can refuse a replay), recovery codes, and sealing the secret at rest.
//!
//! The secret must stay readable to check codes, so it cannot be hashed like a password. It
//! is sealed with XChaCha20-Poly1305 under a key derived from the instance's TOTP key
//! (`POSTIER_TOTP_KEY`, else generated once and kept like the JWT secret), with the account
//! id as associated data: a copy of the table alone (a dump, a replica, a log of rows) gives
//! no usable secret, and a sealed secret moved to another account does not open.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use crate::error::ApiError;

/// Seconds per step.
pub(crate) const STEP_SECS: i64 = 30;
/// Digits of a code.
pub(crate) const DIGITS: usize = 6;
/// Steps of drift accepted on each side of the current one.
const SKEW_STEPS: i64 = 1;
/// 160 bits, the HMAC-SHA-1 block-size recommendation of RFC 4226.
const SECRET_BYTES: usize = 20;
/// Version tag of the sealed format.
const SEALED_V1: &str = "v1:";
/// How many recovery codes an enrolment gives.
pub(crate) const RECOVERY_CODES: usize = 10;

/// A new random TOTP secret.
pub(crate) fn generate_secret() -> Vec<u8> {
    let mut bytes = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

fn totp(secret: &[u8], issuer: &str, login: &str) -> TOTP {
    // `new_unchecked`: the secret is ours (160 bits) and the label is only displayed.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECS.unsigned_abs(),
        secret.to_vec(),
        Some(issuer.to_string()),
        login.to_string(),
    )
}

/// The secret as authenticator apps take it typed in (base32, no padding).
pub(crate) fn base32(secret: &[u8]) -> String {
    totp(secret, "", "").get_secret_base32()
}

/// The `otpauth://totp/<issuer>:<login>?secret=…&issuer=…` URI (SHA-1, 6 digits, 30 s are
/// the defaults it leaves implicit), usually shown as a QR code.
pub(crate) fn otpauth_uri(secret: &[u8], issuer: &str, login: &str) -> String {
    totp(secret, issuer, login).get_url()
}

/// The step whose code `code` is at `now`, within one step either way; `None` when it
/// matches none. Compared in constant time.
pub(crate) fn matching_step(secret: &[u8], code: &str, now: DateTime<Utc>) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let generator = totp(secret, "", "");
    let current = now.timestamp().div_euclid(STEP_SECS);
    let mut found = None;
    // Every candidate is computed, whatever matches, so the time does not tell which.
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        let Ok(at) = u64::try_from(step * STEP_SECS) else {
            continue;
        };
        let expected = generator.generate(at);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Whether `code` looks like a TOTP code (six digits, spaces ignored) rather than a
/// recovery code.
pub(crate) fn normalize_totp(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A new recovery code: 80 random bits as four groups of four base32 characters
/// (`abcd-efgh-ijkl-mnop`). With that much entropy a SHA-256 of it is enough to store.
pub(crate) fn generate_recovery_code() -> String {
    let mut bytes = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let text = base32(&bytes).to_lowercase();
    text.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// A recovery code as stored: lower-case, without separators or spaces, then SHA-256.
pub(crate) fn recovery_code_hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crate::auth::token::hash(&normalized)
}

/// The key that seals TOTP secrets, derived from the instance's TOTP key.
#[derive(Clone)]
pub struct SecretKey {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    /// Derives the sealing key from the instance secret (any length; generated ones are 32
    /// random bytes).
    pub fn derive(instance_secret: &[u8]) -> Self {
        let digest =
            Sha256::digest([b"postier-totp-seal-v1:".as_slice(), instance_secret].concat());
        let mut key = [0u8; 32];
        key.copy_from_slice(&digest);
        Self { key }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }

    /// `v1:` + base64(nonce ‖ ciphertext), bound to `account_id`.
    pub fn seal(&self, account_id: Uuid, secret: &[u8]) -> Result<String, ApiError> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| ApiError::internal("cannot seal a TOTP secret"))?;
        Ok(format!(
            "{SEALED_V1}{}",
            STANDARD.encode([nonce.as_slice(), &sealed].concat())
        ))
    }

    /// The secret sealed for `account_id` (a 500 when it does not open: another key, or
    /// another account's row).
    pub fn open(&self, account_id: Uuid, sealed: &str) -> Result<Vec<u8>, ApiError> {
        let unreadable = || ApiError::internal("a stored TOTP secret does not open with this key");
        let bytes = sealed
            .strip_prefix(SEALED_V1)
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or_else(unreadable)?;
        if bytes.len() < 24 {
            return Err(unreadable());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| unreadable())?;
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| unreadable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the secret is the ASCII "12345678901234567890"), taking
    /// the last six of its eight digits.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let now = DateTime::from_timestamp(time, 0).unwrap();
            let six = &eight[2..];
            assert_eq!(matching_step(secret, six, now), Some(time / 30), "{time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_way_and_no_further() {
        let secret = generate_secret();
        let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap();
        let code = totp(&secret, "", "").generate(3000);
        assert_eq!(matching_step(&secret, &code, at(3000)), Some(100));
        assert_eq!(matching_step(&secret, &code, at(3030)), Some(100));
        assert_eq!(matching_step(&secret, &code, at(2970)), Some(100));
        assert_eq!(matching_step(&secret, &code, at(3060)), None);
        assert_eq!(matching_step(&secret, "12345", at(3000)), None);
        assert_eq!(matching_step(&secret, "abcdef", at(3000)), None);
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_login() {
        let uri = otpauth_uri(b"12345678901234567890", "Postier", "alice@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Postier:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Postier"
        );
    }

    #[test]
    fn a_sealed_secret_opens_for_its_account_and_key_only() {
        let key = SecretKey::derive(&[7u8; 32]);
        let account = Uuid::now_v7();
        let secret = generate_secret();
        let sealed = key.seal(account, &secret).unwrap();
        assert!(!sealed.contains(&base32(&secret)));
        assert_eq!(key.open(account, &sealed).unwrap(), secret);
        assert!(key.open(Uuid::now_v7(), &sealed).is_err());
        assert!(SecretKey::derive(&[8u8; 32])
            .open(account, &sealed)
            .is_err());
    }

    #[test]
    fn recovery_codes_are_80_bit_groups_hashed_without_their_separators() {
        let code = generate_recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        assert_eq!(
            recovery_code_hash(&code),
            recovery_code_hash(&code.to_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_code_hash(&code),
            recovery_code_hash(&generate_recovery_code())
        );
    }
}
