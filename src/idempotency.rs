//! `Idempotency-Key` on creating POSTs (docs/idempotency.md): a middleware that, for an
//! authenticated POST whose operation creates something (documented with a 201 or 202) and
//! carries the header, reserves the key for the caller's account in the database, lets the
//! handler run once, stores its answer sealed and replays it to every retry with the same
//! key and request for 24 hours, on any instance. It owns no business rule: the handler
//! below it does the work exactly as without a key.

use std::sync::Arc;

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{Payload, ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpResponse, ResponseError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::Duration;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::repo::idempotency_keys::{self, Reservation};
use crate::state::AppState;

/// The request header (draft-ietf-httpapi-idempotency-key-header).
pub(crate) const HEADER: &str = "Idempotency-Key";
/// Marks a replayed answer.
pub(crate) const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long an answer is replayed.
pub(crate) const LIFETIME_HOURS: i64 = 24;
/// How long a reservation holds without an answer: an instance that died mid-request frees
/// the key after this, so the client's retry does the work (a request takes far less).
const LEASE_SECS: i64 = 120;
/// `Retry-After` of `idempotency_key_in_progress`.
const IN_PROGRESS_RETRY_SECS: u64 = 1;
/// Answer headers that are part of the answer (the rest is per request: request id, rate
/// limits, dates).
const REPLAYED_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::ETAG,
    header::CONTENT_LOCATION,
    header::LINK,
];

/// The operations the header applies to: authenticated POSTs that create something (a 201,
/// or a 202 that queues an invitation or a delivery). The OpenAPI document lists the header
/// on exactly these.
pub(crate) fn applies_to(operation: &utoipa::openapi::path::Operation) -> bool {
    let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let creates = operation.responses.responses.contains_key("201")
        || operation.responses.responses.contains_key("202");
    authenticated && creates
}

/// Every POST path of the document, in the document's (and actix's) matching order, with
/// whether the header applies to it.
pub struct IdempotentRoutes(Vec<(ResourceDef, bool)>);

impl IdempotentRoutes {
    pub fn new(api: &utoipa::openapi::OpenApi) -> Self {
        Self(
            api.paths
                .paths
                .iter()
                .filter_map(|(path, item)| {
                    let post = item.post.as_ref()?;
                    Some((ResourceDef::new(path.as_str()), applies_to(post)))
                })
                .collect(),
        )
    }

    fn applies(&self, path: &str) -> bool {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .is_some_and(|(_, applies)| *applies)
    }
}

/// The key that seals stored answers (they may hold a secret shown once: a device password,
/// a webhook secret), derived from an instance secret. Each row's key also mixes in the
/// client's idempotency key, which the row stores only hashed.
#[derive(Clone)]
pub struct SealKey(Arc<[u8; 32]>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

impl SealKey {
    pub fn derive(instance_secret: &[u8]) -> Self {
        let digest =
            Sha256::digest([b"postier-idempotency-seal-v1:".as_slice(), instance_secret].concat());
        let mut key = [0u8; 32];
        key.copy_from_slice(&digest);
        Self(Arc::new(key))
    }

    fn cipher(&self, idempotency_key: &str) -> XChaCha20Poly1305 {
        let key = Sha256::digest([self.0.as_slice(), b":", idempotency_key.as_bytes()].concat());
        XChaCha20Poly1305::new(&key)
    }

    fn seal(&self, key: &str, aad: &[u8], plain: &[u8]) -> Result<String, ApiError> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher(key)
            .encrypt(&XNonce::from(nonce), AeadPayload { msg: plain, aad })
            .map_err(|_| ApiError::internal("cannot seal an idempotent answer"))?;
        Ok(STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    fn open(&self, key: &str, aad: &[u8], sealed: &str) -> Result<Vec<u8>, ApiError> {
        let unreadable = || ApiError::internal("a stored idempotent answer does not open");
        let bytes = STANDARD.decode(sealed).map_err(|_| unreadable())?;
        if bytes.len() < 24 {
            return Err(unreadable());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| unreadable())?;
        self.cipher(key)
            .decrypt(
                &XNonce::from(nonce),
                AeadPayload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| unreadable())
    }
}

/// A stored answer.
#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// The key as sent: 1–255 visible ASCII characters; a Structured Field string (`"…"`, as the
/// draft writes it) stands for its content.
fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::validation(vec![FieldError::new(
            HEADER,
            "must be 1 to 255 visible ASCII characters",
        )])
    };
    let raw = value.to_str().map_err(|_| invalid())?;
    let key = raw
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(raw);
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(key.to_string())
}

/// Whether an answer is replayed to a retry. A 5xx never is (the client must be able to
/// retry), nor are answers that say "try again later" (408, 425, 429): a retry may succeed.
/// Every other answer, a refusal included, is the request's answer and stays so.
fn is_final(status: StatusCode) -> bool {
    !(status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429))
}

