//! The live DNS check against a real authoritative server (`dns_server::TestDns`).

use std::time::{Duration, Instant};

use chrono::Utc;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::Resolver;
use postier::dns::{
    expected_records, generate_dkim_key, CheckStatus, CheckedRecord, DnsChecker, DnsRecord,
    RecordPurpose,
};

use crate::dns_server::{publish_all, SilentDns, TestDns, ZoneRecord};

const DOMAIN: &str = "example.com";
const MAIL_HOST: &str = "mail.example";

async fn expected() -> Vec<DnsRecord> {
    let key = generate_dkim_key(Utc::now()).await.expect("DKIM key");
    expected_records(DOMAIN, MAIL_HOST, &key.selector, &key.public_key_b64)
}

fn checker(dns: &TestDns) -> DnsChecker {
    DnsChecker::new(Some(dns.addr), Duration::from_secs(5))
}

fn of(checked: &[CheckedRecord], purpose: RecordPurpose) -> &CheckedRecord {
    checked
        .iter()
        .find(|c| c.record.purpose == purpose)
        .expect("checked record")
}

fn record(records: &[DnsRecord], purpose: RecordPurpose) -> DnsRecord {
    records
        .iter()
        .find(|r| r.purpose == purpose)
        .cloned()
        .expect("expected record")
}

/// How many strings the one TXT record at `name` holds, asked of `dns` directly over TCP (the
/// checker's queries go over UDP: this proves the server's TCP side too).
async fn txt_strings(dns: &TestDns, name: &str) -> usize {
    let mut server = NameServerConfig::tcp(dns.addr.ip());
    server.connections[0].port = dns.addr.port();
    let resolver = Resolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], vec![server]),
        TokioRuntimeProvider::default(),
    )
    .build()
    .unwrap();
    let lookup = resolver
        .lookup(format!("{name}."), RecordType::TXT)
        .await
        .unwrap();
    match lookup.answers() {
        [record] => match &record.data {
            RData::TXT(txt) => txt.txt_data.len(),
            other => panic!("not a TXT record: {other:?}"),
        },
        answers => panic!("expected one TXT record, got {answers:?}"),
    }
}

#[tokio::test]
async fn every_record_is_ok_when_all_are_published() {
    let records = expected().await;
    let mut zone = publish_all(&records);
    // Real apexes hold more TXT records: only the SPF one counts.
    zone.push(ZoneRecord::txt(DOMAIN, "google-site-verification=abc123"));
    let dns = TestDns::start(DOMAIN, &zone).await;

    let checked = checker(&dns).check(&records).await;

    assert_eq!(checked.len(), records.len());
    for (c, r) in checked.iter().zip(&records) {
        assert_eq!(&c.record, r, "results keep the order of the records");
        assert_eq!(c.status, CheckStatus::Ok, "{c:#?}");
        assert_eq!(c.error, None, "{c:#?}");
    }
    assert_eq!(of(&checked, RecordPurpose::Mx).found, ["10 mail.example"]);
    assert_eq!(
        of(&checked, RecordPurpose::ImapsSrv).found,
        ["0 1 993 mail.example"]
    );
    assert_eq!(
        of(&checked, RecordPurpose::Autoconfig).found,
        ["mail.example"]
    );
    let mut spf_found = of(&checked, RecordPurpose::Spf).found.clone();
    spf_found.sort();
    assert_eq!(
        spf_found,
        [
            "google-site-verification=abc123",
            "v=spf1 include:_spf.mail.example -all"
        ]
    );
}

