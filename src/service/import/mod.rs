//! Bulk creation of addresses from a CSV file: every row validated and reported, the
//! passwords hashed off the transaction, then the addresses created through the bulk form of
//! the one creation flow (`service::addresses::create`), all rows or none (atomic, the
//! default) or the valid ones (partial).

mod csv;

pub(crate) use self::csv::{
    duplicates, generate_password, parse_csv, validate_row, CsvError, Layout, RawRow, ValidRow,
};

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{AddressKind, EmailAddress, LocalPart};
use crate::entity::mail_service;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::repo;
use crate::service::addresses::capacity::Room;
use crate::service::addresses::create::{
    is_reserved, linked_domains, Creation, NewAddress, Origin, Refusal, RESERVED_MESSAGE,
};
use crate::service::{authz, outreach, settings, UnitOfWork};
use crate::state::AppState;

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RowOutcome {
    Created,
    /// Valid; a dry run writes nothing.
    WouldCreate,
    Invalid,
    /// Valid but not created: the import is atomic and another row failed, or the pack's or
    /// the daily limit left no room for it.
    Skipped,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct RowReport {
    pub line: u64,
    /// The address this row names, when it could be read.
    pub address: Option<String>,
    pub outcome: RowOutcome,
    pub errors: Vec<FieldError>,
    /// Shown once, when the password was generated for this row.
    pub generated_password: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub(crate) struct ImportSummary {
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub created: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ImportReport {
    pub layout: Layout,
    pub dry_run: bool,
    pub atomic: bool,
    /// Whether anything was written.
    pub committed: bool,
    /// Why nothing (or not everything) was written.
    pub message: Option<String>,
    pub summary: ImportSummary,
    pub rows: Vec<RowReport>,
}

/// A refused import's answer: a problem document (`validation_failed` when rows are invalid,
/// `address_limit_reached` when the limits leave no room) that also carries the whole report,
/// so that a client reads every row's errors from the same body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportRefusal {
    #[serde(flatten)]
    pub problem: crate::error::ProblemDocument,
    #[serde(flatten)]
    pub report: ImportReport,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ImportOptions {
    pub dry_run: bool,
    pub atomic: bool,
    pub generate_passwords: bool,
}

impl ImportReport {
    /// Why nothing was written, as a problem, when the import was meant to write (not a dry
    /// run) and wrote nothing: invalid rows (or none at all) are a 422 listing each row's
    /// errors as `rows[i].field`; valid rows without room are a 409.
    pub(crate) fn refusal(&self) -> Option<ApiError> {
        if self.dry_run || self.committed {
            return None;
        }
        let detail = self
            .message
            .clone()
            .unwrap_or_else(|| "nothing was created".into());
        if self.summary.invalid > 0 || self.summary.valid == 0 {
            let errors = self
                .rows
                .iter()
                .enumerate()
                .flat_map(|(i, row)| {
                    row.errors
                        .iter()
                        .filter(move |_| row.outcome == RowOutcome::Invalid)
                        .map(move |e| FieldError::new(format!("rows[{i}].{}", e.field), &e.message))
                })
                .collect();
            return Some(ApiError::new(ErrorCode::ValidationFailed, detail).with_errors(errors));
        }
        Some(ApiError::new(ErrorCode::AddressLimitReached, detail))
    }

    /// Marks every row still to be created as skipped, with why.
    fn skip_all(&mut self, message: String) {
        for r in &mut self.rows {
            if r.outcome == RowOutcome::WouldCreate {
                r.outcome = RowOutcome::Skipped;
            }
        }
        self.summary.skipped = self.summary.valid;
        self.message = Some(message);
    }

    /// A row that turned out invalid after validation.
    fn refuse(&mut self, index: usize, error: FieldError) {
        let row = &mut self.rows[index];
        row.outcome = RowOutcome::Invalid;
        row.errors.push(error);
        self.summary.valid -= 1;
        self.summary.invalid += 1;
    }

    /// Keeps the rows that fit in `room` and reports the others as skipped; an atomic
    /// import that does not fit skips everything and answers `false` (nothing to write).
    fn fit_to_room<T>(
        &mut self,
        rows: &mut Vec<T>,
        index_of: impl Fn(&T) -> usize,
        room: usize,
        atomic: bool,
    ) -> bool {
        if rows.len() <= room {
            return true;
        }
        let message = format!(
            "{} valid rows but the pack's address limit and the daily creation limit leave room for {room}",
            rows.len()
        );
        if atomic {
            self.skip_all(format!("{message}: nothing was created (atomic import)"));
            return false;
        }
        for row in &rows[room..] {
            let r = &mut self.rows[index_of(row)];
            r.outcome = RowOutcome::Skipped;
            r.errors.push(FieldError::new(
                "address",
                "no room left in the pack or the daily limit",
            ));
        }
        self.summary.skipped += (rows.len() - room) as u64;
        self.message = Some(message);
        rows.truncate(room);
        true
    }
}

fn room_left(room: &Room) -> usize {
    usize::try_from(room.left()).unwrap_or(usize::MAX)
}

/// A valid row on its way: its report line and its validated content.
struct Pending {
    index: usize,
    row: ValidRow,
}

/// The address an invalid row names, only when its cell reads as one: a cell that does not
/// (a shifted column, a password pasted in the wrong place) is never echoed back, since the
/// report is shown and kept where passwords must not be.
fn reported_address(row: &RawRow, default_domain: &str) -> Option<String> {
    match (&row.local_part, &row.address) {
        (Some(local), _) => LocalPart::parse(local.trim())
            .ok()
            .map(|l| format!("{}@{default_domain}", l.as_str())),
        (None, Some(address)) => EmailAddress::parse(address)
            .ok()
            .map(|a| a.as_str().to_string()),
        (None, None) => None,
    }
}

/// A row ready to write: its report line, the address, and its forwarding target.
type Ready = (usize, NewAddress, Option<(String, bool)>);

/// Reads the file, validates every row, then (unless a dry run) hashes the passwords in
/// parallel on the bounded pool and creates the addresses in one unit of work, after
/// checking everything again under the service lock. Owners and admins of the service.
pub(crate) async fn run(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    file: &[u8],
    options: ImportOptions,
) -> ApiResult<ImportReport> {
    let service = authz::managed_service(&state.db, caller, service_id).await?;
    let parsed = parse_csv(file, state.config.import_max_rows).map_err(|e| match e {
        CsvError::TooManyRows(max) => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the file has more than {max} rows; split it"),
        ),
        CsvError::Malformed { .. } => ApiError::new(ErrorCode::MalformedRequest, e.to_string()),
        other => ApiError::validation(vec![FieldError::new(other.field(), other.to_string())]),
    })?;
    let domains = linked_domains(&state.db, &service).await?;
    let (mut reports, mut valid) = validate_rows(state, &parsed.rows, &service, &domains, options);
    drop_taken(state, &mut valid, &mut reports).await?;
    let invalid = reports
        .iter()
        .filter(|r| r.outcome == RowOutcome::Invalid)
        .count() as u64;
    let mut report = ImportReport {
        layout: parsed.layout,
        dry_run: options.dry_run,
        atomic: options.atomic,
        committed: false,
        message: None,
        summary: ImportSummary {
            rows: reports.len() as u64,
            valid: valid.len() as u64,
            invalid,
            ..ImportSummary::default()
        },
        rows: reports,
    };
    let room = Room::of(
        &state.db,
        &service,
        caller.account_id,
        state.config.daily_address_creations,
        state.clock.now(),
    )
    .await?;
    let room = room_left(&room);
    if options.dry_run {
        if report.summary.valid > room as u64 {
            report.message = Some(format!(
                "{} valid rows but room for {room} more addresses now (pack and daily limits)",
                report.summary.valid
            ));
        }
        return Ok(report);
    }
    if options.atomic && invalid > 0 {
        report.skip_all(format!(
            "{invalid} invalid row(s): nothing was created (atomic import)"
        ));
        return Ok(report);
    }
    if valid.is_empty() {
        report.message = Some("no valid row to create".into());
        return Ok(report);
    }
    // The limits before hashing (checked again under the lock): a 5,000-row file for a
    // service with room for 50 costs 50 hashes of the pool logins share, not 5,000.
    if !report.fit_to_room(&mut valid, |p| p.index, room, options.atomic) {
        return Ok(report);
    }
    let (rows, generated) = hash_rows(state, valid).await?;
    write(state, caller, service.id, rows, generated, report, options).await
}

/// Validates each row on its own; answers the report lines (one per row, in order) and the
/// valid rows.
fn validate_rows(
    state: &AppState,
    rows: &[RawRow],
    service: &mail_service::Model,
    domains: &[String],
    options: ImportOptions,
) -> (Vec<RowReport>, Vec<Pending>) {
    let policy = state.password_policy();
    let mut reports: Vec<RowReport> = Vec::with_capacity(rows.len());
    let mut valid: Vec<Pending> = Vec::new();
    for row in rows {
        let index = reports.len();
        match validate_row(
            row,
            &service.domain,
            domains,
            &policy,
            options.generate_passwords,
        ) {
            Ok(v) => {
                reports.push(RowReport {
                    line: row.line,
                    address: Some(v.address.clone()),
                    outcome: RowOutcome::WouldCreate,
                    errors: Vec::new(),
                    generated_password: None,
                });
                valid.push(Pending { index, row: v });
            }
            Err(errors) => reports.push(RowReport {
                line: row.line,
                address: reported_address(row, &service.domain),
                outcome: RowOutcome::Invalid,
                errors,
                generated_password: None,
            }),
        }
    }
    (reports, valid)
}

/// Reserved names, duplicates inside the file, then against existing addresses and aliases:
/// those rows become invalid.
async fn drop_taken(
    state: &AppState,
    valid: &mut Vec<Pending>,
    reports: &mut [RowReport],
) -> ApiResult<()> {
    let dups = duplicates(
        &valid
            .iter()
            .map(|p| (p.row.line, p.row.address.clone()))
            .collect::<Vec<_>>(),
    );
    let names: Vec<String> = valid.iter().map(|p| p.row.address.clone()).collect();
    let taken: HashSet<String> = repo::addresses::taken_among(&state.db, &names)
        .await?
        .into_iter()
        .collect();
    valid.retain(|p| {
        let problem = if is_reserved(&state.config, &p.row.local_part, &p.row.domain) {
            Some(("local_part", RESERVED_MESSAGE.to_string()))
        } else if let Some(first) = dups.get(&p.row.line) {
            Some(("address", format!("repeats line {first}")))
        } else if taken.contains(&p.row.address) {
            Some(("address", "exists already".to_string()))
        } else {
            None
        };
        match problem {
            Some((field, message)) => {
                let report = &mut reports[p.index];
                report.outcome = RowOutcome::Invalid;
                report.errors.push(FieldError::new(field, message));
                false
            }
            None => true,
        }
    });
    Ok(())
}

/// Hashes the passwords (generating the missing ones) outside any transaction: it is the
/// slow part, bounded by the password pool. Answers the rows ready to write and the
/// generated passwords by report line.
async fn hash_rows(
    state: &AppState,
    valid: Vec<Pending>,
) -> ApiResult<(Vec<Ready>, HashMap<usize, String>)> {
    let mut generated = HashMap::new();
    let passwords: Vec<String> = valid
        .iter()
        .map(|p| {
            p.row.password.clone().unwrap_or_else(|| {
                let password = generate_password();
                generated.insert(p.index, password.clone());
                password
            })
        })
        .collect();
    let hashes = state.passwords.hash_all(passwords).await?;
    let mut rows: Vec<Ready> = Vec::new();
    for (p, hash) in valid.into_iter().zip(hashes) {
        let local = LocalPart::parse(&p.row.local_part).map_err(ApiError::internal)?;
        rows.push((
            p.index,
            NewAddress {
                local_part: local,
                domain: p.row.domain,
                kind: AddressKind::Personal,
                display_name: p.row.display_name,
                password_hash: Some(hash),
                origin: Origin::Import,
            },
            p.row.redirect,
        ));
    }
    Ok((rows, generated))
}

/// The one unit of work: under the service lock, refuses what changed while the passwords
/// were hashed, fits the rest to the room left, creates the addresses and their forwards.
async fn write(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    mut rows: Vec<Ready>,
    mut generated: HashMap<usize, String>,
    mut report: ImportReport,
    options: ImportOptions,
) -> ApiResult<ImportReport> {
    let mut uow = UnitOfWork::begin(state).await?;
    // From here on, the service as it is under the lock (its pack may have changed), and
    // what changed while the passwords were hashed: a domain unlinked, or an address or
    // alias created (both take the same lock).
    let creation = Creation::begin(&uow, service_id).await?;
    let candidates: Vec<NewAddress> = rows.iter().map(|(_, r, _)| r.clone()).collect();
    let refused = creation.refusals(&uow, &candidates).await?;
    if !refused.is_empty() {
        let count = refused.len();
        let mut gone = HashSet::new();
        for (position, refusal) in refused {
            let error = match refusal {
                Refusal::DomainNotLinked(_) => FieldError::new(
                    "domain",
                    "was unlinked from the mail service during the import",
                ),
                Refusal::Taken(_) => {
                    FieldError::new("address", "was created meanwhile (address or alias)")
                }
                Refusal::Reserved(_) => FieldError::new("local_part", RESERVED_MESSAGE),
            };
            report.refuse(rows[position].0, error);
            gone.insert(position);
        }
        if options.atomic {
            report.skip_all(format!(
                "{count} row(s) changed meanwhile (domain unlinked or address created): nothing was created (atomic import)"
            ));
            return Ok(report);
        }
        let mut position = 0;
        rows.retain(|_| {
            let keep = !gone.contains(&position);
            position += 1;
            keep
        });
    }
    let room = room_left(&creation.room(&uow, caller.account_id).await?);
    if !report.fit_to_room(&mut rows, |(index, _, _)| *index, room, options.atomic) {
        return Ok(report);
    }
    if rows.is_empty() {
        // Everything changed meanwhile or no room is left: nothing to write, nothing committed.
        report
            .message
            .get_or_insert_with(|| "no valid row to create".into());
        return Ok(report);
    }
    let actor = caller.actor();
    let (indexes, (new, redirects)): (Vec<usize>, (Vec<NewAddress>, Vec<_>)) = rows
        .into_iter()
        .map(|(index, new, redirect)| (index, (new, redirect)))
        .unzip();
    // The redirect targets' confirmation e-mails, counted together before any is queued.
    let targets: Vec<&str> = redirects
        .iter()
        .flatten()
        .map(|(target, _)| target.as_str())
        .collect();
    outreach::count(&uow, creation.service.organization_id, &targets).await?;
    let created = creation.insert(&uow, &actor, new).await?;
    for ((index, address), redirect) in indexes.iter().zip(&created).zip(redirects) {
        if let Some((target, keep)) = redirect {
            let target = EmailAddress::parse(&target).map_err(ApiError::internal)?;
            settings::request_forward(
                &mut uow,
                address,
                &creation.service,
                (&target, keep),
                &actor,
            )
            .await?;
        }
        let row = &mut report.rows[*index];
        row.outcome = RowOutcome::Created;
        row.generated_password = generated.remove(index);
    }
    uow.commit().await?;
    report.committed = true;
    report.summary.created = created.len() as u64;
    Ok(report)
}
