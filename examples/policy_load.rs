//! Load generator for the Postfix policy service: decisions per second and latency
//! percentiles at several numbers of concurrent connections, each connection playing one
//! Postfix smtpd process (RCPT per recipient, DATA, END-OF-MESSAGE, one message after the
//! other, one request in flight per connection as Postfix does).
//!
//! ```sh
//! # in-process: a fresh SQLite database in a temporary directory (or --database-url)
//! cargo run --release --example policy_load -- --connections 1,16 --seconds 10
//! # against a running `postier serve` with POSTIER_POLICY_LISTEN=127.0.0.1:10040; the
//! # addresses are seeded into its database first
//! cargo run --release --example policy_load -- --target 127.0.0.1:10040 \
//!     --database-url sqlite://./data/postier.db
//! ```
//!
//! The in-process server runs on its own runtime (2 worker threads), the clients on another:
//! both share this machine's cores, as Postfix and Postier would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use postier::config::Config;
use postier::entity::{address, mail_service, organization};
use postier::startup::Application;
use sea_orm::{EntityTrait, Set};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(about = "Load generator for Postier's Postfix policy service")]
struct Args {
    /// Concurrent connections of each run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    connections: Vec<usize>,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured seconds before each run (caches warm up).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Sending addresses (premium: 100 recipients per message, 1440 per 24 h each).
    #[arg(long, default_value_t = 2000)]
    addresses: usize,
    /// Recipients per message: each message is this many RCPT requests, DATA and
    /// END-OF-MESSAGE (one database write).
    #[arg(long, default_value_t = 3)]
    recipients: usize,
    /// Database to seed (and to serve from, in-process). Default: SQLite in a temporary dir.
    #[arg(long)]
    database_url: Option<String>,
    /// A running policy service to load instead of an in-process one.
    #[arg(long)]
    target: Option<SocketAddr>,
}

fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: args.database_url.clone(),
        policy_listen: Some("127.0.0.1:0".parse().unwrap()),
        // The load's made-up domains are never proven in DNS.
        domain_ownership: postier::config::DomainOwnership::Trust,
        workers: 1,
        log: std::env::var("POSTIER_LOG").unwrap_or_else(|_| "warn".into()),
        ..Config::default()
    };
    postier::telemetry::init(&config);
    println!(
        "database: {}",
        config
            .effective_database_url()
            .split('?')
            .next()
            .unwrap_or_default()
    );

    // The server (or only the seeding, with --target) on a runtime of its own.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_config = config.clone();
    let seed_count = args.addresses;
    let external = args.target;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let db = postier::db::connect(&server_config)
                .await
                .expect("database");
            postier::db::migrate(&db).await.expect("migrations");
            let addresses = seed(&db, seed_count).await;
            match external {
                Some(target) => {
                    ready_tx.send((target, addresses)).unwrap();
                    std::future::pending::<()>().await;
                }
                None => {
                    let app = Application::build(server_config)
                        .await
                        .expect("application");
                    let port = app.policy_port().expect("policy port");
                    ready_tx
                        .send((SocketAddr::from(([127, 0, 0, 1], port)), addresses))
                        .unwrap();
                    app.run_until_stopped().await.unwrap();
                }
            }
        });
    });
    let (target, addresses) = ready_rx.recv().expect("server ready");
    println!(
        "target: {target}; {} premium addresses; {} recipients per message = {} decisions, 1 count write",
        addresses.len(),
        args.recipients,
        args.recipients + 2
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for &connections in &args.connections {
            let warm = Duration::from_secs(args.warmup);
            if !warm.is_zero() {
                run(target, &addresses, connections, args.recipients, warm).await;
            }
            let report = run(
                target,
                &addresses,
                connections,
                args.recipients,
                Duration::from_secs(args.seconds),
            )
            .await;
            report.print(connections);
        }
    });
}

/// One organization, one premium mail service, `n` personal addresses.
async fn seed(db: &sea_orm::DatabaseConnection, n: usize) -> Vec<String> {
    let now = Utc::now();
    let tag = Uuid::new_v4().simple().to_string();
    let domain = format!("load-{}.test", &tag[..8]);
    let org_id = Uuid::now_v7();
    organization::Entity::insert(organization::ActiveModel {
        id: Set(org_id),
        name: Set("policy load".into()),
        personal: Set(false),
        personal_account_id: Set(None),
        created_at: Set(now),
    })
    .exec(db)
    .await
    .unwrap();
    let service_id = Uuid::now_v7();
    mail_service::Entity::insert(mail_service::ActiveModel {
        id: Set(service_id),
        organization_id: Set(org_id),
        pack: Set(postier::domain::Pack::Premium),
        domain: Set(domain.clone()),
        default_permissions: Set(Default::default()),
        revision: Set(0),
        address_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec(db)
    .await
    .unwrap();
    let addresses: Vec<String> = (0..n).map(|i| format!("user{i}@{domain}")).collect();
    let rows: Vec<address::Model> = addresses
        .iter()
        .map(|a| {
            let (local, _) = a.split_once('@').unwrap();
            address::Model {
                id: Uuid::now_v7(),
                mail_service_id: service_id,
                address: a.clone(),
                local_part: local.into(),
                domain: domain.clone(),
                kind: postier::domain::AddressKind::Personal,
                display_name: None,
                password_hash: None,
                unified: false,
                created_by: None,
                created_at: now,
                updated_at: now,
            }
        })
        .collect();
    postier::repo::addresses::insert_many(db, service_id, rows)
        .await
        .unwrap();
    addresses
}

#[derive(Default)]
struct Report {
    latencies_us: Vec<u32>,
    /// The END-OF-MESSAGE latencies alone (they include the count's database write).
    end_latencies_us: Vec<u32>,
    dunno: u64,
    reject: u64,
    defer: u64,
    messages: u64,
    elapsed: Duration,
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.latencies_us.extend(other.latencies_us);
        self.end_latencies_us.extend(other.end_latencies_us);
        self.dunno += other.dunno;
        self.reject += other.reject;
        self.defer += other.defer;
        self.messages += other.messages;
    }

    fn print(mut self, connections: usize) {
        self.latencies_us.sort_unstable();
        self.end_latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let pct = |p: f64| percentile(&self.latencies_us, p);
        let secs = self.elapsed.as_secs_f64();
        println!(
            "connections={connections:>3}  decisions={n:>8}  {:>9.0} decisions/s  {:>7.0} messages/s  \
             latency ms: p50={:.3} p99={:.3} p99.9={:.3} max={:.3}  actions: DUNNO={} REJECT={} DEFER={}",
            n as f64 / secs,
            self.messages as f64 / secs,
            pct(50.0),
            pct(99.0),
            pct(99.9),
            pct(100.0),
            self.dunno,
            self.reject,
            self.defer,
        );
        println!(
            "                 END-OF-MESSAGE alone (with the count's write): p50={:.3} p99={:.3} max={:.3} ms",
            percentile(&self.end_latencies_us, 50.0),
            percentile(&self.end_latencies_us, 99.0),
            percentile(&self.end_latencies_us, 100.0),
        );
    }
}

/// The `p`th percentile of sorted microseconds, in milliseconds.
fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    let n = sorted_us.len();
    if n == 0 {
        return 0.0;
    }
    let i = ((p / 100.0) * n as f64).ceil() as usize;
    f64::from(sorted_us[i.clamp(1, n) - 1]) / 1000.0
}

