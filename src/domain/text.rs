//! Free text that may reach a mail header (auto-reply subjects, display names, organization
//! names): no control character, so that nothing a customer types can end a header line or
//! start a new one (CR, LF), nor hide in one (NUL, escape sequences, Unicode line breaks).

/// Why a header-bound text is refused, or `None` when it is clean.
pub fn header_text_problem(text: &str) -> Option<&'static str> {
    text.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        .then_some("must not contain control characters (line breaks, tabs, NUL…)")
}

/// `validator` hook for request fields that reach mail headers.
pub fn validate_header_text<T: AsRef<str> + ?Sized>(
    text: &T,
) -> Result<(), validator::ValidationError> {
    match header_text_problem(text.as_ref()) {
        None => Ok(()),
        Some(message) => Err(validator::ValidationError::new("control_characters")
            .with_message(std::borrow::Cow::Borrowed(message))),
    }
}

#[cfg(test)]
mod tests {
    use super::header_text_problem;

    #[test]
    fn line_breaks_and_other_controls_are_refused_and_ordinary_text_is_not() {
        for bad in [
            "a\r\nBcc: x@y",
            "a\nb",
            "a\rb",
            "tab\there",
            "nul\0",
            "esc\u{1b}[1m",
            "a\u{2028}b",
            "c1\u{85}",
        ] {
            assert!(header_text_problem(bad).is_some(), "{bad:?}");
        }
        for good in [
            "Julie, compta",
            "Absent jusqu'au 3 — réponse lundi",
            "=?utf-8?q?x?=",
        ] {
            assert!(header_text_problem(good).is_none(), "{good:?}");
        }
    }
}
