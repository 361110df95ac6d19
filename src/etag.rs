//! Entity tags (RFC 9110 §8.8.3, §13.1): a middleware that tags every 200 JSON answer to
//! GET, PATCH and PUT with a strong tag, the SHA-256 of its bytes, and answers a GET whose
//! `If-None-Match` names that tag with 304 and no body; and the `If-Match` precondition
//! ([`IfMatch`]) that services check on PATCH, PUT and DELETE. The tag is of the
//! representation itself, so a GET and the PATCH answer that returned the same JSON carry the
//! same tag, and any change visible in the JSON changes it. It owns no business rule and
//! reads nothing from the database: services hand it the representation they rebuilt.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::future::{ready, Future, Ready};

use crate::error::{ApiError, ApiResult, ErrorCode};

/// The strong tag of a representation: `"` + base64url(SHA-256(bytes)) + `"`.
pub(crate) fn tag_of(body: &[u8]) -> String {
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(Sha256::digest(body)))
}

/// Whether an `If-None-Match` value names `tag`: `*`, or one of its comma-separated tags,
/// compared weakly as RFC 9110 §13.1.2 says (a `W/` prefix is ignored).
pub(crate) fn none_match_names(value: &str, tag: &str) -> bool {
    value.trim() == "*"
        || value
            .split(',')
            .map(|t| t.trim())
            .map(|t| t.strip_prefix("W/").unwrap_or(t))
            .any(|t| t == tag)
}

/// The `If-Match` precondition of a request (RFC 9110 §13.1.1), taken by the handlers of
/// PATCH, PUT and DELETE on a single resource and checked by its service inside the write
/// transaction, against the representation rebuilt from the row it has locked there. So of
/// two clients that read the same tag and both send it, the second finds the row changed
/// and gets 412 instead of silently overwriting the first.
#[derive(Debug, Clone, Default)]
pub(crate) struct IfMatch(Option<String>);

impl IfMatch {
    /// A precondition as a client sends it (`*` or comma-separated tags).
    #[cfg(test)]
    pub(crate) fn of(value: &str) -> Self {
        Self(Some(value.to_string()))
    }

    /// Whether `tag` is one of the listed tags, compared strongly: a weak `W/` tag never
    /// matches (RFC 9110 §13.1.1).
    fn names(&self, tag: &str) -> bool {
        self.0
            .as_deref()
            .is_some_and(|v| v.split(',').map(str::trim).any(|t| t == tag))
    }

    /// Checks the precondition against the representation a GET would answer now, built by
    /// `view` only when a tag was sent: no header holds, and so does `*` (the resource
    /// exists, since the service found it). 412 `precondition_failed` when it does not hold.
    pub(crate) async fn check<T, F, Fut>(&self, view: F) -> ApiResult<()>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        if self.0.as_deref().is_none_or(|v| v.trim() == "*") {
            return Ok(());
        }
        let current = view().await?;
        let body = serde_json::to_vec(&current)
            .map_err(|_| ApiError::internal("the representation could not be written"))?;
        if self.names(&tag_of(&body)) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "If-Match does not name the current ETag: the resource changed since it was read; \
             GET it again and retry with its new ETag",
        ))
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    /// A value that is not visible ASCII cannot name a tag: it is kept as is, so that it
    /// matches nothing and the write answers 412 rather than going ahead unconditionally.
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let value = req
            .headers()
            .get_all(header::IF_MATCH)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .reduce(|a, b| format!("{a}, {b}"));
        ready(Ok(Self(value)))
    }
}

