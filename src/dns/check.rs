//! The live check: every expected record looked up at once through a fresh resolver, bounded
//! by one deadline, and compared the way receivers read records.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::ToSchema;

use super::records::normalize_host;
use super::{DnsRecord, DnsRecordType, RecordPurpose};
use crate::config::Config;

/// What live DNS says about an expected record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Published as expected.
    Ok,
    /// Not published (or DNS did not answer: see `error`).
    Missing,
    /// Published with another value.
    Mismatch,
}

/// An expected record and what live DNS answered for its name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckedRecord {
    #[serde(flatten)]
    pub record: DnsRecord,
    pub status: CheckStatus,
    /// Every answer for the record's name and type, normalised: host names lower-case without
    /// the trailing dot, MX as `preference host`, SRV as `priority weight port target`, TXT
    /// strings joined.
    pub found: Vec<String>,
    /// Why DNS gave no answer (timeout, SERVFAIL…); the status is then `missing`.
    pub error: Option<String>,
}

/// Checks expected records against live DNS. Holds no resolver: each check builds a fresh one
/// so nothing is cached between checks (a customer fixing a record sees it at once, as far as
/// the upstream resolver allows).
#[derive(Debug, Clone)]
pub struct DnsChecker {
    server: Option<SocketAddr>,
    timeout: Duration,
}

/// An answer, in the shape the comparison needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Mx {
        preference: u16,
        host: String,
    },
    Txt(String),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
}

impl Answer {
    fn display(&self) -> String {
        match self {
            Self::Mx { preference, host } => format!("{preference} {host}"),
            Self::Txt(text) => text.clone(),
            Self::Cname(host) => host.clone(),
            Self::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("{priority} {weight} {port} {target}"),
        }
    }
}

type Answers = Result<Vec<Answer>, String>;

impl DnsChecker {
    /// Queries `server` (`ip:port`, UDP then TCP), or the system's resolvers (resolv.conf) when
    /// `None`; a whole check takes at most `timeout`.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Self {
        Self { server, timeout }
    }

    /// From `POSTIER_DNS_SERVER` and `POSTIER_DNS_TIMEOUT_SECS`.
    pub fn from_config(config: &Config) -> Self {
        Self::new(
            config.dns_server,
            Duration::from_secs(config.dns_timeout_secs),
        )
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Looks every record up at once and compares; returns within the timeout, one result per
    /// record in the same order. Lookups still unanswered at the deadline are `missing` with an
    /// error.
    #[tracing::instrument(name = "dns_check", skip_all, fields(records = records.len()))]
    pub async fn check(&self, records: &[DnsRecord]) -> Vec<CheckedRecord> {
        let deadline = Instant::now() + self.timeout;
        let resolver = match self.resolver() {
            Ok(resolver) => resolver,
            Err(error) => {
                tracing::warn!(%error, "no DNS resolver for the check");
                return records
                    .iter()
                    .map(|r| evaluate(r, &Err(error.clone())))
                    .collect();
            }
        };

        let mut queries: Vec<(String, DnsRecordType)> = Vec::new();
        for record in records {
            let key = (normalize_host(&record.name), record.record_type);
            if !queries.contains(&key) {
                queries.push(key);
            }
        }
        let lookups = queries.iter().map(|(name, record_type)| {
            let resolver = &resolver;
            async move {
                match tokio::time::timeout_at(deadline, lookup(resolver, name, *record_type)).await
                {
                    Ok(answers) => answers,
                    Err(_) => Err(format!("no answer from DNS within {:?}", self.timeout)),
                }
            }
        });
        let answers: HashMap<(String, DnsRecordType), Answers> = queries
            .iter()
            .cloned()
            .zip(futures_util::future::join_all(lookups).await)
            .collect();

        records
            .iter()
            .map(|record| {
                let key = (normalize_host(&record.name), record.record_type);
                match answers.get(&key) {
                    Some(answers) => evaluate(record, answers),
                    None => evaluate(record, &Err("not looked up".into())),
                }
            })
            .collect()
    }

    /// The addresses (A and AAAA) of `name`, through this checker's resolver; webhook
    /// targets are resolved here when `POSTIER_DNS_SERVER` is set.
    pub async fn lookup_ip(&self, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        let resolver = self.resolver()?;
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match tokio::time::timeout(self.timeout, resolver.lookup_ip(fqdn.as_str())).await {
            Ok(Ok(found)) => Ok(found.iter().collect()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in time".into()),
        }
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let (config, mut options) = match self.server {
            Some(server) => {
                let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut name_server.connections {
                    connection.port = server.port();
                }
                let config = ResolverConfig::from_parts(None, vec![], vec![name_server]);
                (config, ResolverOpts::default())
            }
            None => hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
        };
        // Two tries per query inside the budget, so one lost UDP packet is not fatal.
        options.timeout = (self.timeout / 2).max(Duration::from_millis(200));
        options.attempts = 2;
        options.use_hosts_file = ResolveHosts::Never;
        Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| format!("cannot build the DNS resolver: {e}"))
    }
}