/// The middleware (mounted in `startup`).
pub(crate) async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let applies = req.method() == Method::POST
        && req
            .app_data::<web::Data<IdempotentRoutes>>()
            .is_some_and(|routes| routes.applies(req.path()));
    let header_value = req.headers().get(HEADER).cloned();
    let (Some(value), true) = (header_value, applies) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let key = match parse_key(&value) {
        Ok(key) => key,
        Err(e) => return Ok(req.into_response(e.error_response())),
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    // Keys are per account. An unauthenticated request goes on without one: the handler
    // refuses it as it would without the header.
    let Ok(caller) = AuthUser::from_request(req.request(), &mut Payload::None).await else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let account_id = caller.account_id;
    let limit = state
        .config
        .max_json_bytes
        .max(state.config.import_max_bytes);
    let body = match crate::extract::read_body(&mut req.take_payload(), limit).await {
        Ok(body) => body,
        Err(e) => return Ok(req.into_response(e.error_response())),
    };
    let fingerprint = fingerprint(&req, &body);
    req.set_payload(Payload::from(actix_web::web::Bytes::from(body)));
    let key_hash = crate::auth::token::hash(&key);
    let aad = [account_id.as_bytes().as_slice(), key_hash.as_bytes()].concat();
    let now = state.clock.now();
    let reserved = idempotency_keys::reserve(
        &state.db,
        account_id,
        &key_hash,
        &fingerprint,
        now,
        now + Duration::seconds(LEASE_SECS),
    )
    .await;
    match reserved {
        Err(e) => Ok(req.into_response(ApiError::from(e).error_response())),
        Ok(Reservation::Existing(row)) => {
            let answer = existing_answer(&state, &key, &aad, &fingerprint, row);
            Ok(req.into_response(answer.unwrap_or_else(|e| e.error_response())))
        }
        Ok(Reservation::Reserved) => {
            let res = next.call(req).await;
            let res = match res {
                Ok(res) => res,
                Err(e) => {
                    release(&state, account_id, &key_hash).await;
                    return Err(e);
                }
            };
            if !is_final(res.status()) {
                release(&state, account_id, &key_hash).await;
                return Ok(res.map_into_boxed_body());
            }
            store(&state, account_id, &key, &key_hash, &aad, res).await
        }
    }
}

/// SHA-256 of what makes two requests the same one: method, path and query, body.
fn fingerprint(req: &ServiceRequest, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b"\n");
    hasher.update(req.uri().path_and_query().map_or("", |p| p.as_str()));
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// The answer to a request whose key was reserved before: the replay, or why not.
fn existing_answer(
    state: &AppState,
    key: &str,
    aad: &[u8],
    fingerprint: &str,
    row: crate::entity::idempotency_key::Model,
) -> Result<HttpResponse, ApiError> {
    if row.fingerprint != fingerprint {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            format!(
                "this {HEADER} was used for another request (method, path or body) in the last \
                 {LIFETIME_HOURS} hours; use a new key"
            ),
        ));
    }
    let (Some(_), Some(sealed)) = (row.status, row.response) else {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyInProgress,
            format!("a request with this {HEADER} is in progress; retry to get its answer"),
        )
        .with_retry_after(IN_PROGRESS_RETRY_SECS));
    };
    let stored: StoredAnswer =
        serde_json::from_slice(&state.idempotency_seal.open(key, aad, &sealed)?).map_err(|e| {
            ApiError::internal(format!("a stored idempotent answer is unreadable: {e}"))
        })?;
    let status = StatusCode::from_u16(stored.status)
        .map_err(|_| ApiError::internal("a stored idempotent answer has no valid status"))?;
    let body = STANDARD
        .decode(stored.body)
        .map_err(|_| ApiError::internal("a stored idempotent answer has no valid body"))?;
    let mut res = HttpResponse::build(status);
    for (name, value) in stored.headers {
        res.append_header((name, value));
    }
    res.insert_header((REPLAYED, HeaderValue::from_static("true")));
    Ok(res.body(body))
}

/// Buffers the handler's answer, stores it sealed and answers it.
async fn store(
    state: &AppState,
    account_id: Uuid,
    key: &str,
    key_hash: &str,
    aad: &[u8],
    res: ServiceResponse<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let body = match to_bytes(body).await {
        Ok(body) => body,
        Err(_) => {
            release(state, account_id, key_hash).await;
            let error = ApiError::internal("the answer's body could not be read");
            return Ok(ServiceResponse::new(req, error.error_response()));
        }
    };
    let headers = REPLAYED_HEADERS
        .iter()
        .flat_map(|name| {
            head.headers().get_all(name).filter_map(|v| {
                v.to_str()
                    .ok()
                    .map(|v| (name.as_str().to_string(), v.to_string()))
            })
        })
        .collect();
    let stored = StoredAnswer {
        status: head.status().as_u16(),
        headers,
        body: STANDARD.encode(&body),
    };
    let sealed = serde_json::to_vec(&stored)
        .map_err(ApiError::internal)
        .and_then(|plain| state.idempotency_seal.seal(key, aad, &plain));
    let saved = match sealed {
        Ok(sealed) => {
            let expires_at = state.clock.now() + Duration::hours(LIFETIME_HOURS);
            let status = i16::try_from(stored.status).unwrap_or(i16::MAX);
            idempotency_keys::complete(&state.db, account_id, key_hash, status, sealed, expires_at)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.detail),
    };
    if let Err(e) = saved {
        // The work is done and answered; a retry after the lease does it again.
        tracing::warn!(error = %e, "storing an idempotent answer failed");
    }
    Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(body))))
}

