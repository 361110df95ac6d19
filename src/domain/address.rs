//! Mail address syntax: `LocalPart` (the provider's rule for hosted addresses), `DomainName`
//! (DNS names, IDNA to punycode) and `EmailAddress` (a login or an external recipient).

use std::fmt;

/// Why a value was refused, with the offending character and its 1-based position when one
/// character is to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub character: Option<char>,
    pub position: Option<usize>,
}

impl ParseError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            character: None,
            position: None,
        }
    }

    fn at(character: char, position: usize, why: &str) -> Self {
        let shown = if character.is_control() {
            format!("U+{:04X}", u32::from(character))
        } else {
            format!("'{character}'")
        };
        Self {
            message: format!("character {shown} at position {position} is not allowed: {why}"),
            character: Some(character),
            position: Some(position),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Characters the provider refuses in a local part even though they are printable ASCII.
const FORBIDDEN_IN_LOCAL_PART: &[char] = &[
    ' ', '(', ')', '<', '>', '@', ',', ';', ':', '"', '[', ']', '|', '%', '&',
];

/// The part of a hosted address before `@`: 1–64 printable ASCII characters except space and
/// `( ) < > @ , ; : " [ ] | % &`, no accented letter, no control character, no leading or
/// trailing dot, no `..`; stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalPart(String);

impl LocalPart {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        if input.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        for (i, c) in input.chars().enumerate() {
            let position = i + 1;
            if c.is_control() {
                return Err(ParseError::at(
                    c,
                    position,
                    "control characters are refused",
                ));
            }
            if !c.is_ascii() {
                return Err(ParseError::at(
                    c,
                    position,
                    "only ASCII is accepted (no accented letter or ç)",
                ));
            }
            if FORBIDDEN_IN_LOCAL_PART.contains(&c) {
                return Err(ParseError::at(
                    c,
                    position,
                    "space and ( ) < > @ , ; : \" [ ] | % & are refused",
                ));
            }
        }
        let length = input.chars().count();
        if length > 64 {
            return Err(ParseError::new(format!(
                "must be at most 64 characters long (it has {length})"
            )));
        }
        if input.starts_with('.') {
            return Err(ParseError::at(
                '.',
                1,
                "a local part cannot start with a dot",
            ));
        }
        if input.ends_with('.') {
            return Err(ParseError::at(
                '.',
                length,
                "a local part cannot end with a dot",
            ));
        }
        if let Some(i) = input.find("..") {
            return Err(ParseError::at(
                '.',
                i + 2,
                "two dots cannot follow each other",
            ));
        }
        Ok(Self(input.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LocalPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DNS name, lower-case, internationalised labels converted to punycode (A-labels).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        for (i, c) in trimmed.chars().enumerate() {
            if c.is_control() || c.is_whitespace() {
                return Err(ParseError::at(
                    c,
                    i + 1,
                    "domains contain no space or control character",
                ));
            }
            if c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                return Err(ParseError::at(
                    c,
                    i + 1,
                    "domains contain only letters, digits, '-' and '.'",
                ));
            }
        }
        let ascii = idna::domain_to_ascii(trimmed)
            .map_err(|_| ParseError::new("is not a valid internationalised domain name"))?;
        if ascii.len() > 253 {
            return Err(ParseError::new("must be at most 253 characters long"));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(ParseError::new("needs at least two labels (example.com)"));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(ParseError::new("has an empty label (two dots in a row)"));
            }
            if label.len() > 63 {
                return Err(ParseError::new(format!(
                    "label '{label}' is longer than 63 characters"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(ParseError::new(format!(
                    "label '{label}' cannot start or end with '-'"
                )));
            }
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(ParseError::new(format!("label '{label}' is not valid")));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(ParseError::new(
                "the last label cannot be numeric (not an IP address)",
            ));
        }
        Ok(Self(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A complete address `local@domain`, lower-case. Hosted addresses are built from a
/// [`LocalPart`]; logins and external recipients are parsed with RFC 5322's dot-atom rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn new(local: &LocalPart, domain: &DomainName) -> Self {
        Self(format!("{}@{}", local.as_str(), domain.as_str()))
    }

    /// Parses any deliverable address (a login hosted anywhere): trimmed and lower-cased.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let trimmed = input.trim();
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(ParseError::new("must be an e-mail address (name@domain)"));
        };
        if local.is_empty() {
            return Err(ParseError::new("the part before '@' is empty"));
        }
        if local.len() > 64 {
            return Err(ParseError::new(
                "the part before '@' is longer than 64 characters",
            ));
        }
        for (i, c) in local.chars().enumerate() {
            let atext = c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
            if !atext {
                return Err(ParseError::at(c, i + 1, "not allowed in an e-mail address"));
            }
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(ParseError::new(
                "the part before '@' cannot start or end with a dot or hold '..'",
            ));
        }
        let domain = DomainName::parse(domain).map_err(|e| ParseError {
            message: format!("domain: {}", e.message),
            character: e.character,
            position: e.position.map(|p| p + local.chars().count() + 1),
        })?;
        Ok(Self(format!(
            "{}@{}",
            local.to_ascii_lowercase(),
            domain.as_str()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key to look a typed address up by (login, attach): its parsed form when it parses,
    /// so `x@Bücher.example.` finds the account signed up as `x@xn--bcher-kva.example`; else
    /// the trimmed, lower-cased text, which matches nothing but keeps the answer the same as
    /// for any unknown login.
    pub fn lookup_key(input: &str) -> String {
        Self::parse(input)
            .map(|a| a.0)
            .unwrap_or_else(|_| input.trim().to_lowercase())
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Each type deserializes itself from a JSON string (so that the extractor names the field
/// and gives the reason) and serializes as its text.
macro_rules! text_type {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, ParseError> {
                $name::parse(&value)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

text_type!(LocalPart);
text_type!(DomainName);
text_type!(EmailAddress);

/// One character of a local part other than the dot: printable ASCII except space and
/// `( ) < > @ , ; : " [ ] | % &` (the rule [`LocalPart::parse`] applies).
const LOCAL_PART_CHAR: &str = r"[A-Za-z0-9!#$'*+/=?^_`{}~\\-]";

/// The OpenAPI schemas of the text types: what JSON Schema can say of each rule, so that
/// generated clients and fuzzers send what the parser accepts.
mod schemas {
    use std::borrow::Cow;

    use serde_json::json;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
    use utoipa::openapi::RefOr;

    use super::{DomainName, EmailAddress, LocalPart, LOCAL_PART_CHAR};

    /// A DNS name as ASCII labels (1–63 letters, digits or `-`, not at either end), the last
    /// one starting with a letter; a final dot is dropped. Internationalised names are
    /// accepted too and converted to punycode, which a pattern cannot state.
    const DOMAIN_PATTERN: &str = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$";

    fn text(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    }

    impl utoipa::PartialSchema for LocalPart {
        fn schema() -> RefOr<Schema> {
            text("The part of a hosted address before `@`: 1–64 printable ASCII characters except space and `( ) < > @ , ; : \" [ ] | % &`, no leading, trailing or double dot; stored lower-case.")
                .min_length(Some(1))
                .max_length(Some(64))
                .pattern(Some(format!("^{LOCAL_PART_CHAR}+(\\.{LOCAL_PART_CHAR}+)*$")))
                .examples([json!("compta")])
                .into()
        }
    }

    impl utoipa::ToSchema for LocalPart {}

    impl utoipa::PartialSchema for DomainName {
        fn schema() -> RefOr<Schema> {
            text("A DNS name with at least two labels, stored lower-case; internationalised names are accepted and stored as punycode (`bücher.example` is `xn--bcher-kva.example`).")
                .min_length(Some(1))
                .max_length(Some(253))
                .pattern(Some(DOMAIN_PATTERN))
                .examples([json!("entreprise-familiale.xyz")])
                .into()
        }
    }

    impl utoipa::ToSchema for DomainName {}

    impl utoipa::PartialSchema for EmailAddress {
        fn schema() -> RefOr<Schema> {
            text("An e-mail address (RFC 5322 dot-atom before `@`, at most 64 characters; a domain as `DomainName`); stored lower-case.")
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                .max_length(Some(318))
                .examples([json!("famille.munster@la-fibre.xyz")])
                .into()
        }
    }

    impl utoipa::ToSchema for EmailAddress {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("EmailAddress")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_types_deserialize_themselves_with_the_reason() {
        let err = serde_json::from_str::<LocalPart>("\"a%b\"").unwrap_err();
        assert!(err.to_string().contains("'%' at position 2"), "{err}");
        let domain: DomainName = serde_json::from_str("\"Bücher.Example\"").unwrap();
        assert_eq!(
            serde_json::to_string(&domain).unwrap(),
            "\"xn--bcher-kva.example\""
        );
        assert!(serde_json::from_str::<EmailAddress>("\"nobody\"").is_err());
    }

    #[test]
    fn the_seeds_forbidden_characters_are_named_with_their_position() {
        let err = LocalPart::parse("ab%c").unwrap_err();
        assert_eq!(err.character, Some('%'));
        assert_eq!(err.position, Some(3));
        assert!(err.message.contains("'%'"));
        let err = LocalPart::parse("françois").unwrap_err();
        assert_eq!((err.character, err.position), (Some('ç'), Some(5)));
        let err = LocalPart::parse("tab\there").unwrap_err();
        assert_eq!(err.position, Some(4));
    }

    #[test]
    fn dots_are_refused_at_the_ends_and_doubled() {
        assert!(LocalPart::parse(".a").is_err());
        assert!(LocalPart::parse("a.").is_err());
        assert_eq!(LocalPart::parse("a..b").unwrap_err().position, Some(3));
        assert!(LocalPart::parse("a.b").is_ok());
    }

    #[test]
    fn local_parts_are_stored_lower_case_and_limited_to_64() {
        assert_eq!(
            LocalPart::parse("John.Smith").unwrap().as_str(),
            "john.smith"
        );
        assert!(LocalPart::parse(&"a".repeat(64)).is_ok());
        assert!(LocalPart::parse(&"a".repeat(65)).is_err());
        assert!(LocalPart::parse("").is_err());
    }

    #[test]
    fn internationalised_domains_become_punycode() {
        assert_eq!(
            DomainName::parse("Bücher.Example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            DomainName::parse("example.com.").unwrap().as_str(),
            "example.com"
        );
        assert!(DomainName::parse("localhost").is_err());
        assert!(DomainName::parse("-a.example").is_err());
        assert!(DomainName::parse("a_b.example").is_err());
        assert!(DomainName::parse("1.2.3.4").is_err());
        assert!(DomainName::parse("a..example").is_err());
    }

    #[test]
    fn logins_are_trimmed_and_lower_cased() {
        let login = EmailAddress::parse("  Famille.Munster@La-Fibre.XYZ ").unwrap();
        assert_eq!(login.as_str(), "famille.munster@la-fibre.xyz");
        assert_eq!(login.local_part(), "famille.munster");
        assert_eq!(login.domain(), "la-fibre.xyz");
        assert!(EmailAddress::parse("no-at-sign").is_err());
        assert!(EmailAddress::parse("a b@example.com").is_err());
    }

    fn allowed_char() -> impl Strategy<Value = char> {
        (0x21u8..=0x7e)
            .prop_map(char::from)
            .prop_filter("allowed", |c| {
                !FORBIDDEN_IN_LOCAL_PART.contains(c) && *c != '.'
            })
    }

    proptest! {
        #[test]
        fn every_valid_local_part_round_trips(
            parts in proptest::collection::vec(proptest::collection::vec(allowed_char(), 1..10), 1..5)
        ) {
            let input: String = parts.iter().map(|p| p.iter().collect::<String>()).collect::<Vec<_>>().join(".");
            prop_assume!(input.len() <= 64);
            let parsed = LocalPart::parse(&input).unwrap();
            prop_assert_eq!(parsed.as_str(), input.to_ascii_lowercase());
            let again = LocalPart::parse(parsed.as_str()).unwrap();
            prop_assert_eq!(again, parsed);
        }

        #[test]
        fn every_string_with_a_forbidden_character_is_refused(
            prefix in "[a-z0-9]{0,20}",
            bad in prop_oneof![
                proptest::sample::select(FORBIDDEN_IN_LOCAL_PART.to_vec()),
                proptest::char::range('\u{0}', '\u{1f}'),
                proptest::char::range('\u{80}', '\u{10ffff}'),
                Just('\u{7f}'),
            ],
            suffix in "[a-z0-9]{0,20}",
        ) {
            let input = format!("{prefix}{bad}{suffix}");
            let err = LocalPart::parse(&input).unwrap_err();
            prop_assert_eq!(err.character, Some(bad));
            prop_assert_eq!(err.position, Some(prefix.chars().count() + 1));
        }
    }
}
