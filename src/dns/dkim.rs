//! DKIM signing keys: 2048-bit RSA made on the blocking pool, selectors named by date.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::DnsError;
use crate::telemetry::spawn_blocking_with_tracing;

/// Size of generated DKIM keys: 2048 bits is what RFC 8301 recommends and every receiver takes.
pub const DKIM_KEY_BITS: usize = 2048;

/// A domain's DKIM signing key. The private key is a secret: `Debug` leaves it out.
#[derive(Clone)]
pub struct DkimKey {
    /// Names the key in DNS: `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), for the signing MTA.
    pub private_key_pem: String,
    /// Base64 of the DER SubjectPublicKeyInfo: the `p=` tag of the DKIM record.
    pub public_key_b64: String,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("private_key_pem", &"[redacted]")
            .field("public_key_b64", &self.public_key_b64)
            .finish()
    }
}

/// The selector of a key made at `now`, named by date (`postier-20261127`) so a rotation
/// publishes a new name beside the old one instead of replacing a cached record.
pub fn dkim_selector(now: DateTime<Utc>) -> String {
    format!("postier-{}", now.format("%Y%m%d"))
}

/// One key at a time per process: a 2048-bit key takes a core for 0.1–1 s, and a burst of
/// domain creations must queue rather than take every core from logins and the policy service.
static KEY_GENERATION: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// How long a request waits for its turn before giving up (`DnsError::Busy`).
const KEY_GENERATION_WAIT_SECS: u64 = 30;

/// A fresh 2048-bit RSA DKIM key, generated on the blocking pool (it takes a CPU for a while).
pub async fn generate_dkim_key(now: DateTime<Utc>) -> Result<DkimKey, DnsError> {
    let permit = tokio::time::timeout(
        std::time::Duration::from_secs(KEY_GENERATION_WAIT_SECS),
        KEY_GENERATION.acquire(),
    )
    .await
    .map_err(|_| DnsError::Busy(KEY_GENERATION_WAIT_SECS))?
    .map_err(|e| DnsError::KeyGeneration(e.to_string()))?;
    // The permit goes with the work: a client that hangs up drops this future, but the
    // blocking generation runs on, and still holds the turn until it ends.
    let (private_key_pem, public_key_b64) = spawn_blocking_with_tracing(move || {
        let _permit = permit;
        generate_rsa()
    })
    .await??;
    Ok(DkimKey {
        selector: dkim_selector(now),
        private_key_pem,
        public_key_b64,
    })
}

fn generate_rsa() -> Result<(String, String), DnsError> {
    let failed = |e: &dyn std::fmt::Display| DnsError::KeyGeneration(e.to_string());
    let private =
        RsaPrivateKey::new(&mut rand::rngs::OsRng, DKIM_KEY_BITS).map_err(|e| failed(&e))?;
    let pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| failed(&e))?;
    let der = RsaPublicKey::from(&private)
        .to_public_key_der()
        .map_err(|e| failed(&e))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    Ok((pem.to_string(), b64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_named_by_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T23:59:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(dkim_selector(now), "postier-20261127");
    }

    #[tokio::test]
    async fn generated_keys_are_2048_bit_rsa_in_pkcs8_and_spki() {
        use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
        use rsa::traits::PublicKeyParts;

        let key = generate_dkim_key(Utc::now()).await.unwrap();
        let private = RsaPrivateKey::from_pkcs8_pem(&key.private_key_pem).unwrap();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&key.public_key_b64)
            .unwrap();
        let public = RsaPublicKey::from_public_key_der(&der).unwrap();
        assert_eq!(public, RsaPublicKey::from(&private));
        assert_eq!(public.size() * 8, DKIM_KEY_BITS);
        assert!(key
            .private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{key:?}").contains("PRIVATE KEY"));
    }
}
