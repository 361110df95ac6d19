//! argon2id hashing and verification on tokio's blocking pool, behind a semaphore sized to
//! the cores: a flood of logins queues here instead of exhausting memory (each hash takes
//! `memory_kib`). Unknown logins are verified against a dummy hash so timing does not tell.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::{Argon2Config, Config};
use crate::error::ApiError;
use crate::telemetry::spawn_blocking_with_tracing;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
    verifications: Arc<AtomicU64>,
}

impl PasswordHasher {
    pub fn new(config: &Argon2Config) -> Result<Self, argon2::Error> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )?;
        let permits = if config.max_concurrent == 0 {
            Config::cores()
        } else {
            config.max_concurrent
        };
        let dummy_hash = hash_blocking(&params, "postier dummy password for unknown logins")
            .map_err(|_| argon2::Error::AlgorithmInvalid)?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: dummy_hash.into(),
            verifications: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The argon2id PHC string of `password` (with a fresh random salt).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let params = self.params.clone();
        spawn_blocking_with_tracing(move || hash_blocking(&params, &password))
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Hashes many passwords, as many at once as the pool allows.
    pub async fn hash_all(&self, passwords: Vec<String>) -> Result<Vec<String>, ApiError> {
        let tasks = passwords.into_iter().map(|p| self.hash(p));
        futures_util::future::try_join_all(tasks).await
    }

    /// Whether `password` matches `stored`; with no stored hash, spends the same time on the
    /// dummy hash and answers false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let (hash, known) = match stored {
            Some(hash) => (hash, true),
            None => (self.dummy_hash.to_string(), false),
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let matched = spawn_blocking_with_tracing(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await?;
        Ok(known && matched)
    }
}

impl PasswordHasher {
    /// argon2 verifications run so far (real or dummy): lets tests prove that an unknown
    /// login costs one verification like a wrong password.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Config {
        Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }
}
