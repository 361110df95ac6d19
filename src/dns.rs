//! DKIM keys of hosted domains (the DNS records and live checks are being added on the `dns`
//! branch; this file is replaced when it lands).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::RsaPrivateKey;

pub struct DkimKey {
    pub selector: String,
    pub private_key_pem: String,
    pub public_key_b64: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DKIM key generation failed: {0}")]
    Key(String),
}

/// A 2048-bit RSA key on the blocking pool, its selector named by date.
pub async fn generate_dkim_key(now: DateTime<Utc>) -> Result<DkimKey, DnsError> {
    let selector = format!("postier-{}", now.format("%Y%m%d"));
    crate::telemetry::spawn_blocking_with_tracing(move || {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .map_err(|e| DnsError::Key(e.to_string()))?;
        let private_key_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| DnsError::Key(e.to_string()))?
            .to_string();
        let public = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| DnsError::Key(e.to_string()))?;
        Ok(DkimKey {
            selector,
            private_key_pem,
            public_key_b64: STANDARD.encode(public.as_bytes()),
        })
    })
    .await
    .map_err(|e| DnsError::Key(e.to_string()))?
}