async fn release(state: &AppState, account_id: Uuid, key_hash: &str) {
    if let Err(e) = idempotency_keys::release(&state.db, account_id, key_hash).await {
        tracing::warn!(error = %e, "releasing an idempotency key failed");
    }
}

/// Deletes expired keys every ten minutes (a key past its lifetime is also replaced when
/// reused); harmless when several instances do it at once.
pub(crate) async fn purge_expired(state: web::Data<AppState>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        match idempotency_keys::purge_expired(&state.db, state.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(keys = n, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
    }
}

/// States the header in the document: a reusable `Idempotency-Key` parameter on every
/// operation [`applies_to`] matches, the `Idempotent-Replayed` header of its answers, and the
/// 409 and 422 it may add.
pub(crate) fn document(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Ref, RefOr, Required};

    let components = api.components.get_or_insert_with(Default::default);
    components.parameters.insert(
        "IdempotencyKey".into(),
        RefOr::T(
            ParameterBuilder::new()
                .name(HEADER)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(format!(
                    "A key of the client's choosing (a UUID, say) that makes a retry safe: \
                     the same key with the same method, path and body within \
                     {LIFETIME_HOURS} hours answers the first request's answer again (with \
                     `Idempotent-Replayed: true`) without doing the work twice; with another \
                     request it is refused (422 `idempotency_key_reused`); while the first is \
                     still running, 409 `idempotency_key_in_progress` with `Retry-After`. Keys \
                     are per account. 5xx answers are not kept, so a retry does the work."
                )))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(257))
                        .pattern(Some("^[\\x21-\\x7E]{1,255}$|^\"[\\x21-\\x7E]{1,255}\"$")),
                ))
                .build(),
        ),
    );
    let replayed = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["true"])),
        ))
        .description(Some(
            "`true` when this is the stored answer of an earlier request with the same \
             `Idempotency-Key`",
        ))
        .build();
    for item in api.paths.paths.values_mut() {
        let Some(operation) = item.post.as_mut().filter(|op| applies_to(op)) else {
            continue;
        };
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::Ref(Ref::new(
                "#/components/parameters/IdempotencyKey",
            )));
        for (status, response) in operation.responses.responses.iter_mut() {
            if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                response
                    .headers
                    .insert(REPLAYED.as_str().to_string(), RefOr::T(replayed.clone()));
            }
        }
        for (status, text) in [
            (
                "409",
                "`idempotency_key_in_progress`: a request with this `Idempotency-Key` is still \
                 running (retry after `Retry-After`)",
            ),
            (
                "422",
                "`idempotency_key_reused`: the `Idempotency-Key` was used for another request; \
                 `validation_failed` naming `Idempotency-Key`: not 1 to 255 visible ASCII \
                 characters",
            ),
        ] {
            let entry = operation.responses.responses.entry(status.to_string());
            match entry {
                std::collections::btree_map::Entry::Occupied(mut existing) => {
                    if let RefOr::T(response) = existing.get_mut() {
                        response.description = format!("{}; {text}", response.description);
                    }
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(crate::openapi::problem_response(text));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        let parse = |v: &str| parse_key(&HeaderValue::from_str(v).unwrap());
        assert_eq!(parse("abc-123").ok().as_deref(), Some("abc-123"));
        assert_eq!(parse("\"abc\"").ok().as_deref(), Some("abc"));
        assert!(parse("").is_err());
        assert!(parse("\"\"").is_err());
        assert!(parse("a b").is_err());
        assert!(parse(&"k".repeat(255)).is_ok());
        assert!(parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn a_sealed_answer_opens_only_with_its_key_and_account() {
        let seal = SealKey::derive(b"instance");
        let sealed = seal.seal("key-1", b"account-1", b"answer").unwrap();
        assert_eq!(
            seal.open("key-1", b"account-1", &sealed).unwrap(),
            b"answer"
        );
        assert!(seal.open("key-2", b"account-1", &sealed).is_err());
        assert!(seal.open("key-1", b"account-2", &sealed).is_err());
    }

    #[test]
    fn server_errors_and_try_later_answers_are_not_replayed() {
        assert!(is_final(StatusCode::CREATED));
        assert!(is_final(StatusCode::CONFLICT));
        assert!(is_final(StatusCode::UNPROCESSABLE_ENTITY));
        assert!(!is_final(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!is_final(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!is_final(StatusCode::TOO_MANY_REQUESTS));
    }
}
