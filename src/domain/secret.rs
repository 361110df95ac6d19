//! A secret string from a request (a password): never printed, even in debug output.

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_output_hides_the_value() {
        let secret = super::Secret::from("hunter2hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }
}
