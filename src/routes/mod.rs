//! HTTP handlers, one file per resource: extract → domain → repo → response DTO. The one
//! `configure` function here is mounted by the server and read by the OpenAPI generator.

pub mod accounts;
pub mod addresses;
pub mod devices;
pub mod domains;
pub mod health;
pub mod imports;
pub mod mail_services;
pub mod organizations;
pub mod sessions;
pub mod settings;
pub mod sharing;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

/// Every route of the API; the server and `postier openapi` use this same function.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.configure(health::configure)
        .configure(accounts::configure)
        .configure(sessions::configure)
        .configure(organizations::configure)
        .configure(mail_services::configure)
        .configure(domains::configure)
        .configure(devices::configure)
        .configure(addresses::configure)
        .configure(imports::configure)
        .configure(sharing::configure)
        .configure(settings::configure);
}

/// A page of a list (SPEC §11): the items and the cursor of the next page, if any.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only proves there is
    /// a next page; the cursor is the sort key of the last item kept.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u64,
        key: impl Fn(&R) -> String,
        map: impl FnMut(R) -> T,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|r| crate::repo::encode_cursor(&key(r)))
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, serde::Deserialize, validator::Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
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
    pub fn limit(&self) -> u64 {
        self.limit.unwrap_or(crate::repo::DEFAULT_LIMIT)
    }

    /// The id after which the page starts (lists ordered by time-ordered ids).
    pub fn after_id(&self) -> Result<Option<uuid::Uuid>, crate::error::ApiError> {
        self.cursor
            .as_deref()
            .map(crate::repo::decode_uuid_cursor)
            .transpose()
    }

    /// The sort key after which the page starts (lists ordered by a text key).
    pub fn after_key(&self) -> Result<Option<String>, crate::error::ApiError> {
        self.cursor
            .as_deref()
            .map(crate::repo::decode_cursor)
            .transpose()
    }
}
