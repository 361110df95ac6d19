//! The records a customer domain must publish, as Postier lists them to the customer.

use hickory_resolver::proto::rr::RecordType;

use crate::domain::{IMAPS_PORT, POP3S_PORT, SUBMISSIONS_PORT, SUBMISSION_PORT};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a record is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordPurpose {
    /// The TXT record proving that whoever linked the domain controls its DNS.
    Ownership,
    Mx,
    Spf,
    Dkim,
    Dmarc,
    Autoconfig,
    Autodiscover,
    ImapsSrv,
    SubmissionSrv,
    SubmissionsSrv,
    Pop3sSrv,
    AutodiscoverSrv,
}

/// The DNS record types Postier asks customers to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecordType {
    Mx,
    Txt,
    Cname,
    Srv,
}

impl DnsRecordType {
    pub(super) fn wire(self) -> RecordType {
        match self {
            Self::Mx => RecordType::MX,
            Self::Txt => RecordType::TXT,
            Self::Cname => RecordType::CNAME,
            Self::Srv => RecordType::SRV,
        }
    }
}

/// One record a customer domain must publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DnsRecord {
    pub purpose: RecordPurpose,
    pub record_type: DnsRecordType,
    /// Owner name, fully qualified, without the trailing dot.
    #[schema(example = "example.com")]
    pub name: String,
    /// MX, CNAME, SRV: the target host. TXT: the whole text as one string (zone editors and
    /// DNS servers split it into 255-byte strings; receivers join them back).
    #[schema(example = "mail.example")]
    pub value: String,
    /// MX preference or SRV priority.
    #[schema(example = 10)]
    pub priority: Option<u16>,
    /// SRV weight.
    pub weight: Option<u16>,
    /// SRV port.
    pub port: Option<u16>,
    /// What the record is for, in a sentence.
    pub description: String,
}

/// The records `domain` must publish to receive mail at `mail_host`, sign with the DKIM key
/// `dkim_selector`/`dkim_public_b64`, and let mail clients configure themselves. Hosts are the
/// provider's `mail_host`: never an IP address, never `mail.<domain>` (certificates would not
/// match).
pub fn expected_records(
    domain: &str,
    mail_host: &str,
    dkim_selector: &str,
    dkim_public_b64: &str,
) -> Vec<DnsRecord> {
    let domain = normalize_host(domain);
    let host = normalize_host(mail_host);
    let record =
        |purpose, record_type, name: String, value: String, description: String| DnsRecord {
            purpose,
            record_type,
            name,
            value,
            priority: None,
            weight: None,
            port: None,
            description,
        };
    let srv = |purpose, service: &str, port: u16, description: String| DnsRecord {
        // RFC 6186 §3.4: the priority orders IMAP before POP3; within one it is 0.
        priority: Some(if purpose == RecordPurpose::Pop3sSrv {
            10
        } else {
            0
        }),
        weight: Some(1),
        port: Some(port),
        ..record(
            purpose,
            DnsRecordType::Srv,
            format!("{service}._tcp.{domain}"),
            host.clone(),
            description,
        )
    };
    vec![
        DnsRecord {
            priority: Some(10),
            ..record(
                RecordPurpose::Mx,
                DnsRecordType::Mx,
                domain.clone(),
                host.clone(),
                format!("Delivers mail for {domain} to the provider's servers."),
            )
        },
        record(
            RecordPurpose::Spf,
            DnsRecordType::Txt,
            domain.clone(),
            format!("v=spf1 include:_spf.{host} -all"),
            format!(
                "SPF: authorises the provider's servers to send mail from {domain}. A domain \
                 has one SPF record: merge it with any existing one."
            ),
        ),
        record(
            RecordPurpose::Dkim,
            DnsRecordType::Txt,
            format!("{dkim_selector}._domainkey.{domain}"),
            format!("v=DKIM1; k=rsa; p={dkim_public_b64}"),
            format!("DKIM: the public key receivers use to verify mail signed for {domain}."),
        ),
        record(
            RecordPurpose::Dmarc,
            DnsRecordType::Txt,
            format!("_dmarc.{domain}"),
            format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"),
            "DMARC: receivers quarantine mail failing SPF and DKIM and send aggregate reports \
             to postmaster."
                .into(),
        ),
        record(
            RecordPurpose::Autoconfig,
            DnsRecordType::Cname,
            format!("autoconfig.{domain}"),
            host.clone(),
            "Lets Thunderbird and other clients find the server settings (autoconfig).".into(),
        ),
        record(
            RecordPurpose::Autodiscover,
            DnsRecordType::Cname,
            format!("autodiscover.{domain}"),
            host.clone(),
            "Lets Outlook find the server settings (autodiscover).".into(),
        ),
        srv(
            RecordPurpose::ImapsSrv,
            "_imaps",
            IMAPS_PORT,
            "Announces IMAP over TLS on port 993 to mail clients (RFC 6186).".into(),
        ),
        srv(
            RecordPurpose::SubmissionSrv,
            "_submission",
            SUBMISSION_PORT,
            "Announces mail submission with STARTTLS on port 587 (RFC 6186).".into(),
        ),
        srv(
            RecordPurpose::SubmissionsSrv,
            "_submissions",
            SUBMISSIONS_PORT,
            "Announces mail submission over TLS on port 465 (RFC 8314).".into(),
        ),
        srv(
            RecordPurpose::Pop3sSrv,
            "_pop3s",
            POP3S_PORT,
            "Announces POP3 over TLS on port 995, after IMAP (RFC 6186).".into(),
        ),
        srv(
            RecordPurpose::AutodiscoverSrv,
            "_autodiscover",
            443,
            "Lets Outlook reach autodiscover on the provider's host, whose certificate matches \
             (autodiscover.<domain> would not)."
                .into(),
        ),
    ]
}