/// Every answer of `record_type` at `name`; no such name or no such record is an empty list,
/// anything else (timeout, SERVFAIL, refusal) an error.
async fn lookup(resolver: &TokioResolver, name: &str, record_type: DnsRecordType) -> Answers {
    let fqdn = format!("{name}.");
    let lookup = match resolver.lookup(fqdn.as_str(), record_type.wire()).await {
        Ok(lookup) => lookup,
        Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
        Err(e) => {
            tracing::debug!(name, ?record_type, error = %e, "DNS lookup failed");
            return Err(e.to_string());
        }
    };
    // A name may be a CNAME to the records (a delegated `_dmarc`, say): the chain's CNAMEs
    // are in the answer too, so keep only the type asked for.
    let answers = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::MX(mx) if record_type == DnsRecordType::Mx => Some(Answer::Mx {
                preference: mx.preference,
                host: normalize_host(&mx.exchange.to_ascii()),
            }),
            RData::TXT(txt) if record_type == DnsRecordType::Txt => Some(Answer::Txt(
                // One record's strings form one text (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s))
                    .collect(),
            )),
            RData::CNAME(cname) if record_type == DnsRecordType::Cname => {
                Some(Answer::Cname(normalize_host(&cname.0.to_ascii())))
            }
            RData::SRV(srv) if record_type == DnsRecordType::Srv => Some(Answer::Srv {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target: normalize_host(&srv.target.to_ascii()),
            }),
            _ => None,
        })
        .collect();
    Ok(answers)
}

/// `ok` when DNS holds records of the expected kind and all of them match; `missing` when it
/// holds none (or did not answer); `mismatch` otherwise. "All" matters: two SPF or DMARC
/// records break both, and a second MX sends part of the mail elsewhere.
fn evaluate(record: &DnsRecord, answers: &Answers) -> CheckedRecord {
    let (status, found, error) = match answers {
        Err(error) => (CheckStatus::Missing, Vec::new(), Some(error.clone())),
        Ok(answers) => {
            let relevant: Vec<&Answer> = answers
                .iter()
                .filter(|answer| is_of_kind(record.purpose, answer))
                .collect();
            let status = if relevant.is_empty() {
                CheckStatus::Missing
            } else if relevant.iter().all(|answer| matches(record, answer)) {
                CheckStatus::Ok
            } else if record.purpose == RecordPurpose::Ownership
                && relevant.iter().any(|answer| matches(record, answer))
            {
                // Only whoever controls the zone can publish this claim's token; other
                // tokens beside it (an older claim of the same owner) do no harm.
                CheckStatus::Ok
            } else {
                CheckStatus::Mismatch
            };
            (status, answers.iter().map(Answer::display).collect(), None)
        }
    };
    CheckedRecord {
        record: record.clone(),
        status,
        found,
        error,
    }
}

/// Whether an answer is the kind of record `purpose` asks for: at a TXT name only the SPF,
/// DKIM or DMARC record counts (a domain's apex holds site-verification strings too).
fn is_of_kind(purpose: RecordPurpose, answer: &Answer) -> bool {
    match (purpose, answer) {
        (RecordPurpose::Ownership, Answer::Txt(text)) => {
            text.trim().starts_with(super::records::OWNERSHIP_PREFIX)
        }
        (RecordPurpose::Spf, Answer::Txt(text)) => is_spf(text),
        (RecordPurpose::Dkim, Answer::Txt(text)) => is_dkim(text),
        (RecordPurpose::Dmarc, Answer::Txt(text)) => is_dmarc(text),
        (RecordPurpose::Mx, Answer::Mx { .. }) => true,
        (RecordPurpose::Autoconfig | RecordPurpose::Autodiscover, Answer::Cname(_)) => true,
        (
            RecordPurpose::ImapsSrv
            | RecordPurpose::SubmissionSrv
            | RecordPurpose::SubmissionsSrv
            | RecordPurpose::Pop3sSrv
            | RecordPurpose::AutodiscoverSrv,
            Answer::Srv { .. },
        ) => true,
        _ => false,
    }
}