async fn run(
    target: SocketAddr,
    addresses: &[String],
    connections: usize,
    recipients: usize,
    duration: Duration,
) -> Report {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        // Each connection sends as its own share of the addresses (one user per session).
        let mine: Vec<String> = addresses
            .iter()
            .skip(c)
            .step_by(connections)
            .cloned()
            .collect();
        tasks.push(tokio::spawn(connection(
            target, c, mine, recipients, deadline,
        )));
    }
    let mut report = Report::default();
    for task in tasks {
        report.merge(task.await.unwrap());
    }
    report.elapsed = started.elapsed();
    report
}

async fn connection(
    target: SocketAddr,
    id: usize,
    addresses: Vec<String>,
    recipients: usize,
    deadline: Instant,
) -> Report {
    let stream = TcpStream::connect(target).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut report = Report {
        latencies_us: Vec::with_capacity(200_000),
        ..Report::default()
    };
    let mut request = String::with_capacity(1024);
    let mut line = String::with_capacity(128);
    let mut seq: u64 = 0;
    let pid = std::process::id();
    while Instant::now() < deadline {
        let login = &addresses[(seq as usize) % addresses.len()];
        let instance = format!("{pid:x}.{id:x}.{seq:x}.0");
        seq += 1;
        let mut accepted = 0;
        for r in 0..recipients {
            let recipient = format!("rcpt{r}@elsewhere.test");
            build(&mut request, "RCPT", login, &recipient, 0, &instance);
            if ask(&mut write, &mut reader, &request, &mut line, &mut report).await {
                accepted += 1;
            }
        }
        if accepted == 0 {
            continue;
        }
        build(&mut request, "DATA", login, "", accepted, &instance);
        if !ask(&mut write, &mut reader, &request, &mut line, &mut report).await {
            continue;
        }
        build(
            &mut request,
            "END-OF-MESSAGE",
            login,
            "",
            accepted,
            &instance,
        );
        ask(&mut write, &mut reader, &request, &mut line, &mut report).await;
        if let Some(&us) = report.latencies_us.last() {
            report.end_latencies_us.push(us);
        }
        report.messages += 1;
    }
    report
}

/// Sends one request and reads its reply; true when the answer is DUNNO.
async fn ask(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    request: &str,
    line: &mut String,
    report: &mut Report,
) -> bool {
    let started = Instant::now();
    write.write_all(request.as_bytes()).await.expect("write");
    line.clear();
    reader.read_line(line).await.expect("read");
    let action = line.trim_end().to_string();
    line.clear();
    reader.read_line(line).await.expect("read");
    let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
    report.latencies_us.push(us);
    match action.strip_prefix("action=") {
        Some("DUNNO") => {
            report.dunno += 1;
            true
        }
        Some(a) if a.starts_with("REJECT") => {
            report.reject += 1;
            false
        }
        Some(_) => {
            report.defer += 1;
            false
        }
        None => panic!("not a policy reply: {action:?}"),
    }
}

/// A request with every attribute Postfix 3.7 sends.
fn build(
    out: &mut String,
    stage: &str,
    login: &str,
    recipient: &str,
    count: usize,
    instance: &str,
) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(
        out,
        "request=smtpd_access_policy\nprotocol_state={stage}\nprotocol_name=ESMTP\n\
         client_address=127.0.0.1\nclient_name=localhost\nreverse_client_name=localhost\n\
         client_port=38736\nserver_address=127.0.0.1\nserver_port=10587\nhelo_name=load.test\n\
         sender={login}\nrecipient={recipient}\nrecipient_count={count}\nqueue_id=96B23A1A00C\n\
         instance={instance}\nsize=2048\netrn_domain=\nstress=\nsasl_method=PLAIN\n\
         sasl_username={login}\nsasl_sender=\nccert_subject=\nccert_issuer=\n\
         ccert_fingerprint=\nccert_pubkey_fingerprint=\nencryption_protocol=TLSv1.3\n\
         encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\npolicy_context=\n\n"
    );
}
