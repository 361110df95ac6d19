//! The password policy shared by accounts and addresses: length bounds, no composition rules,
//! refused when weak (zxcvbn score below 3) or when it contains the login.

/// Longest password accepted (argon2 would take more, but nobody types more).
pub(super) const MAX_PASSWORD_LENGTH: usize = 128;

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl PasswordPolicy {
    /// Checks `password` for an owner identified by `identities` (login, address…).
    /// The error is a sentence for the `password` field.
    pub fn check(&self, password: &str, identities: &[&str]) -> Result<(), String> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(format!(
                "must be at least {} characters long (it has {length})",
                self.min_length
            ));
        }
        if length > MAX_PASSWORD_LENGTH {
            return Err(format!(
                "must be at most {MAX_PASSWORD_LENGTH} characters long (it has {length})"
            ));
        }
        let lowered = password.to_lowercase();
        for identity in identities {
            let identity = identity.to_lowercase();
            let local = identity.split('@').next().unwrap_or_default();
            if !identity.is_empty() && lowered.contains(&identity) {
                return Err("must not contain the login or the address".into());
            }
            if local.len() >= 4 && lowered.contains(local) {
                return Err("must not contain the name of the login or the address".into());
            }
        }
        let inputs: Vec<&str> = identities
            .iter()
            .flat_map(|i| i.split(['@', '.', '-', '_']))
            .filter(|s| s.len() >= 3)
            .collect();
        let estimate = zxcvbn::zxcvbn(password, &inputs);
        if (estimate.score() as u8) < 3 {
            let hint = estimate
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            return Err(format!(
                "is too easy to guess{hint}; a few unrelated words make a strong password"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy { min_length: 12 };

    #[test]
    fn strong_passphrases_pass() {
        POLICY
            .check("correct horse battery staple", &["alice@example.com"])
            .unwrap();
    }

    #[test]
    fn short_weak_and_login_containing_passwords_are_refused() {
        assert!(POLICY
            .check("short", &[])
            .unwrap_err()
            .contains("at least 12"));
        assert!(POLICY
            .check("password1234", &[])
            .unwrap_err()
            .contains("guess"));
        assert!(POLICY
            .check(
                "famille.munster@la-fibre.xyz!",
                &["famille.munster@la-fibre.xyz"]
            )
            .unwrap_err()
            .contains("login"));
        assert!(POLICY
            .check(&"x".repeat(129), &[])
            .unwrap_err()
            .contains("at most"));
    }
}

/// A new password as its owner typed it: at most [`MAX_PASSWORD_LENGTH`] characters, never
/// printed. The rest of the policy needs the configuration and the owner's identities, so the
/// service checks it ([`PasswordPolicy::check`]).
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let length = text.chars().count();
        if length > MAX_PASSWORD_LENGTH {
            return Err(serde::de::Error::custom(format!(
                "must be at most {MAX_PASSWORD_LENGTH} characters long (it has {length})"
            )));
        }
        Ok(Password(text))
    }
}

/// The shortest password the default configuration accepts (`POSTIER_PASSWORD_MIN_LENGTH`);
/// the served document states the configured one (`openapi::for_config`).
pub(super) const DEFAULT_MIN_PASSWORD_LENGTH: usize = 12;

impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .description(Some(
                "A new password: between the configured minimum and 128 characters, not easy to guess (zxcvbn score 3 or more: a few unrelated words) and not containing the login or the address; the last two are checked by the server only.",
            ))
            .min_length(Some(DEFAULT_MIN_PASSWORD_LENGTH))
            .max_length(Some(MAX_PASSWORD_LENGTH))
            .examples([serde_json::json!("violet umbrella marching north")])
            .into()
    }
}

impl utoipa::ToSchema for Password {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("NewPassword")
    }
}
