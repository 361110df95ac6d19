//! What mail clients learn without any credential (autoconfig, autodiscover): whether a
//! domain is hosted here, and the XML text escaping their documents need. The settings
//! themselves are `domain::CLIENT_ENDPOINTS` on `POSTIER_MAIL_HOST`.

use crate::error::ApiResult;
use crate::repo;
use crate::state::AppState;

/// Whether mail for `domain` (lower-case) is hosted here: the shared free domain, or a
/// domain linked to a mail service. Addresses are never looked up: the settings are the
/// same for every local part, so the answer tells nothing about who exists.
pub(crate) async fn hosted_domain(state: &AppState, domain: &str) -> ApiResult<bool> {
    if domain == state.config.free_domain.to_ascii_lowercase() {
        return Ok(true);
    }
    Ok(repo::mail_services::find_domain(&state.db, domain)
        .await?
        .is_some())
}

/// `text` escaped for XML character data and attribute values.
pub(crate) fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn xml_text_escapes_the_five_special_characters() {
        assert_eq!(
            super::xml_text(r#"a&b<c>d"e'f"#),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f"
        );
    }
}
