#![allow(dead_code)]
//! A real DNS server for tests: one authoritative in-memory zone (hickory-server) on UDP and TCP
//! at 127.0.0.1, same port, chosen by the OS. Records are written as zone-file lines and parsed
//! like a real zone, so long TXT values travel as several ≤255-byte strings. Stops on drop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::{LowerName, Name, RecordSet, RrKey};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use postier::dns::{DnsRecord, DnsRecordType};
use tokio::net::{TcpListener, UdpSocket};

/// One resource record of the test zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    /// Fully qualified, with or without the trailing dot.
    pub name: String,
    /// `MX`, `TXT`, `CNAME`, `SRV`, `A`…
    pub record_type: String,
    /// The record data in zone-file syntax: `10 mail.example.`, `"v=spf1" " -all"`.
    pub rdata: String,
}

impl ZoneRecord {
    /// A record given in zone-file syntax (TXT strings quoted by the caller, as many as wanted).
    pub fn raw(name: &str, record_type: &str, rdata: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            record_type: record_type.into(),
            rdata: rdata.into(),
        }
    }

    /// A TXT record holding `text`, split into 255-byte strings as zone editors do.
    pub fn txt(name: &str, text: &str) -> Self {
        Self::txt_chunked(name, text, 255)
    }

    /// A TXT record holding `text` split into strings of at most `chunk` bytes.
    pub fn txt_chunked(name: &str, text: &str, chunk: usize) -> Self {
        let strings: Vec<String> = text
            .as_bytes()
            .chunks(chunk.clamp(1, 255))
            .map(|bytes| quote(&String::from_utf8_lossy(bytes)))
            .collect();
        Self::raw(name, "TXT", strings.join(" "))
    }

    /// Exactly what Postier asks for.
    pub fn published(record: &DnsRecord) -> Self {
        Self::with_value(record, &record.value)
    }

    /// `record` published with another value (a wrong SPF, a wrong MX host).
    pub fn with_value(record: &DnsRecord, value: &str) -> Self {
        let host = format!("{}.", value.trim_end_matches('.'));
        match record.record_type {
            DnsRecordType::Txt => Self::txt(&record.name, value),
            DnsRecordType::Cname => Self::raw(&record.name, "CNAME", host),
            DnsRecordType::Mx => Self::raw(
                &record.name,
                "MX",
                format!("{} {host}", record.priority.unwrap_or(10)),
            ),
            DnsRecordType::Srv => Self::raw(
                &record.name,
                "SRV",
                format!(
                    "{} {} {} {host}",
                    record.priority.unwrap_or(0),
                    record.weight.unwrap_or(1),
                    record.port.unwrap_or(0)
                ),
            ),
        }
    }

    fn zone_line(&self) -> String {
        let name = self.name.trim_end_matches('.');
        format!("{name}. IN {} {}", self.record_type, self.rdata)
    }
}

/// Every expected record, published as asked.
pub fn publish_all(records: &[DnsRecord]) -> Vec<ZoneRecord> {
    records.iter().map(ZoneRecord::published).collect()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running authoritative server for one zone.
pub struct TestDns {
    /// UDP and TCP listen here: give it to `DnsChecker::new(Some(addr), …)`.
    pub addr: SocketAddr,
    origin: Name,
    zone: Arc<InMemoryZoneHandler<TokioRuntimeProvider>>,
    serial: AtomicU32,
    server: Server<Catalog>,
}

impl TestDns {
    /// Serves `zone_origin` (`example.com`) with an SOA, an NS and `records`. Names outside the
    /// zone get REFUSED, names inside it without records NXDOMAIN or NODATA, like a real server.
    ///
    /// Panics when the zone does not parse (a test bug).
    pub async fn start(zone_origin: &str, records: &[ZoneRecord]) -> TestDns {
        let origin = origin(zone_origin);
        let mut zone = format!(
            "@ IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 60\n@ IN NS ns.{origin}\n"
        );
        zone.push_str(&zone_text(records));
        let rrsets = parse(&origin, &zone);
        let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
            origin.clone(),
            rrsets,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .expect("test zone");
        let zone = Arc::new(handler);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![zone.clone()]);

        let (udp, tcp) = bind_same_port().await;
        let addr = udp.local_addr().expect("UDP address");
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 32);
        TestDns {
            addr,
            origin,
            zone,
            serial: AtomicU32::new(1),
            server,
        }
    }

    /// Adds `records` to the running zone (to an existing name and type, they join its set).
    pub async fn publish(&self, records: &[ZoneRecord]) {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        for rrset in parse(&self.origin, &zone_text(records)).into_values() {
            for record in rrset.records_without_rrsigs() {
                assert!(
                    self.zone.upsert(record.clone(), serial).await,
                    "cannot publish {record}"
                );
            }
        }
    }

    /// Serves an empty zone: every expected record is missing.
    pub async fn empty(zone_origin: &str) -> TestDns {
        Self::start(zone_origin, &[]).await
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        // Dropping the server aborts its tasks too; cancelling first lets them end cleanly.
        self.server.shutdown_token().cancel();
    }
}

fn origin(zone_origin: &str) -> Name {
    Name::from_ascii(format!("{}.", zone_origin.trim_end_matches('.'))).expect("zone origin")
}

fn zone_text(records: &[ZoneRecord]) -> String {
    records
        .iter()
        .map(|record| format!("{}\n", record.zone_line()))
        .collect()
}

/// Parses zone-file text like a real server would load it. Panics on a test bug.
fn parse(origin: &Name, zone: &str) -> BTreeMap<RrKey, RecordSet> {
    let text = format!("$TTL 60\n{zone}");
    let (_, rrsets) = Parser::new(text.as_str(), None, Some(origin.clone()))
        .parse()
        .unwrap_or_else(|e| panic!("test zone does not parse: {e}\n{text}"));
    rrsets
}

/// A UDP socket and a TCP listener on one free port of 127.0.0.1 (the resolver uses one port
/// for both).
async fn bind_same_port() -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let addr = udp.local_addr().expect("UDP address");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// A "DNS server" that never answers: a UDP socket and a TCP listener on one port that nobody
/// reads (the kernel accepts TCP connections, no reply ever comes). Alive until dropped.
pub struct SilentDns {
    pub addr: SocketAddr,
    _udp: UdpSocket,
    _tcp: TcpListener,
}

impl SilentDns {
    pub async fn start() -> SilentDns {
        let (udp, tcp) = bind_same_port().await;
        let addr = udp.local_addr().expect("UDP address");
        SilentDns {
            addr,
            _udp: udp,
            _tcp: tcp,
        }
    }
}
