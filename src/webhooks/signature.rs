//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): `webhook-signature`
//! is `v1,` + base64 of HMAC-SHA256, keyed by the secret's bytes, of
//! `{webhook-id}.{webhook-timestamp}.{body}`; several signatures (during a secret's grace
//! period) are separated by spaces, and a receiver accepts the message when one matches.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::WebhookSecret;

/// One `v1,<base64>` signature.
pub(crate) fn sign(key: &[u8], message_id: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mac = Hmac::<Sha256>::new_from_slice(key).map(|mut mac| {
        mac.update(format!("{message_id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        mac.finalize().into_bytes()
    });
    match mac {
        Ok(bytes) => format!("v1,{}", STANDARD.encode(bytes)),
        Err(_) => String::new(),
    }
}

/// The `webhook-signature` header: one signature per secret still valid.
pub(crate) fn header(
    secrets: &[&WebhookSecret],
    message_id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    secrets
        .iter()
        .map(|secret| sign(&secret.key(), message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and its reference libraries.
    #[test]
    fn signs_the_reference_example() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
