//! All database access. Functions take `&impl ConnectionTrait` so that they run on the pool
//! or inside a caller's transaction alike; they return entities or plain values, never HTTP.

pub mod accounts;
pub mod addresses;
pub mod counters;
pub mod events;
pub mod mail_services;
pub mod organizations;
pub mod sending;
pub mod sessions;
pub mod sharing;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::ApiError;

/// Default and largest page sizes of every list (SPEC §11).
pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

/// Opaque cursors: base64url of the sort key of the last item returned.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid_field("cursor", "is not a cursor returned by this list"))
}

/// A cursor holding a UUID (lists ordered by time-ordered ids).
pub fn decode_uuid_cursor(cursor: &str) -> Result<uuid::Uuid, ApiError> {
    decode_cursor(cursor)?
        .parse()
        .map_err(|_| ApiError::invalid_field("cursor", "is not a cursor returned by this list"))
}
