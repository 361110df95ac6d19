//! Access tokens: HS256 JWTs with `iss`, `aud`, `sub`, `sid`, `iat`, `exp`, `auth_time` and a
//! `kid` naming the key. The algorithm is pinned; expiry is checked against the service clock
//! with at most 5 s of leeway. Also owns where the signing secret comes from.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Config;
use crate::entity::setting;

pub(crate) const ISSUER: &str = "postier";
pub(crate) const AUDIENCE: &str = "postier-api";
const LEEWAY_SECS: i64 = 5;
const SECRET_SETTING: &str = "jwt_secret";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The account id.
    pub sub: Uuid,
    /// The session id, checked on every request.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    /// When the password was last proven (login or step-up), seconds since the epoch.
    pub auth_time: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    validation: Validation,
    ttl_secs: i64,
    /// Keys the form tokens of Postier's pages (`page_form_token`), derived from the secret.
    form_key: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or its signature is wrong")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked against the service clock below (tests move it forward).
        validation.validate_exp = false;
        validation.leeway = 0;
        let kid = hex::encode(&Sha256::digest([b"postier-kid:".as_slice(), secret].concat())[..8]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            kid,
            validation,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(900),
            form_key: Sha256::digest([b"postier-page-form-v1:".as_slice(), secret].concat()).into(),
        }
    }

    /// The form token a page embeds next to its link's token: HMAC-SHA256 of the page's
    /// path and the token. Every instance computes the same one (the secret is shared), and a
    /// foreign site cannot: it proves a form was served by Postier when the browser sends no
    /// `Sec-Fetch-Site`.
    pub(crate) fn page_form_token(&self, path: &str, token: &str) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.form_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(path.as_bytes());
        mac.update(b"\0");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Compares a presented form token with the expected one in constant time.
    pub(crate) fn page_form_token_matches(&self, path: &str, token: &str, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.page_form_token(path, token);
        expected.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn issue(
        &self,
        account_id: Uuid,
        session_id: Uuid,
        auth_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: account_id,
            sid: session_id,
            iat: now.timestamp(),
            exp: now.timestamp() + self.ttl_secs,
            auth_time: auth_time.timestamp(),
        };
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.exp + LEEWAY_SECS < now.timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

/// The signing secret: `POSTIER_JWT_SECRET`, else one generated once and kept where every
/// instance finds it: a 0600 file in the data dir with SQLite, the `settings` table with
/// PostgreSQL (docs/architecture.md "Stateless instances").
pub(crate) async fn load_secret(
    config: &Config,
    db: &DatabaseConnection,
) -> Result<Vec<u8>, String> {
    load_named_secret(config.jwt_secret.as_deref(), config, db, SECRET_SETTING).await
}

/// A secret of the instance (`name`: `jwt_secret`, `totp_key`): the configured value, else
/// one generated once and kept like the JWT secret (a file named `name` in the data dir with
/// SQLite, the `settings` row `name` with PostgreSQL).
pub(crate) async fn load_named_secret(
    configured: Option<&str>,
    config: &Config,
    db: &DatabaseConnection,
    name: &str,
) -> Result<Vec<u8>, String> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    if crate::db::is_sqlite(db) {
        return secret_from_file(&config.data_dir.join(name));
    }
    let candidate = STANDARD.encode(random_secret());
    setting::Entity::insert(setting::ActiveModel {
        key: Set(name.into()),
        value: Set(candidate),
    })
    .on_conflict_do_nothing_on([setting::Column::Key])
    .exec(db)
    .await
    .map_err(|e| format!("cannot store the {name}: {e}"))?;
    let stored = setting::Entity::find_by_id(name.to_string())
        .one(db)
        .await
        .map_err(|e| format!("cannot read the {name}: {e}"))?
        .ok_or_else(|| format!("the {name} vanished"))?;
    STANDARD
        .decode(stored.value)
        .map_err(|e| format!("the stored {name} is corrupt: {e}"))
}

fn random_secret() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

fn secret_from_file(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = STANDARD
                .decode(text.trim())
                .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
            if secret.len() < 32 {
                return Err(format!("{} holds fewer than 32 bytes", path.display()));
            }
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let secret = random_secret();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(STANDARD.encode(secret).as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    Ok(secret.to_vec())
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => secret_from_file(path),
                Err(e) => Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_its_key_only() {
        let keys = JwtKeys::new(&[7u8; 32], 900);
        let now = Utc::now();
        let token = keys
            .issue(Uuid::now_v7(), Uuid::now_v7(), now, now)
            .unwrap();
        assert!(keys.verify(&token, now).is_ok());
        let other = JwtKeys::new(&[8u8; 32], 900);
        assert!(matches!(
            other.verify(&token, now),
            Err(TokenError::Invalid)
        ));
        let later = now + chrono::Duration::seconds(900 + LEEWAY_SECS + 1);
        assert!(matches!(
            keys.verify(&token, later),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn the_generated_secret_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt_secret");
        let first = secret_from_file(&path).unwrap();
        let second = secret_from_file(&path).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
