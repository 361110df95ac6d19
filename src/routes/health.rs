//! Operations endpoints: liveness and readiness (database reachable within ~2 s).

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub(super) struct HealthResponse {
    /// `ok`.
    pub status: String,
}

/// Process liveness
///
/// Answers as long as the process serves HTTP; does not touch the database.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Alive", body = HealthResponse))
)]
#[get("/healthz")]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "ok".into(),
    })
}

/// Readiness
///
/// Answers 200 when the database answers within about two seconds, 503 otherwise.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "The database is unreachable", body = crate::error::ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub(crate) async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    match tokio::time::timeout(Duration::from_secs(2), crate::db::ping(&state.db)).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(HealthResponse {
            status: "ok".into(),
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "the database is unreachable",
            ))
        }
        Err(_) => Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "the database did not answer within 2 seconds",
        )),
    }
}
