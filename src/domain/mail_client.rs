//! What mail clients are told and may use: the protocols a device password opens, the scopes
//! of a mailbox token, and the one list of client-facing endpoints (ports and TLS) that the
//! server settings, autoconfig, autodiscover, Apple profiles, the DNS records and the
//! generated mail stack all repeat (a unit test in `mailstack` keeps them in step).

use serde::Serialize;
use utoipa::ToSchema;

use super::kinds::stored_enum;
use super::AddressKind;

stored_enum! {
    /// A mail protocol a client speaks with the address as its user name.
    MailProtocol {
        /// Reading over IMAP (993, recommended).
        Imap = "imap",
        /// Reading over POP3 (995).
        Pop3 = "pop3",
        /// Sending over SMTP submission (465, 587).
        Smtp = "smtp",
    }
}

impl MailProtocol {
    /// Whether an address of `kind` offers this protocol at all: reading needs a mailbox
    /// (not `no_reply`), sending an address that may send (not `catchall`).
    pub fn offered_by(self, kind: AddressKind) -> bool {
        match self {
            MailProtocol::Imap | MailProtocol::Pop3 => kind != AddressKind::NoReply,
            MailProtocol::Smtp => kind != AddressKind::Catchall,
        }
    }
}

/// What a mailbox token may be used for: the webmail reads over IMAP and sends through
/// submission (POP3 is for mail clients, which use passwords).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailboxScope {
    /// Log in to IMAP (XOAUTH2 or OAUTHBEARER).
    Imap,
    /// Authenticate to SMTP submission and send (needs `send_email`).
    Smtp,
}

impl MailboxScope {
    pub fn protocol(self) -> MailProtocol {
        match self {
            MailboxScope::Imap => MailProtocol::Imap,
            MailboxScope::Smtp => MailProtocol::Smtp,
        }
    }
}

/// How a client secures the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (implicit TLS).
    Ssl,
    /// Plain connection upgraded with STARTTLS.
    Starttls,
}

/// One endpoint mail clients are told to use, always on the provider's mail host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientEndpoint {
    pub protocol: MailProtocol,
    pub port: u16,
    pub security: Security,
    /// The preferred endpoint of its direction (incoming or outgoing).
    pub recommended: bool,
}

impl ClientEndpoint {
    pub fn incoming(&self) -> bool {
        self.protocol != MailProtocol::Smtp
    }
}

pub const IMAPS_PORT: u16 = 993;
pub const POP3S_PORT: u16 = 995;
pub const SUBMISSIONS_PORT: u16 = 465;
pub const SUBMISSION_PORT: u16 = 587;

/// Every endpoint given to mail clients, preferred first in each direction: IMAP over POP
/// (messages and folders stay on the server), implicit TLS over STARTTLS (RFC 8314).
pub const CLIENT_ENDPOINTS: [ClientEndpoint; 4] = [
    ClientEndpoint {
        protocol: MailProtocol::Imap,
        port: IMAPS_PORT,
        security: Security::Ssl,
        recommended: true,
    },
    ClientEndpoint {
        protocol: MailProtocol::Pop3,
        port: POP3S_PORT,
        security: Security::Ssl,
        recommended: false,
    },
    ClientEndpoint {
        protocol: MailProtocol::Smtp,
        port: SUBMISSIONS_PORT,
        security: Security::Ssl,
        recommended: true,
    },
    ClientEndpoint {
        protocol: MailProtocol::Smtp,
        port: SUBMISSION_PORT,
        security: Security::Starttls,
        recommended: false,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_needs_a_mailbox_and_sending_an_address_that_sends() {
        assert!(!MailProtocol::Imap.offered_by(AddressKind::NoReply));
        assert!(!MailProtocol::Pop3.offered_by(AddressKind::NoReply));
        assert!(MailProtocol::Smtp.offered_by(AddressKind::NoReply));
        assert!(!MailProtocol::Smtp.offered_by(AddressKind::Catchall));
        assert!(MailProtocol::Imap.offered_by(AddressKind::Catchall));
        for kind in [AddressKind::Personal, AddressKind::Shared] {
            assert!(MailProtocol::ALL.iter().all(|p| p.offered_by(kind)));
        }
    }

    #[test]
    fn the_first_endpoint_of_each_direction_is_the_recommended_one() {
        let incoming: Vec<_> = CLIENT_ENDPOINTS.iter().filter(|e| e.incoming()).collect();
        let outgoing: Vec<_> = CLIENT_ENDPOINTS.iter().filter(|e| !e.incoming()).collect();
        for list in [incoming, outgoing] {
            assert!(list[0].recommended);
            assert!(list[1..].iter().all(|e| !e.recommended));
        }
    }
}
