//! The pack table: what each kind of mail service allows. One table, read everywhere.

use serde::Serialize;
use utoipa::ToSchema;

use super::kinds::stored_enum;

stored_enum! {
    /// Product level of a mail service.
    Pack {
        /// On the provider's shared free domain; one address per account of the organization.
        Free = "free",
        /// One address on the customer's domain.
        Starter = "starter",
        /// Paid: unbounded addresses, catchall.
        Premium = "premium",
    }
}

/// Limits of a pack, as returned on every mail service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PackLimits {
    /// Recipients per message, To + Cc + Bcc.
    pub recipients_per_message: u32,
    /// Messages per sliding 24 h, each recipient counting once.
    pub messages_per_24h: u32,
    /// Most addresses in the service; `null` when unbounded or counted per account.
    pub max_addresses: Option<u32>,
    /// Addresses each account of the organization may hold (the free pack).
    pub addresses_per_account: Option<u32>,
    /// Whether a catchall address may be created.
    pub catchall: bool,
    /// Storage per address in GB; `null` when unlimited.
    pub storage_gb: Option<u32>,
    /// Addresses the service may create per sliding 24 h.
    pub address_creations_per_24h: u32,
    /// Forwarding targets per address.
    pub forwards_per_address: u32,
}

impl Pack {
    /// The pack table. `daily_creations` is configurable (`POSTIER_DAILY_ADDRESS_CREATIONS`).
    pub fn limits(self, daily_creations: u32) -> PackLimits {
        let (recipients, messages, max, per_account, catchall, storage, forwards) = match self {
            Pack::Free => (10, 500, None, Some(1), false, Some(20), 100),
            Pack::Starter => (100, 500, Some(1), None, false, Some(20), 10),
            Pack::Premium => (100, 1440, None, None, true, None, 100),
        };
        PackLimits {
            recipients_per_message: recipients,
            messages_per_24h: messages,
            max_addresses: max,
            addresses_per_account: per_account,
            catchall,
            storage_gb: storage,
            address_creations_per_24h: daily_creations,
            forwards_per_address: forwards,
        }
    }

    /// Most addresses the service may hold, given the organization's member count.
    pub fn address_capacity(self, members: u64) -> Option<u64> {
        let limits = self.limits(0);
        match (limits.max_addresses, limits.addresses_per_account) {
            (Some(max), _) => Some(u64::from(max)),
            (None, Some(per_account)) => Some(u64::from(per_account) * members),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pack_table_matches_the_published_figures() {
        let free = Pack::Free.limits(50);
        assert_eq!(
            (free.recipients_per_message, free.messages_per_24h),
            (10, 500)
        );
        assert!(!free.catchall);
        let starter = Pack::Starter.limits(50);
        assert_eq!(
            (starter.recipients_per_message, starter.max_addresses),
            (100, Some(1))
        );
        let premium = Pack::Premium.limits(50);
        assert_eq!(
            (premium.messages_per_24h, premium.max_addresses),
            (1440, None)
        );
        assert!(premium.catchall);
        assert_eq!(premium.storage_gb, None);
        assert_eq!(Pack::Free.address_capacity(3), Some(3));
        assert_eq!(Pack::Premium.address_capacity(3), None);
    }
}
