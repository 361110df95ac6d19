//! The one error type of the HTTP API and its code table. Every error answer, including the
//! ones actix produces itself, is rendered here as RFC 9457 `application/problem+json` with a
//! stable snake_case `code`. A 5xx never shows its cause to the client; the cause is logged.

use std::fmt;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// What a client is told to wait when the database is unavailable: a restart takes seconds.
const DATABASE_RETRY_AFTER_SECS: u64 = 2;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $title:literal), )*) => {
        /// Stable machine-readable error codes: clients switch on these, never on `detail`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => match StatusCode::from_u16($status) {
                        Ok(status) => status,
                        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    },)*
                }
            }

            pub fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)* }
            }
        }
    };
}

error_codes! {
    MalformedRequest = ("malformed_request", 400, "The request could not be parsed"),
    /// An e-mailed link's token (verification, login change, password reset) that is
    /// unknown, used, superseded or expired: ask for a new link.
    TokenInvalid = ("token_invalid", 400, "The link is unknown, used or expired"),
    Unauthenticated = ("unauthenticated", 401, "Authentication is required"),
    InvalidCredentials = ("invalid_credentials", 401, "Login or password is wrong"),
    RefreshTokenInvalid = ("refresh_token_invalid", 401, "The refresh token is not valid"),
    /// The password was right and two-factor login is on: the problem's `challenge` goes to
    /// `POST /v1/sessions/second-factor` with a code (at step-up: send `code` too).
    SecondFactorRequired = ("second_factor_required", 401, "A second factor is required"),
    SecondFactorInvalid = ("second_factor_invalid", 401, "The second-factor code is wrong"),
    SecondFactorChallengeInvalid = ("second_factor_challenge_invalid", 401, "The login challenge is unknown, used or expired"),
    Forbidden = ("forbidden", 403, "Not allowed"),
    ReauthenticationRequired = ("reauthentication_required", 403, "A recent password proof is required"),
    /// The API token's scopes do not cover the operation (`read` only safe methods, `write`
    /// no dangerous operation).
    TokenScopeInsufficient = ("token_scope_insufficient", 403, "The API token's scopes do not allow this"),
    /// Managing API tokens, step-up and logout need a session (log in), not an API token.
    SessionRequired = ("session_required", 403, "This operation needs a logged-in session, not an API token"),
    PermissionDenied = ("permission_denied", 403, "A permission on this address is missing"),
    PasswordIncorrect = ("password_incorrect", 403, "The password is not correct"),
    InvitationBindingMismatch = ("invitation_binding_mismatch", 403, "This invitation is bound to another login"),
    SecondFactorIncorrect = ("second_factor_incorrect", 403, "The second-factor code is not correct"),
    AccessRequired = ("access_required", 403, "Only an account with an access to this address may do this"),
    NotFound = ("not_found", 404, "Not found"),
    RouteNotFound = ("route_not_found", 404, "No such route"),
    MethodNotAllowed = ("method_not_allowed", 405, "Method not allowed on this route"),
    AccountAlreadyExists = ("account_already_exists", 409, "An account already uses this login"),
    MemberAlreadyExists = ("member_already_exists", 409, "The account is already a member"),
    OrganizationLastOwner = ("organization_last_owner", 409, "An organization keeps at least one owner"),
    DomainAlreadyUsed = ("domain_already_used", 409, "The domain belongs to a mail service already"),
    DomainClaimPending = ("domain_claim_pending", 409, "Another organization claims the domain; prove ownership to take it over"),
    DomainIsMain = ("domain_is_main", 409, "The main domain cannot be unlinked"),
    DomainHasAddresses = ("domain_has_addresses", 409, "Addresses still use this domain"),
    PackDoesNotFit = ("pack_does_not_fit", 409, "The mail service does not fit the requested pack"),
    FreeServiceExists = ("free_service_exists", 409, "The organization has a free mail service already"),
    AddressAlreadyExists = ("address_already_exists", 409, "The address exists already"),
    AddressLimitReached = ("address_limit_reached", 409, "The pack allows no more addresses"),
    CatchallNotAvailable = ("catchall_not_available", 409, "The pack offers no catchall"),
    AddressIsAccountLogin = ("address_is_account_login", 409, "The address is an account's login and cannot be shared"),
    UnificationNotEligible = ("unification_not_eligible", 409, "Password unification is not possible"),
    AddressHasNoMailbox = ("address_has_no_mailbox", 409, "The address has no mailbox (no_reply)"),
    AccessAlreadyExists = ("access_already_exists", 409, "The account has an access to this address already"),
    ForwardAlreadyExists = ("forward_already_exists", 409, "The address forwards to this target already"),
    ForwardLimitReached = ("forward_limit_reached", 409, "The pack allows no more forwarding targets"),
    InvitationNotPending = ("invitation_not_pending", 409, "The invitation was already answered, revoked or expired"),
    InvitationAlreadyPending = ("invitation_already_pending", 409, "An invitation is already waiting for this account"),
    LoginAlreadyVerified = ("login_already_verified", 409, "The login is verified already"),
    TotpAlreadyEnabled = ("totp_already_enabled", 409, "Two-factor login is on already"),
    TotpNotEnabled = ("totp_not_enabled", 409, "Two-factor login is not on"),
    TotpEnrolmentMissing = ("totp_enrolment_missing", 409, "No two-factor enrolment is waiting for a code"),
    WebhookLimitReached = ("webhook_limit_reached", 409, "The organization has its largest number of webhook endpoints"),
    /// A request with this `Idempotency-Key` is still being processed: retry after
    /// `Retry-After` seconds to get its answer.
    IdempotencyKeyInProgress = ("idempotency_key_in_progress", 409, "A request with this Idempotency-Key is in progress"),
    /// The account holds its largest number of unexpired API tokens.
    ApiTokenLimitReached = ("api_token_limit_reached", 409, "The account holds its largest number of API tokens"),
    ConfirmationRequired = ("confirmation_required", 422, "The confirmation does not match"),
    InvitationExpired = ("invitation_expired", 410, "The invitation has expired"),
    ShareLinkExpired = ("share_link_expired", 410, "The share link has expired"),
    ShareLinkRevoked = ("share_link_revoked", 410, "The share link was revoked"),
    ShareLinkUsedUp = ("share_link_used_up", 410, "The share link has no uses left"),
    /// `If-Match` names no current representation of the resource: read it again.
    PreconditionFailed = ("precondition_failed", 412, "The resource has changed"),
    PayloadTooLarge = ("payload_too_large", 413, "The request body is too large"),
    UnsupportedMediaType = ("unsupported_media_type", 415, "Unsupported media type"),
    ValidationFailed = ("validation_failed", 422, "The request is invalid"),
    /// This `Idempotency-Key` was used in the last 24 hours with another method, path or
    /// body: use a new key for a new request.
    IdempotencyKeyReused = ("idempotency_key_reused", 422, "The Idempotency-Key was used for another request"),
    DevicePasswordLimitReached = ("device_password_limit_reached", 422, "The access holds the most device passwords allowed"),
    TooManyRequests = ("too_many_requests", 429, "Too many requests"),
    /// The account's (or API token's) request budget of the window is spent: retry after
    /// `Retry-After` seconds (the `RateLimit` header says the same).
    RateLimited = ("rate_limited", 429, "Request rate limit reached"),
    DailyCreationLimitReached = ("daily_creation_limit_reached", 429, "The mail service created its daily number of addresses"),
    InternalError = ("internal_error", 500, "Internal server error"),
    ServiceUnavailable = ("service_unavailable", 503, "The service is unavailable"),
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as a JSON path (`permissions[2]`) or a parameter name.
    pub field: String,
    /// Why it is refused.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// A URI identifying the problem type (`urn:postier:problem:<code>`).
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ErrorCode,
    /// Present for `validation_failed` (and other field-specific problems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub errors: Vec<FieldError>,
    /// With `second_factor_required` from `POST /v1/sessions` only: the short-lived, single-use
    /// login challenge to send with a code to `POST /v1/sessions/second-factor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub challenge: Option<String>,
}

