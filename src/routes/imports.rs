//! Bulk creation of addresses from a CSV file (`POST …/addresses/import`).

use actix_web::dev::Payload;
use actix_web::{post, web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument, PROBLEM_CONTENT_TYPE};
use crate::extract::{check_length, check_media_type, read_body, ApiQuery};
use crate::service::import::{self, ImportOptions, ImportRefusal, ImportReport};
use crate::state::AppState;

/// The CSV file, bounded by `POSTIER_IMPORT_MAX_BYTES`: either the whole `text/csv` body, or
/// the `file` field of a `multipart/form-data` body (what generated clients and browser forms
/// send), read as it streams in so that an oversized file is refused without being buffered.
pub(super) struct CsvBody(pub Vec<u8>);

/// Room for a multipart body's boundaries and part headers around the file itself.
const MULTIPART_ENVELOPE_BYTES: usize = 16 * 1024;

impl FromRequest for CsvBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.config.import_max_bytes)
            .unwrap_or(2 * 1024 * 1024);
        if check_media_type(req, |mt| mt == "multipart/form-data").is_ok() {
            let checked = check_length(req, limit + MULTIPART_ENVELOPE_BYTES);
            let multipart = actix_multipart::Multipart::new(req.headers(), payload.take());
            return Box::pin(async move {
                checked?;
                Ok(CsvBody(read_file_field(multipart, limit).await?))
            });
        }
        let checked = check_media_type(req, |mt| mt == "text/csv" || mt == "application/csv")
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the file as text/csv or as the `file` field of multipart/form-data",
                )
            })
            .and_then(|()| check_length(req, limit));
        let body = read_body(payload, limit);
        Box::pin(async move {
            checked?;
            Ok(CsvBody(body.await?))
        })
    }
}

/// The bytes of the one `file` part, at most `limit`; any other part is refused by name.
async fn read_file_field(
    mut multipart: actix_multipart::Multipart,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let malformed = |e: actix_multipart::MultipartError| {
        ApiError::new(
            ErrorCode::MalformedRequest,
            format!("could not read the multipart body: {e}"),
        )
    };
    let mut file: Option<Vec<u8>> = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(malformed)?;
        let name = field.name().unwrap_or_default().to_string();
        if name != "file" {
            return Err(ApiError::invalid_field(
                name,
                "unknown field; the CSV goes in the `file` field",
            ));
        }
        if file.is_some() {
            return Err(ApiError::invalid_field("file", "sent more than once"));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(malformed)?;
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the file is larger than {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        file = Some(bytes);
    }
    file.ok_or_else(|| ApiError::invalid_field("file", "is required (the CSV file)"))
}

/// The `multipart/form-data` form of the import body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct ImportUpload {
    /// The CSV file (UTF-8, `,` or `;`), as `text/csv`.
    #[schema(value_type = String, format = Binary, content_media_type = "text/csv")]
    file: Vec<u8>,
}

/// A 422 of the import: a refusal with the report (invalid rows) or a plain problem (the file
/// itself is unusable). `anyOf`, since every refusal is a problem document too.
pub(super) struct ImportProblem;

impl utoipa::PartialSchema for ImportProblem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::AnyOfBuilder;
        use utoipa::openapi::Ref;
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("ImportRefusal"))
            .item(Ref::from_schema_name("Problem"))
            .into()
    }
}

impl utoipa::ToSchema for ImportProblem {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("ImportRefusal".into(), ImportRefusal::schema()));
        <ImportRefusal as utoipa::ToSchema>::schemas(schemas);
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
    request_body(
        description = "The CSV file: the whole body as `text/csv`, or the `file` field of `multipart/form-data`",
        content(
            (String = "text/csv", example = "local_part,password\ncompta,violet umbrella marching north\n"),
            (ImportUpload = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "A dry run: nothing written, the report says what would be", body = ImportReport),
        (status = 201, description = "Addresses created: the report gives every row", body = ImportReport),
        (status = 400, description = "The body is not CSV", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Nothing written: the pack's address limit and the daily creation limit leave no room for the valid rows (`address_limit_reached`); the problem carries the report", body = ImportRefusal, content_type = "application/problem+json"),
        (status = 413, description = "Body or row count over the bounds", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 415, description = "Not text/csv", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Nothing written: invalid rows (an atomic import, or no valid row), each row's errors listed as `rows[i].field`, with the report (`validation_failed`); or an unknown or missing column, or no `file` field, named in `errors` (no report)", body = ImportProblem, content_type = "application/problem+json"),
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
    if let Some(refusal) = report.refusal() {
        let body = ImportRefusal {
            problem: refusal.document(),
            report,
        };
        return Ok(HttpResponse::build(refusal.code.status())
            .content_type(PROBLEM_CONTENT_TYPE)
            .json(body));
    }
    let status = if report.committed {
        actix_web::http::StatusCode::CREATED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(report))
}