fn matches(record: &DnsRecord, answer: &Answer) -> bool {
    let expected_host = normalize_host(&record.value);
    match (record.purpose, answer) {
        (RecordPurpose::Ownership, Answer::Txt(text)) => text.trim() == record.value,
        (RecordPurpose::Spf, Answer::Txt(text)) => {
            normalize_spf(text) == normalize_spf(&record.value)
        }
        (RecordPurpose::Dkim, Answer::Txt(text)) => {
            let found = dkim_tags(text);
            found.is_some() && found == dkim_tags(&record.value)
        }
        (RecordPurpose::Dmarc, Answer::Txt(text)) => {
            let found = dmarc_tags(text);
            found.is_some() && found == dmarc_tags(&record.value)
        }
        (_, Answer::Mx { preference, host }) => {
            *host == expected_host && Some(*preference) == record.priority
        }
        (_, Answer::Cname(host)) => *host == expected_host,
        // The weight only matters between several targets: not compared.
        (
            _,
            Answer::Srv {
                priority,
                port,
                target,
                ..
            },
        ) => {
            *target == expected_host
                && Some(*priority) == record.priority
                && Some(*port) == record.port
        }
        _ => false,
    }
}

/// `v=spf1` then a space or the end (RFC 7208 §4.5), case-insensitive.
fn is_spf(text: &str) -> bool {
    let text = text.trim().as_bytes();
    text.len() >= 6
        && text[..6].eq_ignore_ascii_case(b"v=spf1")
        && text.get(6).is_none_or(|c| c.is_ascii_whitespace())
}