/// An error answered to the client. Construct with the helpers; attach the cause of a 5xx
/// with [`ApiError::internal`].
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
    /// A second-factor login challenge (see [`ProblemDocument::challenge`]).
    pub challenge: Option<String>,
    /// A bearer token was presented and refused: the 401 says `error="invalid_token"`.
    token_refused: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            challenge: None,
            token_refused: false,
            source: None,
        }
    }

    /// 422 with one field error; `detail` repeats the message for humans.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 422 listing every invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(ErrorCode::ValidationFailed, detail)
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    /// 401 for a bearer token that was sent and refused (bad, expired, or its session ended).
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        Self {
            token_refused: true,
            ..Self::new(ErrorCode::Unauthenticated, detail)
        }
    }

    /// 401 `second_factor_required`, carrying the login challenge when there is one.
    pub fn second_factor_required(challenge: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            challenge,
            ..Self::new(ErrorCode::SecondFactorRequired, detail)
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(code, detail)
    }

    pub fn throttled(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(
                ErrorCode::TooManyRequests,
                format!(
                    "too many attempts; retry in {} seconds",
                    retry_after_secs.max(1)
                ),
            )
        }
    }

    /// 429 `rate_limited`: the caller's request budget is spent for `retry_after_secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(
                ErrorCode::RateLimited,
                format!(
                    "the request budget of this window is spent; retry in {} seconds",
                    retry_after_secs.max(1)
                ),
            )
        }
    }

    /// A 500 whose cause is logged, never shown.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(ErrorCode::InternalError, "an unexpected error occurred")
        }
    }

    /// A 503 with `Retry-After` for a database that cannot serve right now; the cause is
    /// logged, never shown.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: Some(source.into()),
            retry_after_secs: Some(DATABASE_RETRY_AFTER_SECS),
            ..Self::new(
                ErrorCode::ServiceUnavailable,
                "the database is unavailable right now; retry shortly",
            )
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn document(&self) -> ProblemDocument {
        ProblemDocument {
            type_: format!("urn:postier:problem:{}", self.code.as_str()),
            title: self.code.title().to_string(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            errors: self.errors.clone(),
            challenge: self.challenge.clone(),
        }
    }

    /// The RFC 6750 challenge every 401 carries: `Bearer realm="postier"`, with
    /// `error="invalid_token"` when a token was sent and refused.
    fn www_authenticate(&self) -> Option<HeaderValue> {
        if self.code.status() != StatusCode::UNAUTHORIZED {
            return None;
        }
        Some(HeaderValue::from_static(if self.token_refused {
            "Bearer realm=\"postier\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"postier\""
        }))
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("code", &self.code)
            .field("detail", &self.detail)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        if self.code.status().is_server_error() {
            match &self.source {
                Some(source) => {
                    tracing::error!(error = %source, code = self.code.as_str(), "request failed")
                }
                None => {
                    tracing::error!(code = self.code.as_str(), detail = %self.detail, "request failed")
                }
            }
        }
        let mut response = HttpResponse::build(self.code.status());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(challenge) = self.www_authenticate() {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        response.body(serde_json::to_vec(&self.document()).unwrap_or_default())
    }
}

/// A database that cannot be reached (or is busy) answers 503 with `Retry-After`: the
/// statement wrote nothing and a retry may succeed (`db::is_unavailable`). Anything else is
/// a 500. A NUL character in a text value, which PostgreSQL refuses to store, is the
/// client's: 400.
impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if crate::db::is_unavailable(&err) {
            ApiError::unavailable(err)
        } else if crate::db::is_nul_character(&err) {
            ApiError::new(
                ErrorCode::MalformedRequest,
                "a value holds a NUL character (U+0000), which is not accepted",
            )
        } else {
            ApiError::internal(err)
        }
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(err: sea_orm::TransactionError<ApiError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        ApiError::internal(err)
    }
}