/// The `If-Match` header parameter in the document (`params(IfMatch)` on an operation);
/// [`document`] adds the 412 answer to every operation that has it.
impl utoipa::IntoParams for IfMatch {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        vec![ParameterBuilder::new()
            .name("If-Match")
            .parameter_in(ParameterIn::Header)
            .required(utoipa::openapi::Required::False)
            .description(Some(
                "The `ETag` of the representation this change was decided on (or `*`): 412 \
                 `precondition_failed`, with nothing changed, when the resource no longer \
                 has that tag",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .example(Some(serde_json::json!(
                "\"Ck2yfYI5ymJ8rPq0lB7cV3u8s8P2J0mX8g1Qm9fJxV4\""
            )))
            .build()]
    }
}

fn is_json(res: &ServiceResponse<impl MessageBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The middleware (mounted in `startup`).
pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let method = req.method().clone();
    let tagged = matches!(method, Method::GET | Method::PATCH | Method::PUT);
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let res = next.call(req).await?;
    if !tagged || res.status() != StatusCode::OK || !is_json(&res) {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let (mut head, body) = res.into_parts();
    let Ok(body) = to_bytes(body).await else {
        let error = crate::error::ApiError::internal("the answer's body could not be read");
        return Ok(ServiceResponse::new(
            req,
            actix_web::ResponseError::error_response(&error),
        ));
    };
    let tag = tag_of(&body);
    let Ok(value) = HeaderValue::from_str(&tag) else {
        return Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(body))));
    };
    if method == Method::GET && if_none_match.is_some_and(|v| none_match_names(&v, &tag)) {
        let mut not_modified = HttpResponse::NotModified();
        for name in [header::CACHE_CONTROL, header::VARY] {
            if let Some(v) = head.headers().get(&name) {
                not_modified.insert_header((name, v.clone()));
            }
        }
        not_modified.insert_header((header::ETAG, value));
        return Ok(ServiceResponse::new(req, not_modified.finish()));
    }
    head.headers_mut().insert(header::ETAG, value);
    Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(body))))
}

/// States it in the document: the `ETag` header on the 200 JSON answers of GET, PATCH and
/// PUT, and on GETs the `If-None-Match` parameter and the 304.
pub(crate) fn document(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{RefOr, Required, Response};

    let etag = HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(
            "Strong tag of this representation (SHA-256 of the body); send it back in \
             `If-None-Match` to get 304 while it has not changed, or in `If-Match` on a \
             change so that it is refused (412) if someone else changed the resource first",
        ))
        .build();
    let if_none_match = ParameterBuilder::new()
        .name("If-None-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "An `ETag` of this resource (or `*`): 304 with no body while the representation \
             still has that tag",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build();
    let json_ok = |op: &mut Operation| -> bool {
        match op.responses.responses.get_mut("200") {
            Some(RefOr::T(res)) if res.content.contains_key("application/json") => {
                res.headers
                    .insert("ETag".to_string(), RefOr::T(etag.clone()));
                true
            }
            _ => false,
        }
    };
    let conditional = |op: &Operation| {
        op.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.name == "If-Match" && p.parameter_in == ParameterIn::Header,
            RefOr::Ref(_) => false,
        })
    };
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.patch, &mut item.put].into_iter().flatten() {
            json_ok(op);
        }
        for op in [&mut item.patch, &mut item.put, &mut item.delete]
            .into_iter()
            .flatten()
            .filter(|op| conditional(op))
        {
            op.responses.responses.insert(
                "412".to_string(),
                crate::openapi::problem_response(
                    "`If-Match` does not name the current `ETag` (`precondition_failed`): \
                     nothing was changed",
                ),
            );
        }
        let Some(get) = item.get.as_mut() else {
            continue;
        };
        if !json_ok(get) {
            continue;
        }
        get.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(if_none_match.clone()));
        let mut not_modified = Response::new(
            "Not modified: the representation still has the tag sent in `If-None-Match`",
        );
        not_modified
            .headers
            .insert("ETag".to_string(), RefOr::T(etag.clone()));
        get.responses
            .responses
            .insert("304".to_string(), RefOr::T(not_modified));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_names_a_tag_in_a_list_or_star_weakly() {
        let tag = tag_of(b"{}");
        assert!(none_match_names("*", &tag));
        assert!(none_match_names(&tag, &tag));
        assert!(none_match_names(&format!("\"x\", W/{tag}"), &tag));
        assert!(!none_match_names("\"x\"", &tag));
        assert_ne!(tag_of(b"{}"), tag_of(b"{ }"));
    }

    #[actix_web::test]
    async fn if_match_holds_for_star_or_the_current_tag_compared_strongly() {
        let current = serde_json::json!({"a": 1});
        let tag = tag_of(&serde_json::to_vec(&current).unwrap());
        let view = || async { Ok(current.clone()) };
        assert!(IfMatch::default().check(view).await.is_ok());
        assert!(IfMatch::of("*").check(view).await.is_ok());
        assert!(IfMatch::of(&tag).check(view).await.is_ok());
        assert!(IfMatch::of(&format!("\"x\", {tag}"))
            .check(view)
            .await
            .is_ok());
        for refused in [format!("W/{tag}"), "\"x\"".to_string(), String::new()] {
            let err = IfMatch::of(&refused).check(view).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::PreconditionFailed, "{refused}");
        }
    }
}
