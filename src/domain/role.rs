//! Roles of an account in an organization.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages everything, including members; an organization keeps at least one.
    Owner,
    /// Manages every product of the organization.
    Admin,
    /// Sees the organization's services; acts on addresses through accesses.
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        [Role::Owner, Role::Admin, Role::User]
            .into_iter()
            .find(|r| r.as_str() == value)
    }

    /// Owners and admins manage every product of the organization.
    pub fn manages(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}