/// The code used for an error response that did not come from an [`ApiError`]
/// (actix's own 404/405/413/…).
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 => ErrorCode::MalformedRequest,
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::RouteNotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::ValidationFailed,
        429 => ErrorCode::TooManyRequests,
        503 => ErrorCode::ServiceUnavailable,
        _ => ErrorCode::InternalError,
    }
}

/// Middleware hook: turns any error answer that is not yet a problem document into one,
/// keeping its status and headers (`Allow`, `Retry-After`…). The HTML pages behind e-mailed
/// links (`pages`) answer their errors as pages, which stay as they are.
pub fn render_foreign_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_CONTENT_TYPE) || v.starts_with("text/html"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let code = code_for_status(status);
    let detail = match code {
        ErrorCode::RouteNotFound => format!("no route matches {}", res.request().path()),
        ErrorCode::MethodNotAllowed => format!(
            "{} is not allowed on {}",
            res.request().method(),
            res.request().path()
        ),
        ErrorCode::InternalError => "an unexpected error occurred".to_string(),
        other => other.title().to_string(),
    };
    let error = ApiError::new(code, detail);
    let body = serde_json::to_vec(&error.document()).unwrap_or_default();
    let (req, mut res) = res.into_parts();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    if let Some(challenge) = error.www_authenticate() {
        if !res.headers().contains_key(header::WWW_AUTHENTICATE) {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
    }
    let res = res.set_body(body);
    let res = ServiceResponse::new(req, res)
        .map_into_boxed_body()
        .map_into_right_body::<B>();
    Ok(ErrorHandlerResponse::Response(res))
}
