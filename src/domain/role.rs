//! Roles of an account in an organization.

use super::kinds::stored_enum;

stored_enum! {
    Role {
        /// Manages everything, including members; an organization keeps at least one.
        Owner = "owner",
        /// Manages every product of the organization.
        Admin = "admin",
        /// Sees the organization's services; acts on addresses through accesses.
        User = "user",
    }
}

impl Role {
    /// Owners and admins manage every product of the organization.
    pub fn manages(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}
