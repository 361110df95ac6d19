//! Fuzzes the address parsers: never a panic; whatever is accepted is lower-case, within its
//! bounds, and parses again to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postier::domain::{DomainName, EmailAddress, LocalPart};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(local) = LocalPart::parse(text) {
        let s = local.as_str();
        assert!(!s.is_empty() && s.len() <= 64);
        assert_eq!(s, s.to_ascii_lowercase());
        assert_eq!(LocalPart::parse(s).unwrap(), local);
    } else if let Err(e) = LocalPart::parse(text) {
        if let (Some(c), Some(p)) = (e.character, e.position) {
            assert_eq!(text.chars().nth(p - 1), Some(c), "the named position holds the named character");
        }
    }
    if let Ok(domain) = DomainName::parse(text) {
        assert!(domain.as_str().len() <= 253);
        assert_eq!(DomainName::parse(domain.as_str()).unwrap(), domain);
    }
    if let Ok(email) = EmailAddress::parse(text) {
        assert_eq!(EmailAddress::parse(email.as_str()).unwrap(), email);
    }
});
