//! What several resources share in their URLs: pages of a list (`?limit=&cursor=`, docs/limits.md),
//! answered as `{items, next_cursor}`) and the `?confirm=` of dangerous deletions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::error::ApiError;
use crate::repo;

/// A page of a list: the items and the cursor of the next page, if any.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only proves there is
    /// a next page; the cursor is the sort key of the last item kept.
    pub(crate) fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u64,
        key: impl Fn(&R) -> String,
        map: impl FnMut(R) -> T,
    ) -> Self {
        let next_cursor = Self::next_cursor(&mut rows, limit, key);
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }

    /// Keeps the first `limit` of up to `limit + 1` fetched rows and answers the cursor of
    /// the next page when the extra row proves there is one.
    pub(crate) fn next_cursor<R>(
        rows: &mut Vec<R>,
        limit: u64,
        key: impl Fn(&R) -> String,
    ) -> Option<String> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        if more {
            rows.last().map(|r| repo::encode_cursor(&key(r)))
        } else {
            None
        }
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[validate(length(min = 1, max = 512))]
    #[param(min_length = 1, max_length = 512)]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub(crate) fn limit(&self) -> u64 {
        self.limit.unwrap_or(repo::DEFAULT_LIMIT)
    }

    /// The id after which the page starts (lists ordered by time-ordered ids).
    pub(crate) fn after_id(&self) -> Result<Option<uuid::Uuid>, ApiError> {
        self.cursor
            .as_deref()
            .map(repo::decode_uuid_cursor)
            .transpose()
    }

    /// The sort key after which the page starts (lists ordered by a text key).
    pub(crate) fn after_key(&self) -> Result<Option<String>, ApiError> {
        self.cursor.as_deref().map(repo::decode_cursor).transpose()
    }
}

/// `?confirm=` of a dangerous deletion.
#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConfirmQuery {
    /// The exact name being deleted (the main domain, the domain, the full address, or the
    /// login of the account).
    #[validate(length(min = 1, max = 320))]
    #[param(min_length = 1, max_length = 320)]
    pub confirm: Option<String>,
}
