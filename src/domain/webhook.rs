//! The vocabulary of webhooks: an endpoint's signing secret (Standard Webhooks `whsec_` +
//! base64, never printed), why an endpoint is off, where a delivery stands, and the URL
//! syntax an endpoint may have. Whether a URL's host may be reached is decided at run time
//! (`webhooks::target`), against the configuration and DNS.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;

use crate::domain::kinds::stored_enum;

stored_enum! {
    /// Why an endpoint is disabled.
    WebhookDisabledReason {
        /// Turned off with `PATCH /v1/webhooks/{id}` `{enabled: false}`.
        Manual = "manual",
        /// Postier turned it off: it kept failing (its owners were told by e-mail).
        Failing = "failing",
    }
}

stored_enum! {
    /// Where a delivery stands.
    DeliveryStatus {
        /// Waiting for its next attempt.
        Pending = "pending",
        /// A 2xx answer was received.
        Delivered = "delivered",
        /// Every retry failed; redeliver it by hand.
        Failed = "failed",
    }
}

const SECRET_PREFIX: &str = "whsec_";

/// An endpoint's signing key as shown to its owner once: `whsec_` + base64 of 32 random
/// bytes. Kept as is, since signing needs the key itself (a hash could not sign).
#[derive(Clone, PartialEq, Eq, sea_orm::DeriveValueType)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// A new random secret (256 bits).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// The text given to the owner at creation or rotation.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the bytes after the prefix (empty for a value that is not a secret).
    pub fn key(&self) -> Vec<u8> {
        self.0
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_[redacted]")
    }
}

/// The URL of an endpoint, syntactically sound: `https` (or `http`, allowed only for hosts
/// of `POSTIER_WEBHOOK_ALLOW_HOSTS`), a host, no credentials (they would show in every
/// answer) and no fragment. Deserializes itself, so a bad `url` is a 422 naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2000;

    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let url = url::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("must be an https:// URL".into());
        }
        if url.host().is_none() {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials (they would show in every answer)".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a #fragment".into());
        }
        Ok(Self(url))
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_base64_of_32_random_bytes_and_never_printed() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(a.key().len(), 32);
        assert_eq!(format!("{a:?}"), "whsec_[redacted]");
    }

    #[test]
    fn urls_need_a_web_scheme_a_host_and_no_credentials() {
        assert!(WebhookUrl::parse("https://hooks.example.com/postier?x=1").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "ftp://example.com/",
            "https://user:pass@example.com/",
            "https://example.com/#x",
            "not a url",
            "mailto:a@example.com",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
