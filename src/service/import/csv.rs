//! Reading an import file (docs/flows.md "Bulk import"): parsing (the provider's template or
//! named columns, `,` or `;`, BOM tolerated) and the validation of every row. Pure functions,
//! so that they can be fuzzed.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{EmailAddress, LocalPart, PasswordPolicy};
use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Layout {
    /// The provider's template: local part, password, optional redirect target, optional
    /// keep flag (`0` keep a copy, `1` delete after redirecting), by position.
    Template,
    /// A header naming the columns.
    Named,
}

/// One data row as read, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub local_part: Option<String>,
    pub address: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub redirect_to: Option<String>,
    pub redirect_keep: Option<String>,
    /// Cells beyond the header's columns.
    pub extra_cells: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedCsv {
    pub layout: Layout,
    pub delimiter: char,
    pub rows: Vec<RawRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CsvError {
    #[error("the file is empty: a header row is required")]
    Empty,
    #[error("column {position} ({name:?}) is not one of local_part, address, password, display_name, redirect_to, redirect_keep")]
    UnknownColumn { position: usize, name: String },
    #[error("column {name:?} appears twice")]
    DuplicateColumn { name: String },
    #[error("a local_part or address column is required")]
    MissingAddressColumn,
    #[error("the template has 2 to 4 columns (local part, password, redirect target, keep flag); this header has {0}")]
    TemplateWidth(usize),
    #[error("the file has more than {0} rows")]
    TooManyRows(usize),
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
}

impl CsvError {
    /// The field a problem document names for this error.
    pub(crate) fn field(&self) -> String {
        match self {
            CsvError::UnknownColumn { name, .. } | CsvError::DuplicateColumn { name } => {
                format!("header.{name}")
            }
            CsvError::Malformed { line, .. } => format!("line {line}"),
            _ => "body".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    LocalPart,
    Address,
    Password,
    DisplayName,
    RedirectTo,
    RedirectKeep,
}

fn named(cell: &str) -> Option<Column> {
    match cell {
        "local_part" => Some(Column::LocalPart),
        "address" => Some(Column::Address),
        "password" => Some(Column::Password),
        "display_name" => Some(Column::DisplayName),
        "redirect_to" => Some(Column::RedirectTo),
        "redirect_keep" => Some(Column::RedirectKeep),
        _ => None,
    }
}

const TEMPLATE: [Column; 4] = [
    Column::LocalPart,
    Column::Password,
    Column::RedirectTo,
    Column::RedirectKeep,
];

/// Reads the CSV: detects the delimiter and the layout, returns every non-empty row.
pub(crate) fn parse_csv(input: &[u8], max_rows: usize) -> Result<ParsedCsv, CsvError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let first_line = input.split(|b| *b == b'\n').next().unwrap_or_default();
    let semicolons = first_line.iter().filter(|b| **b == b';').count();
    let commas = first_line.iter().filter(|b| **b == b',').count();
    let delimiter = if semicolons > commas { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut records = reader.records();
    let header = match records.next() {
        None => return Err(CsvError::Empty),
        Some(Err(e)) => return Err(malformed(&e, 1)),
        Some(Ok(header)) => header,
    };
    let cells: Vec<String> = header.iter().map(|c| c.trim().to_lowercase()).collect();
    let width = cells
        .iter()
        .rposition(|c| !c.is_empty())
        .map_or(0, |i| i + 1);
    if width == 0 {
        return Err(CsvError::Empty);
    }
    let known: Vec<Option<Column>> = cells[..width].iter().map(|c| named(c)).collect();
    let (layout, columns) = if known.iter().all(Option::is_some) {
        let columns: Vec<Column> = known.into_iter().flatten().collect();
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(CsvError::DuplicateColumn {
                    name: cells[i].clone(),
                });
            }
        }
        if !columns.contains(&Column::LocalPart) && !columns.contains(&Column::Address) {
            return Err(CsvError::MissingAddressColumn);
        }
        (Layout::Named, columns)
    } else if known.iter().any(Option::is_some) {
        let position = known.iter().position(Option::is_none).unwrap_or(0);
        return Err(CsvError::UnknownColumn {
            position: position + 1,
            name: cells[position].clone(),
        });
    } else {
        if !(2..=4).contains(&width) {
            return Err(CsvError::TemplateWidth(width));
        }
        (Layout::Template, TEMPLATE[..width].to_vec())
    };
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(input);
    for record in records {
        let record = record.map_err(|e| malformed(&e, rows.len() as u64 + 2))?;
        // The line where the record starts, from its byte offset: the reader's own line
        // count does not follow `\r\n` or lone `\r` endings, which it accepts.
        let line = match record.position() {
            Some(p) => lines.line_at(usize::try_from(p.byte()).unwrap_or(usize::MAX)),
            None => rows.len() as u64 + 2,
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() == max_rows {
            return Err(CsvError::TooManyRows(max_rows));
        }
        let mut row = RawRow {
            line,
            extra_cells: record
                .iter()
                .skip(columns.len())
                .filter(|c| !c.trim().is_empty())
                .count(),
            ..RawRow::default()
        };
        for (column, cell) in columns.iter().zip(record.iter()) {
            let value = Some(cell.trim().to_string()).filter(|v| !v.is_empty());
            match column {
                Column::LocalPart => row.local_part = value,
                Column::Address => row.address = value,
                Column::Password => row.password = value,
                Column::DisplayName => row.display_name = value,
                Column::RedirectTo => row.redirect_to = value,
                Column::RedirectKeep => row.redirect_keep = value,
            }
        }
        rows.push(row);
    }
    Ok(ParsedCsv {
        layout,
        delimiter: char::from(delimiter),
        rows,
    })
}

/// Line numbers of increasing byte offsets, counting `\n`, `\r\n` and lone `\r` as one line
/// ending each (as the CSV reader does), in one pass over the input.
struct LineCounter<'a> {
    input: &'a [u8],
    pos: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            line: 1,
        }
    }

    /// The line of the record whose reading started at `offset`: the reader starts a record
    /// on the line ending it skipped (blank lines, the `\n` of a `\r\n`), so skip those first.
    fn line_at(&mut self, offset: usize) -> u64 {
        let mut offset = offset.min(self.input.len());
        while matches!(self.input.get(offset), Some(b'\r' | b'\n')) {
            offset += 1;
        }
        while self.pos < offset {
            match self.input[self.pos] {
                b'\n' => self.line += 1,
                b'\r' => {
                    self.line += 1;
                    if self.input.get(self.pos + 1) == Some(&b'\n') {
                        self.pos += 1;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.line
    }
}

fn malformed(e: &csv::Error, fallback_line: u64) -> CsvError {
    let line = e.position().map_or(fallback_line, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    CsvError::Malformed { line, message }
}

/// A row that passed validation.
#[derive(Debug, Clone)]
pub(crate) struct ValidRow {
    pub line: u64,
    pub local_part: String,
    pub domain: String,
    pub address: String,
    /// `None`: generate one.
    pub password: Option<String>,
    pub display_name: Option<String>,
    /// Forwarding target and keep-a-copy flag.
    pub redirect: Option<(String, bool)>,
}

/// Validates one row against the syntax, the service's domains and the password policy.
/// Duplicates and existing addresses are checked by the caller, which sees every row.
pub(crate) fn validate_row(
    row: &RawRow,
    default_domain: &str,
    domains: &[String],
    policy: &PasswordPolicy,
    generate_passwords: bool,
) -> Result<ValidRow, Vec<FieldError>> {
    let mut errors = Vec::new();
    if row.extra_cells > 0 {
        errors.push(FieldError::new(
            "row",
            format!(
                "has {} cell(s) beyond the header's columns",
                row.extra_cells
            ),
        ));
    }
    let (local, domain) = match (&row.local_part, &row.address) {
        (Some(local), _) => (Some(local.clone()), default_domain.to_string()),
        (None, Some(address)) => match EmailAddress::parse(address) {
            Ok(parsed) => (
                Some(
                    address
                        .trim()
                        .rsplit_once('@')
                        .map(|(l, _)| l.to_string())
                        .unwrap_or_default(),
                ),
                parsed.domain().to_string(),
            ),
            Err(e) => {
                errors.push(FieldError::new("address", e.to_string()));
                (None, default_domain.to_string())
            }
        },
        (None, None) => {
            errors.push(FieldError::new("local_part", "is required"));
            (None, default_domain.to_string())
        }
    };
    let local = local.and_then(|l| match LocalPart::parse(&l) {
        Ok(l) if l.as_str() == "catchall" => {
            errors.push(FieldError::new(
                "local_part",
                "catchall is reserved for the generic catchall address",
            ));
            None
        }
        Ok(l) => Some(l),
        Err(e) => {
            errors.push(FieldError::new("local_part", e.to_string()));
            None
        }
    });
    if !domains.contains(&domain) {
        errors.push(FieldError::new(
            "address",
            format!("{domain} is not a domain of this mail service"),
        ));
    }
    let address = local
        .as_ref()
        .map(|l| format!("{}@{domain}", l.as_str()))
        .unwrap_or_default();
    match &row.password {
        Some(password) => {
            if let Err(message) = policy.check(password, &[address.as_str()]) {
                errors.push(FieldError::new("password", message));
            }
        }
        None if generate_passwords => {}
        None => errors.push(FieldError::new(
            "password",
            "is required (or ask for generated passwords with ?generate_passwords=true)",
        )),
    }
    if let Some(name) = &row.display_name {
        if name.chars().count() > 100 {
            errors.push(FieldError::new(
                "display_name",
                "must be at most 100 characters long",
            ));
        } else if name.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "display_name",
                "must not contain control characters",
            ));
        }
    }
    let keep = match row.redirect_keep.as_deref() {
        None | Some("0") => true,
        Some("1") => false,
        Some(other) => {
            errors.push(FieldError::new(
                "redirect_keep",
                format!("must be 0 (keep a copy) or 1 (delete after redirecting), not {other:?}"),
            ));
            true
        }
    };
    let redirect = match &row.redirect_to {
        Some(target) => match EmailAddress::parse(target) {
            Ok(target) if target.as_str() == address => {
                errors.push(FieldError::new(
                    "redirect_to",
                    "cannot be the address itself",
                ));
                None
            }
            Ok(target) => Some((target.to_string(), keep)),
            Err(e) => {
                errors.push(FieldError::new("redirect_to", e.to_string()));
                None
            }
        },
        None if row.redirect_keep.is_some() => {
            errors.push(FieldError::new(
                "redirect_keep",
                "needs a redirect_to target",
            ));
            None
        }
        None => None,
    };
    match local {
        Some(local) if errors.is_empty() => Ok(ValidRow {
            line: row.line,
            local_part: local.as_str().to_string(),
            domain,
            address,
            password: row.password.clone(),
            display_name: row.display_name.clone(),
            redirect,
        }),
        _ => Err(errors),
    }
}

/// Marks later rows that repeat an earlier row's address.
pub(crate) fn duplicates(rows: &[(u64, String)]) -> HashMap<u64, u64> {
    let mut first: HashMap<&str, u64> = HashMap::new();
    let mut dups = HashMap::new();
    for (line, address) in rows {
        match first.get(address.as_str()) {
            Some(earlier) => {
                dups.insert(*line, *earlier);
            }
            None => {
                first.insert(address, *line);
            }
        }
    }
    dups
}

/// A strong random password for rows that asked for one (20 characters, ~120 bits).
pub(crate) fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.!";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy { min_length: 12 };

    #[test]
    fn the_template_with_semicolons_and_a_bom_is_read_by_position() {
        let csv = "\u{feff}Adresse;Mot de passe;Redirection;Conserver\r\njulie;correct horse battery staple;julie@home.example;1\r\n\r\n;;;\r\nmarc;violet umbrella marching north\r\n";
        let parsed = parse_csv(csv.as_bytes(), 10).unwrap();
        assert_eq!(parsed.layout, Layout::Template);
        assert_eq!(parsed.delimiter, ';');
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].line, 2);
        assert_eq!(parsed.rows[0].redirect_keep.as_deref(), Some("1"));
        assert_eq!(parsed.rows[1].line, 5);
        assert_eq!(parsed.rows[1].redirect_to, None);
    }

    #[test]
    fn named_headers_in_any_order_are_read_and_unknown_ones_named() {
        let csv = "password,local_part,display_name\n\"correct horse battery staple\",julie,\"Julie, compta\"\n";
        let parsed = parse_csv(csv.as_bytes(), 10).unwrap();
        assert_eq!(parsed.layout, Layout::Named);
        assert_eq!(
            parsed.rows[0].display_name.as_deref(),
            Some("Julie, compta")
        );
        let err = parse_csv(b"local_part,passwd\n", 10).unwrap_err();
        assert_eq!(
            err,
            CsvError::UnknownColumn {
                position: 2,
                name: "passwd".into()
            }
        );
        assert!(err.to_string().contains("passwd"));
        assert_eq!(
            parse_csv(b"password,display_name\n", 10).unwrap_err(),
            CsvError::MissingAddressColumn
        );
        assert_eq!(parse_csv(b"", 10).unwrap_err(), CsvError::Empty);
        assert_eq!(
            parse_csv(b"a;b;c;d;e\n", 10).unwrap_err(),
            CsvError::TemplateWidth(5)
        );
    }

    #[test]
    fn line_numbers_follow_lf_crlf_and_lone_cr_endings() {
        for ending in ["\n", "\r\n", "\r"] {
            let csv = ["local_part,password", "a,x", "", "b,y"].join(ending);
            let parsed = parse_csv(csv.as_bytes(), 10).unwrap();
            let lines: Vec<u64> = parsed.rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, vec![2, 4], "{ending:?}");
        }
    }

    #[test]
    fn row_count_is_bounded() {
        let mut csv = String::from("local_part,password\n");
        for i in 0..11 {
            csv.push_str(&format!("u{i},x\n"));
        }
        assert_eq!(
            parse_csv(csv.as_bytes(), 10).unwrap_err(),
            CsvError::TooManyRows(10)
        );
    }

    #[test]
    fn rows_are_validated_field_by_field() {
        let domains = vec!["famille.example".to_string()];
        let row = RawRow {
            line: 2,
            local_part: Some("ju%lie".into()),
            password: Some("short".into()),
            redirect_keep: Some("2".into()),
            ..RawRow::default()
        };
        let errors = validate_row(&row, "famille.example", &domains, &POLICY, false).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["local_part", "password", "redirect_keep", "redirect_keep"]
        );
        let row = RawRow {
            line: 3,
            address: Some("Julie@Famille.Example".into()),
            redirect_to: Some("julie@home.example".into()),
            redirect_keep: Some("1".into()),
            ..RawRow::default()
        };
        let valid = validate_row(&row, "famille.example", &domains, &POLICY, true).unwrap();
        assert_eq!(valid.address, "julie@famille.example");
        assert_eq!(valid.redirect, Some(("julie@home.example".into(), false)));
        assert!(valid.password.is_none());
    }

    #[test]
    fn later_duplicates_point_at_the_first_line() {
        let rows = vec![
            (2, "a@x.example".to_string()),
            (3, "b@x.example".into()),
            (4, "a@x.example".into()),
        ];
        assert_eq!(duplicates(&rows), HashMap::from([(4, 2)]));
    }

    #[test]
    fn generated_passwords_pass_the_policy() {
        let password = generate_password();
        assert_eq!(password.len(), 20);
        POLICY.check(&password, &["julie@famille.example"]).unwrap();
    }
}
