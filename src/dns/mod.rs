//! DNS for customer domains: the DKIM key of a domain (`dkim`), the records a domain must
//! publish: MX, SPF, DKIM, DMARC, autoconfiguration (`records`), and a time-bounded check of
//! them against live DNS (`check`). Knows nothing of HTTP or the database: callers store the
//! key and render what this returns.

mod check;
mod dkim;
mod records;

pub use check::{CheckStatus, CheckedRecord, DnsChecker};
pub use dkim::{dkim_selector, generate_dkim_key, DkimKey, DKIM_KEY_BITS};
pub use records::{expected_records, ownership_record, DnsRecord, DnsRecordType, RecordPurpose};

/// What can fail here. A live check never fails: unanswered lookups are reported per record.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DKIM key generation failed: {0}")]
    KeyGeneration(String),
    #[error("DKIM key generation task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("DKIM key generation is busy: waited {0} seconds for a turn")]
    Busy(u64),
}
