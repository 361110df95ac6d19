//! Fuzzes the CSV import parser and row validation: any bytes must give a parse error or rows
//! whose validation answers, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postier::domain::PasswordPolicy;
use postier::service::import::{parse_csv, validate_row};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_csv(data, 200) {
        let domains = vec!["fuzz.example".to_string()];
        let policy = PasswordPolicy { min_length: 12 };
        for row in parsed.rows.iter().take(20) {
            assert!(row.line >= 2, "data rows start after the header");
            let _ = validate_row(row, "fuzz.example", &domains, &policy, true);
        }
    }
});