/// Owner name label of the ownership record, under the domain.
pub(super) const OWNERSHIP_LABEL: &str = "_postier-ownership";
/// What the ownership record's text starts with, before the token.
pub(super) const OWNERSHIP_PREFIX: &str = "postier-ownership=";

/// The TXT record proving that whoever linked `domain` to a mail service controls its DNS:
/// `token` is the value Postier chose for that service and domain, so a record published for
/// another claim (or another provider) proves nothing here.
pub fn ownership_record(domain: &str, token: &str) -> DnsRecord {
    let domain = normalize_host(domain);
    DnsRecord {
        purpose: RecordPurpose::Ownership,
        record_type: DnsRecordType::Txt,
        name: format!("{OWNERSHIP_LABEL}.{domain}"),
        value: format!("{OWNERSHIP_PREFIX}{token}"),
        priority: None,
        weight: None,
        port: None,
        description: format!(
            "Proves that you control the DNS of {domain}: until the DNS check finds it, no              mail is routed for the domain and another organization may still claim it."
        ),
    }
}

/// Host names compare case-insensitively, with or without the root's trailing dot.
pub(super) fn normalize_host(host: &str) -> String {
    let host = host.trim();
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<DnsRecord> {
        expected_records(
            "Example.COM.",
            "mail.example",
            "postier-20261127",
            "MIIBIjANBgkq",
        )
    }

    fn find(purpose: RecordPurpose) -> DnsRecord {
        records()
            .into_iter()
            .find(|r| r.purpose == purpose)
            .unwrap()
    }

    #[test]
    fn expected_records_cover_mail_signing_and_autoconfiguration() {
        let got: Vec<_> = records()
            .into_iter()
            .map(|r| {
                (
                    r.purpose,
                    r.record_type,
                    r.name,
                    r.value,
                    r.priority,
                    r.port,
                )
            })
            .collect();
        use DnsRecordType as T;
        use RecordPurpose as P;
        let s = |v: &str| v.to_string();
        assert_eq!(
            got,
            vec![
                (
                    P::Mx,
                    T::Mx,
                    s("example.com"),
                    s("mail.example"),
                    Some(10),
                    None
                ),
                (
                    P::Spf,
                    T::Txt,
                    s("example.com"),
                    s("v=spf1 include:_spf.mail.example -all"),
                    None,
                    None
                ),
                (
                    P::Dkim,
                    T::Txt,
                    s("postier-20261127._domainkey.example.com"),
                    s("v=DKIM1; k=rsa; p=MIIBIjANBgkq"),
                    None,
                    None
                ),
                (
                    P::Dmarc,
                    T::Txt,
                    s("_dmarc.example.com"),
                    s("v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com"),
                    None,
                    None
                ),
                (
                    P::Autoconfig,
                    T::Cname,
                    s("autoconfig.example.com"),
                    s("mail.example"),
                    None,
                    None
                ),
                (
                    P::Autodiscover,
                    T::Cname,
                    s("autodiscover.example.com"),
                    s("mail.example"),
                    None,
                    None
                ),
                (
                    P::ImapsSrv,
                    T::Srv,
                    s("_imaps._tcp.example.com"),
                    s("mail.example"),
                    Some(0),
                    Some(993)
                ),
                (
                    P::SubmissionSrv,
                    T::Srv,
                    s("_submission._tcp.example.com"),
                    s("mail.example"),
                    Some(0),
                    Some(587)
                ),
                (
                    P::SubmissionsSrv,
                    T::Srv,
                    s("_submissions._tcp.example.com"),
                    s("mail.example"),
                    Some(0),
                    Some(465)
                ),
                (
                    P::Pop3sSrv,
                    T::Srv,
                    s("_pop3s._tcp.example.com"),
                    s("mail.example"),
                    Some(10),
                    Some(995)
                ),
                (
                    P::AutodiscoverSrv,
                    T::Srv,
                    s("_autodiscover._tcp.example.com"),
                    s("mail.example"),
                    Some(0),
                    Some(443)
                ),
            ]
        );
    }

    #[test]
    fn expected_records_never_name_the_customer_domain_as_mail_host() {
        for record in records() {
            if record.record_type != DnsRecordType::Txt {
                assert_eq!(record.value, "mail.example", "{record:?}");
            }
            assert!(!record.value.contains("mail.example.com"), "{record:?}");
            assert!(!record.name.ends_with('.'), "{record:?}");
        }
    }

    #[test]
    fn records_serialise_with_snake_case_purposes_and_upper_case_types() {
        let json = serde_json::to_value(find(RecordPurpose::SubmissionsSrv)).unwrap();
        assert_eq!(json["purpose"], "submissions_srv");
        assert_eq!(json["record_type"], "SRV");
        assert_eq!(json["port"], 465);
        assert_eq!(json["weight"], 1);
        assert_eq!(json["priority"], 0);
    }
}
