//! Small vocabularies of the address domain: kinds of address, where an access comes from,
//! who may accept an invitation and the life of an invitation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            pub fn parse(value: &str) -> Option<Self> {
                match value { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

string_enum! {
    /// What an address is for.
    AddressKind {
        /// For one person (created "for me" or "for another user").
        Personal = "personal",
        /// For several users, each invited with their own permissions.
        Shared = "shared",
        /// Sends only (confirmations, invoices); receives nothing.
        NoReply = "no_reply",
        /// Receives every message for a local part that does not exist; cannot send.
        Catchall = "catchall",
    }
}

string_enum! {
    /// How an account came to have an access to an address.
    AccessOrigin {
        /// It created the address for itself.
        Creator = "creator",
        /// It accepted an invitation.
        Invitation = "invitation",
        /// It redeemed a share link.
        ShareLink = "share_link",
        /// It proved the address password.
        Attached = "attached",
    }
}

string_enum! {
    /// Which account may accept an invitation sent by e-mail.
    AccountBinding {
        /// Only an account whose login is the invited address itself.
        ThisAddress = "this_address",
        /// Any account the invitee chooses.
        Any = "any",
    }
}

string_enum! {
    /// The life of an invitation (`expired` is derived from `expires_at`).
    InvitationStatus {
        Pending = "pending",
        Accepted = "accepted",
        Declined = "declined",
        Revoked = "revoked",
        Expired = "expired",
    }
}