#[tokio::test]
async fn a_wrong_value_is_a_mismatch_showing_what_dns_holds() {
    let records = expected().await;
    let mut zone: Vec<ZoneRecord> = records
        .iter()
        .filter(|r| !matches!(r.purpose, RecordPurpose::Spf | RecordPurpose::Mx))
        .map(ZoneRecord::published)
        .collect();
    let spf = record(&records, RecordPurpose::Spf);
    let mx = record(&records, RecordPurpose::Mx);
    zone.push(ZoneRecord::with_value(
        &spf,
        "v=spf1 include:_spf.mail.example ~all",
    ));
    zone.push(ZoneRecord::with_value(&mx, "MX.Elsewhere.test."));
    let dns = TestDns::start(DOMAIN, &zone).await;

    let checked = checker(&dns).check(&records).await;

    let spf = of(&checked, RecordPurpose::Spf);
    assert_eq!(spf.status, CheckStatus::Mismatch);
    assert_eq!(spf.found, ["v=spf1 include:_spf.mail.example ~all"]);
    let mx = of(&checked, RecordPurpose::Mx);
    assert_eq!(mx.status, CheckStatus::Mismatch);
    assert_eq!(mx.found, ["10 mx.elsewhere.test"]);
    for c in &checked {
        if !matches!(c.record.purpose, RecordPurpose::Spf | RecordPurpose::Mx) {
            assert_eq!(c.status, CheckStatus::Ok, "{c:#?}");
        }
    }
}

#[tokio::test]
async fn every_record_is_missing_when_nothing_is_published() {
    let records = expected().await;
    let dns = TestDns::empty(DOMAIN).await;

    let checked = checker(&dns).check(&records).await;

    for c in &checked {
        assert_eq!(c.status, CheckStatus::Missing, "{c:#?}");
        assert!(c.found.is_empty(), "{c:#?}");
        assert_eq!(c.error, None, "NXDOMAIN and NODATA are answers: {c:#?}");
    }
}

#[tokio::test]
async fn a_dkim_key_split_into_several_strings_is_ok() {
    let records = expected().await;
    let dkim = record(&records, RecordPurpose::Dkim);
    assert!(
        dkim.value.len() > 255,
        "a 2048-bit key needs several strings"
    );

    for chunk in [255, 100, 7] {
        let dns = TestDns::start(
            DOMAIN,
            &[ZoneRecord::txt_chunked(&dkim.name, &dkim.value, chunk)],
        )
        .await;
        assert_eq!(
            txt_strings(&dns, &dkim.name).await,
            dkim.value.len().div_ceil(chunk),
            "the server answers with one string per chunk"
        );
        let checked = checker(&dns).check(std::slice::from_ref(&dkim)).await;
        assert_eq!(
            checked[0].status,
            CheckStatus::Ok,
            "chunk {chunk}: {checked:#?}"
        );
        assert_eq!(checked[0].found, std::slice::from_ref(&dkim.value));
    }

    // Spaces around `;` and tags in another order, as some zone editors write it.
    let b64 = dkim.value.rsplit("p=").next().expect("p= tag").to_string();
    let reordered = format!("v=DKIM1 ;  p={} {} ; k=rsa", &b64[..200], &b64[200..]);
    let dns = TestDns::start(DOMAIN, &[ZoneRecord::txt(&dkim.name, &reordered)]).await;
    let checked = checker(&dns).check(std::slice::from_ref(&dkim)).await;
    assert_eq!(checked[0].status, CheckStatus::Ok, "{checked:#?}");
}

#[tokio::test]
async fn each_check_sees_live_dns_with_nothing_cached() {
    let records = expected().await;
    let dns = TestDns::empty(DOMAIN).await;
    let checker = checker(&dns);

    let before = checker.check(&records).await;
    assert!(before.iter().all(|c| c.status == CheckStatus::Missing));

    dns.publish(&publish_all(&records)).await;
    let after = checker.check(&records).await;
    for c in &after {
        assert_eq!(c.status, CheckStatus::Ok, "{c:#?}");
    }
}

#[tokio::test]
async fn a_dns_server_that_never_answers_gives_missing_with_an_error_within_the_timeout() {
    let records = expected().await;
    let silent = SilentDns::start().await;
    let timeout = Duration::from_secs(1);
    let checker = DnsChecker::new(Some(silent.addr), timeout);

    let started = Instant::now();
    let checked = checker.check(&records).await;
    let elapsed = started.elapsed();

    assert!(
        elapsed < timeout + Duration::from_millis(500),
        "took {elapsed:?}"
    );
    assert_eq!(checked.len(), records.len());
    for c in &checked {
        assert_eq!(c.status, CheckStatus::Missing, "{c:#?}");
        assert!(c.found.is_empty());
        assert!(c.error.is_some(), "{c:#?}");
    }
}