/// SPF terms in order, single-spaced, lower-case (mechanisms are case-insensitive).
fn normalize_spf(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A DKIM key record: a tag list whose `v=`, if any, is `DKIM1` (the tag is optional, RFC 6376
/// §3.6.1). At `<selector>._domainkey` nothing else is expected.
fn is_dkim(text: &str) -> bool {
    tag_list(text).is_some_and(|tags| {
        tags.iter()
            .filter(|(name, _)| name == "v")
            .all(|(_, value)| value == "DKIM1")
    })
}

/// `v=DMARC1` first (RFC 7489 §6.3), case-insensitive.
fn is_dmarc(text: &str) -> bool {
    matches!(tag_list(text).as_deref(), Some([(name, value), ..])
        if name == "v" && value.eq_ignore_ascii_case("DMARC1"))
}

/// DKIM tags in any order with the RFC's defaults filled in (`v=DKIM1`, `k=rsa`); values keep
/// their case (the key is base64).
fn dkim_tags(text: &str) -> Option<BTreeMap<String, String>> {
    let mut tags = unique_tags(tag_list(text)?)?;
    tags.entry("v".into()).or_insert_with(|| "DKIM1".into());
    tags.entry("k".into()).or_insert_with(|| "rsa".into());
    Some(tags)
}

/// DMARC tags in any order, lower-case (policies, and in practice report addresses, are
/// case-insensitive).
fn dmarc_tags(text: &str) -> Option<BTreeMap<String, String>> {
    unique_tags(tag_list(&text.to_ascii_lowercase())?)
}

fn unique_tags(tags: Vec<(String, String)>) -> Option<BTreeMap<String, String>> {
    let count = tags.len();
    let map: BTreeMap<String, String> = tags.into_iter().collect();
    (map.len() == count).then_some(map)
}

/// A `tag=value; tag=value` list (DKIM and DMARC share the syntax) with all whitespace dropped:
/// it may surround `;` and `=` and fold inside values (a long `p=`). `None` when malformed.
fn tag_list(text: &str) -> Option<Vec<(String, String)>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact
        .split(';')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=')?;
            (!name.is_empty()).then(|| (name.to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::expected_records;

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

    fn txt(text: &str) -> Answer {
        Answer::Txt(text.into())
    }

    fn status(purpose: RecordPurpose, answers: Vec<Answer>) -> CheckStatus {
        evaluate(&find(purpose), &Ok(answers)).status
    }

    #[test]
    fn checked_records_serialise_flat_with_a_snake_case_status() {
        let checked = evaluate(&find(RecordPurpose::Mx), &Ok(vec![]));
        let json = serde_json::to_value(checked).unwrap();
        assert_eq!(json["status"], "missing");
        assert_eq!(json["name"], "example.com");
        assert_eq!(json["record_type"], "MX");
    }

    #[test]
    fn spf_compares_terms_case_and_spacing_insensitively() {
        use RecordPurpose::Spf;
        let ok = "  V=SPF1   include:_SPF.mail.example   -all ";
        assert_eq!(status(Spf, vec![txt(ok)]), CheckStatus::Ok);
        assert_eq!(
            status(Spf, vec![txt("v=spf1 include:_spf.mail.example ~all")]),
            CheckStatus::Mismatch
        );
        // Other TXT records at the apex do not count…
        assert_eq!(
            status(Spf, vec![txt("google-site-verification=abc"), txt(ok)]),
            CheckStatus::Ok
        );
        assert_eq!(
            status(Spf, vec![txt("google-site-verification=abc")]),
            CheckStatus::Missing
        );
        assert_eq!(status(Spf, vec![txt("v=spf10 -all")]), CheckStatus::Missing);
        // …but a second SPF record breaks SPF.
        assert_eq!(
            status(Spf, vec![txt(ok), txt("v=spf1 mx -all")]),
            CheckStatus::Mismatch
        );
    }

    #[test]
    fn dkim_ignores_tag_order_whitespace_and_defaults() {
        use RecordPurpose::Dkim;
        for text in [
            "v=DKIM1; k=rsa; p=MIIBIjANBgkq",
            "v=DKIM1;k=rsa;p=MIIBIjANBgkq;",
            "v = DKIM1 ;  p=MIIB IjAN Bgkq ; k=rsa",
            "k=rsa; p=MIIBIjANBgkq; v=DKIM1",
            "p=MIIBIjANBgkq",
        ] {
            assert_eq!(status(Dkim, vec![txt(text)]), CheckStatus::Ok, "{text}");
        }
        assert_eq!(
            status(Dkim, vec![txt("v=DKIM1; k=rsa; p=mIIBIjANBgkq")]),
            CheckStatus::Mismatch
        );
        assert_eq!(
            status(Dkim, vec![txt("v=DKIM1; k=rsa; p=MIIBIjANBgkq; t=y")]),
            CheckStatus::Mismatch
        );
        assert_eq!(status(Dkim, vec![txt("v=spf1 -all")]), CheckStatus::Missing);
    }

    #[test]
    fn dmarc_ignores_tag_order_case_and_whitespace() {
        use RecordPurpose::Dmarc;
        assert_eq!(
            status(
                Dmarc,
                vec![txt(
                    "v=DMARC1;rua=mailto:Postmaster@example.com ;  p = quarantine"
                )]
            ),
            CheckStatus::Ok
        );
        assert_eq!(
            status(
                Dmarc,
                vec![txt("v=DMARC1; p=none; rua=mailto:postmaster@example.com")]
            ),
            CheckStatus::Mismatch
        );
        assert_eq!(
            status(Dmarc, vec![txt("p=quarantine; v=DMARC1")]),
            CheckStatus::Missing
        );
    }

    #[test]
    fn hosts_compare_without_case_or_trailing_dot_and_with_priority_and_port() {
        let mx = |preference, host: &str| Answer::Mx {
            preference,
            host: host.into(),
        };
        let srv = |priority, port, target: &str| Answer::Srv {
            priority,
            weight: 7,
            port,
            target: target.into(),
        };
        assert_eq!(normalize_host("MAIL.Example."), "mail.example");
        use RecordPurpose::*;
        assert_eq!(status(Mx, vec![mx(10, "mail.example")]), CheckStatus::Ok);
        assert_eq!(
            status(Mx, vec![mx(20, "mail.example")]),
            CheckStatus::Mismatch
        );
        assert_eq!(
            status(Mx, vec![mx(10, "mail.example"), mx(20, "backup.other")]),
            CheckStatus::Mismatch
        );
        assert_eq!(
            status(Autoconfig, vec![Answer::Cname("mail.example".into())]),
            CheckStatus::Ok
        );
        assert_eq!(
            status(Autodiscover, vec![Answer::Cname("mail.example.com".into())]),
            CheckStatus::Mismatch
        );
        assert_eq!(
            status(ImapsSrv, vec![srv(0, 993, "mail.example")]),
            CheckStatus::Ok
        );
        assert_eq!(
            status(ImapsSrv, vec![srv(0, 143, "mail.example")]),
            CheckStatus::Mismatch
        );
        assert_eq!(status(SubmissionSrv, vec![]), CheckStatus::Missing);
    }

    #[test]
    fn a_failed_lookup_is_missing_with_its_error() {
        let checked = evaluate(&find(RecordPurpose::Mx), &Err("request timed out".into()));
        assert_eq!(checked.status, CheckStatus::Missing);
        assert_eq!(checked.error.as_deref(), Some("request timed out"));
        assert!(checked.found.is_empty());
    }

    #[test]
    fn found_values_are_normalised_for_display() {
        let answers = vec![
            Answer::Mx {
                preference: 10,
                host: "mail.example".into(),
            },
            Answer::Srv {
                priority: 0,
                weight: 1,
                port: 993,
                target: "mail.example".into(),
            },
        ];
        let checked = evaluate(&find(RecordPurpose::Mx), &Ok(answers));
        assert_eq!(
            checked.found,
            vec!["10 mail.example", "0 1 993 mail.example"]
        );
    }
}
