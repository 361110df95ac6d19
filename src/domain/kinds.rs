//! Small vocabularies of the address domain: kinds of address, for whom one is created,
//! where an access comes from, who may accept an invitation, the life of an invitation, and
//! what an account token is for.
//! Each is stored as its snake_case text (a sea-orm active enum; CHECK constraints in the
//! schema keep the column to these values) and travels as the same text in JSON.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::utoipa::ToSchema,
            ::sea_orm::EnumIter,
            ::sea_orm::DeriveActiveEnum,
        )]
        #[serde(rename_all = "snake_case")]
        #[sea_orm(rs_type = "String", db_type = "Text")]
        pub enum $name {
            $($(#[$vmeta])* #[sea_orm(string_value = $text)] $variant,)*
        }

        impl $name {
            /// Every value, in declaration order (the CHECK constraint lists the same).
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored and serialised text.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use stored_enum;

stored_enum! {
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

stored_enum! {
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

stored_enum! {
    /// Which account may accept an invitation sent by e-mail.
    AccountBinding {
        /// Only an account whose login is the invited address itself.
        ThisAddress = "this_address",
        /// Any account the invitee chooses.
        Any = "any",
    }
}

stored_enum! {
    /// The life of an invitation (`expired` is derived from `expires_at`).
    InvitationStatus {
        Pending = "pending",
        Accepted = "accepted",
        Declined = "declined",
        Revoked = "revoked",
        Expired = "expired",
    }
}

stored_enum! {
    /// What an account token is for.
    AccountTokenPurpose {
        /// Proves the account receives mail at its login.
        LoginVerification = "login_verification",
        /// Proves the account receives mail at the login it asked to move to.
        LoginChange = "login_change",
        /// Sets a new password without the current one.
        PasswordReset = "password_reset",
        /// The second step of a two-factor login, after the password.
        SecondFactorChallenge = "second_factor_challenge",
    }
}

/// For whom an address is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AddressFor {
    /// The caller, who gets an access with every permission.
    Me,
    /// A member (by login) or anyone else (by e-mail), who is invited.
    OtherUser,
    /// A shared address; users are invited afterwards.
    SeveralUsers,
}
