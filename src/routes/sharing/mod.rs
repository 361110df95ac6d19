//! Sharing an address: its users, invitations and share links.

pub mod invitations;
pub mod share_links;
pub mod users;
