//! How many more addresses a mail service may create: its pack's limit, the free allowance
//! of the creating account (one free address per account, across organizations) and the
//! daily creation limit (docs/limits.md), read under the service lock (and, for the free
//! allowance, the account's) so that concurrent creations cannot exceed them, and counted in
//! the same transaction as the inserts.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::entity::mail_service;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, counters};

const DAY_SECS: i64 = 24 * 3600;

fn creations_key(service_id: Uuid) -> String {
    format!("creations:{service_id}")
}

/// Room left in a mail service now.
#[derive(Debug, Clone)]
pub(crate) struct Room {
    pack: crate::domain::Pack,
    daily_limit: u32,
    /// Addresses the pack still allows (`None`: unbounded).
    pub by_pack: Option<u64>,
    /// Free addresses the creating account may still create (`None`: not a free service).
    by_account: Option<u64>,
    /// Addresses the daily limit still allows.
    pub by_day: u64,
    /// Seconds until the daily limit frees up, when something counts in it.
    frees_in: Option<i64>,
}

impl Room {
    /// The room of `service` for addresses created by `creator` (read it after
    /// `repo::mail_services::lock`; in a transaction, [`Room::lock_creator`] first).
    pub(crate) async fn of(
        conn: &impl ConnectionTrait,
        service: &mail_service::Model,
        creator: Uuid,
        daily_limit: u32,
        now: DateTime<Utc>,
    ) -> ApiResult<Room> {
        let members = repo::organizations::count_members(conn, service.organization_id).await?;
        let by_pack = match service.pack.address_capacity(members) {
            Some(capacity) => {
                let count = repo::mail_services::count_addresses(conn, service.id).await?;
                Some(capacity.saturating_sub(count))
            }
            None => None,
        };
        // The free pack's allowance is the account's, whatever organization it creates in:
        // otherwise one account with four organizations would hold four free addresses.
        let by_account = match service.pack.limits(0).addresses_per_account {
            Some(per_account) => {
                let created =
                    repo::addresses::count_created_on_domain(conn, creator, &service.domain)
                        .await?;
                Some(u64::from(per_account).saturating_sub(created))
            }
            None => None,
        };
        let window = counters::window(conn, &creations_key(service.id), now, DAY_SECS).await?;
        let used = u64::try_from(window.total).unwrap_or(0);
        Ok(Room {
            pack: service.pack,
            daily_limit,
            by_pack,
            by_account,
            by_day: u64::from(daily_limit).saturating_sub(used),
            frees_in: window.frees_in_secs(now, DAY_SECS),
        })
    }

    /// Locks `creator` for a count of its free allowance (free services only), so that two
    /// creations by one account in two organizations cannot both take its last one.
    pub(crate) async fn lock_creator(
        conn: &impl ConnectionTrait,
        service: &mail_service::Model,
        creator: Uuid,
    ) -> ApiResult<()> {
        if service.pack.limits(0).addresses_per_account.is_some() {
            repo::accounts::lock(conn, creator).await?;
        }
        Ok(())
    }

    /// How many addresses fit now.
    pub(crate) fn left(&self) -> u64 {
        self.by_pack
            .unwrap_or(u64::MAX)
            .min(self.by_account.unwrap_or(u64::MAX))
            .min(self.by_day)
    }

    /// Refuses when `adding` more addresses would exceed the pack, the free allowance or the
    /// daily limit.
    pub(crate) fn check(&self, adding: u64) -> ApiResult<()> {
        if let Some(left) = self.by_pack {
            if adding > left {
                return Err(ApiError::conflict(
                    ErrorCode::AddressLimitReached,
                    format!(
                        "the {} pack allows {left} more address(es) in this mail service; change the pack or delete addresses",
                        self.pack
                    ),
                ));
            }
        }
        if let Some(left) = self.by_account {
            if adding > left {
                return Err(ApiError::conflict(
                    ErrorCode::AddressLimitReached,
                    format!(
                        "the {} pack gives each account one address across all its organizations and you have created yours (it counts until it is deleted); {left} more allowed",
                        self.pack
                    ),
                ));
            }
        }
        if adding > self.by_day {
            let retry = u64::try_from(self.frees_in.unwrap_or(DAY_SECS)).unwrap_or(1);
            return Err(ApiError::new(
                ErrorCode::DailyCreationLimitReached,
                format!(
                    "this mail service may create {} addresses per 24 hours and has {} left; retry in {retry} seconds",
                    self.daily_limit, self.by_day
                ),
            )
            .with_retry_after(retry));
        }
        Ok(())
    }
}

/// Counts created addresses against the daily limit (same transaction as the inserts).
pub(crate) async fn count_creations(
    conn: &impl ConnectionTrait,
    service: &mail_service::Model,
    created: u64,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if created > 0 {
        counters::add(
            conn,
            &creations_key(service.id),
            now,
            i64::try_from(created).unwrap_or(i64::MAX),
        )
        .await?;
    }
    Ok(())
}
