//! Sharing an address: its users, invitations and share links.

pub(super) mod invitations;
pub(super) mod share_links;
pub(super) mod users;
