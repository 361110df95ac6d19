//! The permission vocabulary on an address and its set representation. The bit of each flag
//! is stored in the database (a BIGINT that a CHECK constraint bounds to the known bits):
//! never reorder or reuse a bit. In JSON a set is the list of its flags.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One right on an address.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    ChangePassword,
    ManageAliases,
    ManageRedirections,
    ManageAutoReply,
    ManageSignatures,
    ManageFilters,
    ManageRules,
    /// Blocked and approved senders.
    ManageSecurity,
    ConfigureMailFolders,
    RestoreEmails,
    /// Read the address's action history.
    AccessLogs,
    SendEmail,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::ChangePassword,
        Permission::ManageAliases,
        Permission::ManageRedirections,
        Permission::ManageAutoReply,
        Permission::ManageSignatures,
        Permission::ManageFilters,
        Permission::ManageRules,
        Permission::ManageSecurity,
        Permission::ConfigureMailFolders,
        Permission::RestoreEmails,
        Permission::AccessLogs,
        Permission::SendEmail,
    ];

    /// The flag's name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ChangePassword => "change_password",
            Permission::ManageAliases => "manage_aliases",
            Permission::ManageRedirections => "manage_redirections",
            Permission::ManageAutoReply => "manage_auto_reply",
            Permission::ManageSignatures => "manage_signatures",
            Permission::ManageFilters => "manage_filters",
            Permission::ManageRules => "manage_rules",
            Permission::ManageSecurity => "manage_security",
            Permission::ConfigureMailFolders => "configure_mail_folders",
            Permission::RestoreEmails => "restore_emails",
            Permission::AccessLogs => "access_logs",
            Permission::SendEmail => "send_email",
        }
    }

    fn bit(self) -> i64 {
        1 << (self as u32)
    }
}

/// A set of permissions, stored as a bitmask (a sea-orm value type: entities hold it as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sea_orm::DeriveValueType)]
pub struct PermissionSet(i64);

impl PermissionSet {
    pub fn all() -> Self {
        Self::from_iter(Permission::ALL)
    }

    pub fn empty() -> Self {
        Self(0)
    }

    /// From the stored bitmask; unknown bits are dropped.
    pub fn from_bits(bits: i64) -> Self {
        Self(bits & Self::all_bits())
    }

    pub(crate) fn all_bits() -> i64 {
        Permission::ALL.iter().fold(0, |acc, p| acc | p.bit())
    }

    pub fn bits(self) -> i64 {
        self.0
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn to_vec(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .collect()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_vec().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Permission>::deserialize(deserializer).map(|list| list.into_iter().collect())
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |acc, p| acc | p.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_round_trips_through_its_bits_in_vocabulary_order() {
        let set: PermissionSet = [Permission::SendEmail, Permission::ChangePassword]
            .into_iter()
            .collect();
        let again = PermissionSet::from_bits(set.bits());
        assert_eq!(
            again.to_vec(),
            vec![Permission::ChangePassword, Permission::SendEmail]
        );
        assert_eq!(PermissionSet::all().to_vec().len(), 12);
        assert!(!PermissionSet::from_bits(1 << 40).contains(Permission::ChangePassword));
    }

    #[test]
    fn a_set_travels_as_the_list_of_its_flags() {
        let set: PermissionSet =
            serde_json::from_str(r#"["send_email","change_password"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["change_password","send_email"]"#
        );
    }

    #[test]
    fn flags_serialise_in_snake_case() {
        let json = serde_json::to_string(&Permission::ConfigureMailFolders).unwrap();
        assert_eq!(json, "\"configure_mail_folders\"");
        assert!(serde_json::from_str::<Permission>("\"fly\"").is_err());
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }
}
