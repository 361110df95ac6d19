//! Bulk creation of addresses from a CSV file (`POST …/addresses/import`).

use actix_web::dev::Payload;
use actix_web::{post, web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ProblemDocument};
use crate::extract::{check_length, check_media_type, read_body, ApiQuery};
use crate::service::import::{self, ImportOptions, ImportReport};
use crate::state::AppState;

/// A `text/csv` body, bounded by `POSTIER_IMPORT_MAX_BYTES`.
pub(super) struct CsvBody(pub Vec<u8>);

impl FromRequest for CsvBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.config.import_max_bytes)
            .unwrap_or(2 * 1024 * 1024);
        let checked = check_media_type(req, |mt| mt == "text/csv" || mt == "application/csv")
            .and_then(|()| check_length(req, limit));
        let body = read_body(payload, limit);
        Box::pin(async move {
            checked?;
            Ok(CsvBody(body.await?))
        })
    }
}

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportQuery {
    /// Validate everything and write nothing (default false).
    pub dry_run: Option<bool>,
    /// All rows or none (default true); `false` creates the valid rows.
    pub atomic: Option<bool>,
    /// Generate a strong password for rows without one, returned once (default false).
    pub generate_passwords: Option<bool>,
}

/// Import addresses from CSV
///
/// Owners and admins. UTF-8 (a BOM is tolerated), `,` or `;`. Either the provider's template
/// (a header row, then local part, password, optional redirect target, optional keep flag `0`
/// keep a copy / `1` delete after redirecting) or a header naming the columns `local_part` or
/// `address`, `password`, `display_name`, `redirect_to`, `redirect_keep`. The answer reports
/// every row; duplicates in the file and existing addresses are reported; the pack's
/// address limit and the daily creation limit are checked before anything is written.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id"), ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file"),
    responses(
        (status = 200, description = "Nothing written (dry run, atomic import with invalid rows, or no room): the report says why", body = ImportReport),
        (status = 201, description = "Addresses created: the report gives every row", body = ImportReport),
        (status = 400, description = "The body is not CSV", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "An address of the file was created meanwhile", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "Body or row count over the bounds", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 415, description = "Not text/csv", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or missing column, naming it", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many confirmation e-mails to a `redirect_to` target or from this organization (`too_many_requests`, with `Retry-After`): nothing was written", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/mail-services/{service_id}/addresses/import")]
pub(crate) async fn import_addresses(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<ImportQuery>,
    body: CsvBody,
) -> ApiResult<HttpResponse> {
    let options = ImportOptions {
        dry_run: query.dry_run.unwrap_or(false),
        atomic: query.atomic.unwrap_or(true),
        generate_passwords: query.generate_passwords.unwrap_or(false),
    };
    let report = import::run(&state, &user, path.into_inner(), &body.0, options).await?;
    let status = if report.committed && report.summary.created > 0 {
        actix_web::http::StatusCode::CREATED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(report))
}
