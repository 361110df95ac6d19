//! Whole numbers in JSON bodies: JSON Schema's `integer` also counts `428.0` (a number with a
//! zero fraction), so a body that a schema-following client (or fuzzer) sends that way is
//! accepted, while `428.5` is refused naming the field.

use serde::{Deserialize, Deserializer};

/// For `#[serde(default, deserialize_with = "crate::domain::whole_number")]` on an
/// `Option<i64>`/`Option<i32>` field: an integer, or a number with no fraction, that fits.
pub fn whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = match number.as_i64() {
        Some(n) => Some(n),
        None => number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64),
    };
    let whole = whole.ok_or_else(|| {
        serde::de::Error::custom(format!("must be a whole number (not {number})"))
    })?;
    T::try_from(whole)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{whole} is out of range")))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::whole_number")]
        hours: Option<i32>,
    }

    fn hours(json: &str) -> Result<Option<i32>, String> {
        serde_json::from_str::<Body>(json)
            .map(|b| b.hours)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_count_as_integers_and_fractions_are_refused() {
        assert_eq!(hours(r#"{"hours": 428}"#), Ok(Some(428)));
        assert_eq!(hours(r#"{"hours": 428.0}"#), Ok(Some(428)));
        assert_eq!(hours(r#"{"hours": null}"#), Ok(None));
        assert_eq!(hours("{}"), Ok(None));
        assert!(hours(r#"{"hours": 428.5}"#)
            .unwrap_err()
            .contains("whole number"));
        assert!(hours(r#"{"hours": 1e300}"#).is_err());
        assert!(hours(r#"{"hours": 4294967296}"#)
            .unwrap_err()
            .contains("out of range"));
        assert!(hours(r#"{"hours": "1"}"#).is_err());
    }
}
