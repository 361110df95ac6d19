//! Request extractors that answer in problem+json: JSON bodies (415 on a wrong media type,
//! 413 beyond the limit, 400 when malformed, 422 naming the field when the shape is wrong),
//! query strings (422 naming the parameter) and path segments (404 when not an id).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors};

use crate::error::{ApiError, ErrorCode, FieldError};
use crate::state::AppState;

/// A JSON request body, parsed with the field path of any error and then validated.
pub(crate) struct ApiJson<T>(pub T);

impl<T> std::ops::Deref for ApiJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<actix_web::web::Data<AppState>>()
            .map(|s| s.config.max_json_bytes)
            .unwrap_or(64 * 1024);
        let checked =
            check_media_type(req, is_json_media_type).and_then(|()| check_length(req, limit));
        let body = read_body(payload, limit);
        Box::pin(async move {
            checked?;
            let bytes = body.await?;
            let value: T = parse_json(&bytes)?;
            value.validate().map_err(validation_error)?;
            Ok(ApiJson(value))
        })
    }
}

/// Reads a whole body up to `limit` bytes (413 beyond).
pub(crate) fn read_body(
    payload: &mut Payload,
    limit: usize,
) -> LocalBoxFuture<'static, Result<Vec<u8>, ApiError>> {
    let mut payload = payload.take();
    Box::pin(async move {
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    ErrorCode::MalformedRequest,
                    format!("could not read the body: {e}"),
                )
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.to_vec())
    })
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than {limit} bytes"),
    )
}

/// 413 early when the declared length is already over the limit.
pub(crate) fn check_length(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(len) if len > limit => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// 415 unless the media type passes `accept` (parameters such as charset are ignored).
pub(crate) fn check_media_type(
    req: &HttpRequest,
    accept: fn(&str) -> bool,
) -> Result<(), ApiError> {
    let media_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match media_type {
        Some(mt) if accept(&mt) => Ok(()),
        Some(mt) => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("content type {mt} is not accepted here"),
        )),
        None => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "a Content-Type header is required",
        )),
    }
}

fn is_json_media_type(mt: &str) -> bool {
    mt == "application/json" || (mt.starts_with("application/") && mt.ends_with("+json"))
}

/// Parses JSON keeping the path of the failing field. Strings may not hold NUL characters
/// (`\u0000`): no field has a use for them and PostgreSQL cannot store them in text.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedRequest,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    if let Some(path) = find_nul(&value, String::new()) {
        return Err(ApiError::invalid_field(
            path,
            "must not contain NUL characters (\\u0000)",
        ));
    }
    // Every body is an object: serde would otherwise read a struct from an array too.
    if !value.is_object() {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let message = strip_position(&err.into_inner().to_string());
        ApiError::validation(vec![FieldError::new(field_of(&path, &message), message)])
    })
}

/// The path of the first string (or key) holding a NUL character.
fn find_nul(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    let here = || {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.clone()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(here()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_nul(v, format!("{}[{i}]", here()))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(child)
            } else {
                find_nul(v, child)
            }
        }),
        _ => None,
    }
}

/// serde reports unknown and missing fields on the parent; name the field itself.
fn field_of(path: &str, message: &str) -> String {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let parent = if path == "." { "" } else { path };
    match named {
        // serde_path_to_error already put an unknown field at the end of the path.
        Some(name) if parent == name || parent.ends_with(&format!(".{name}")) => parent.to_string(),
        Some(name) if parent.is_empty() => name.to_string(),
        Some(name) => format!("{parent}.{name}"),
        None if parent.is_empty() => "body".to_string(),
        None => parent.to_string(),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// `validator` errors → 422 listing each field.
pub(crate) fn validation_error(errors: ValidationErrors) -> ApiError {
    let mut list: Vec<FieldError> = errors
        .field_errors()
        .into_iter()
        .flat_map(|(field, errs)| {
            errs.iter().map(move |e| {
                let message = e
                    .message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| describe_validation(e));
                FieldError::new(field.to_string(), message)
            })
        })
        .collect();
    list.sort_by(|a, b| a.field.cmp(&b.field));
    ApiError::validation(list)
}

fn describe_validation(e: &validator::ValidationError) -> String {
    let param = |name: &str| e.params.get(name).map(|v| v.to_string());
    match e.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            _ => "has an invalid length".to_string(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "is out of range".to_string(),
        },
        other => format!("is invalid ({other})"),
    }
}

/// A query string, parsed with the name of any failing parameter, then validated.
pub(crate) struct ApiQuery<T>(pub T);

impl<T> std::ops::Deref for ApiQuery<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(ApiQuery))
    }
}

pub(crate) fn parse_query<T: DeserializeOwned + Validate>(query: &str) -> Result<T, ApiError> {
    if let Some((name, _)) =
        form_urlencoded::parse(query.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::invalid_field(
            name.replace('\0', ""),
            "must not contain NUL characters",
        ));
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    let value: T = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        ApiError::validation(vec![FieldError::new(field_of(&path, &message), message)])
    })?;
    value.validate().map_err(validation_error)?;
    Ok(value)
}

/// Path segments that do not parse (a malformed id) name no resource: 404. Unless the path
/// names another resource, whose literal segment took the place of the parameter (`DELETE
/// /v1/invitations/accept` reached `/v1/invitations/{id}`): then it is that resource, which
/// does not have the method, so 405 with its own methods in `Allow`.
pub(crate) fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|err, req| {
        let routes = req.app_data::<actix_web::web::Data<crate::openapi::RouteTable>>();
        if let Some((pattern, methods)) = routes.and_then(|r| r.resource(req.path())) {
            if req.match_pattern().as_deref() != Some(pattern) {
                let res = crate::startup::method_not_allowed(req, &methods);
                return actix_web::error::InternalError::from_response(err, res).into();
            }
        }
        ApiError::new(ErrorCode::NotFound, "no such resource").into()
    })
}
