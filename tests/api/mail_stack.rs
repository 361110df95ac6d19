//! Harness of the mail-stack test: Postier as a real process on a fresh PostgreSQL database
//! with its policy service, the read-only role, `postier mailstack-config`, Dovecot and
//! Postfix as plain daemons on loopback ports, and the clients that talk to them (small IMAP
//! and POP3 clients, SMTP submission through lettre and a raw client for OAUTHBEARER).
//! [`MailStack`]'s `Drop` stops everything and removes the stack's folder, even when the test
//! panics.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sea_orm::{ConnectionTrait, Database};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use crate::helpers::{postgres_url, PgDatabase};

pub const MAIL_HOST: &str = "mail.mailstack.test";
pub const FREE_DOMAIN: &str = "free.mailstack.test";

/// Whether the stack can run here. `Err` says why not; the caller skips, or fails when
/// `POSTIER_TEST_MAILSTACK=1` (CI) demands the test.
fn prerequisites() -> Result<(), String> {
    for binary in [
        "/usr/sbin/postfix",
        "/usr/sbin/dovecot",
        "/usr/lib/dovecot/pop3",
        "/usr/bin/openssl",
    ] {
        if !Path::new(binary).exists() {
            return Err(format!(
                "{binary} is missing (apt-get install postfix postfix-pgsql dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-pgsql)"
            ));
        }
    }
    if postgres_url().is_none() {
        return Err("POSTIER_TEST_POSTGRES_URL is not set".into());
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|uids| uids.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Err("the daemons need root".into());
    }
    Ok(())
}

/// Ports the test stack listens on, all on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct StackPorts {
    pub api: u16,
    pub policy: u16,
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
}

/// Nine ports no one listens on, for the daemons to bind after this returns. Ports the
/// kernel hands out (to `bind(0)` and to every outgoing connection's source, the
/// `ip_local_port_range`, 32768–60999 by default) can be taken by anything in between: a
/// port released by `bind(0)` once went to a connection of a parallel test before Dovecot
/// bound it ("Address already in use"). These come from below that range, where only
/// something choosing that very port could take it; a process-wide cursor from a random start
/// keeps parallel stacks of this process apart.
fn free_ports() -> StackPorts {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static CURSOR: AtomicU16 = AtomicU16::new(0);
    let _ = CURSOR.compare_exchange(
        0,
        1 + rand::random::<u16>() % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let mut ports = Vec::with_capacity(9);
    while ports.len() < 9 {
        let port = FIRST + CURSOR.fetch_add(1, Ordering::Relaxed) % SPAN;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    StackPorts {
        api: ports[0],
        policy: ports[1],
        smtp: ports[2],
        submission: ports[3],
        submissions: ports[4],
        imap: ports[5],
        imaps: ports[6],
        pop3: ports[7],
        pop3s: ports[8],
    }
}

/// The running stack. Dropping it stops the daemons and Postier, drops the database and the
/// role, and removes the folder.
pub struct MailStack {
    pub dir: PathBuf,
    pub ports: StackPorts,
    pub api: String,
    /// The read-only role the daemons use.
    pub role: String,
    /// The role that records device passwords' last use.
    pub usage_role: String,
    postier: Option<Child>,
    pg: Option<PgDatabase>,
    daemons_started: bool,
    /// `--outbound` and further options of `mailstack-config`.
    outbound: String,
    options: Vec<String>,
}

impl MailStack {
    /// Starts everything, or returns `None` (after saying why) when the machine cannot run
    /// it and `POSTIER_TEST_MAILSTACK` does not demand it.
    pub async fn start() -> Option<MailStack> {
        MailStack::start_with("none", &[]).await
    }

    /// [`MailStack::start`] with another `--outbound` and more `mailstack-config` options.
    pub async fn start_with(outbound: &str, options: &[&str]) -> Option<MailStack> {
        if let Err(why) = prerequisites() {
            if std::env::var("POSTIER_TEST_MAILSTACK").as_deref() == Ok("1") {
                panic!("POSTIER_TEST_MAILSTACK=1 but the mail stack cannot run: {why}");
            }
            eprintln!("skipped: {why} (set POSTIER_TEST_MAILSTACK=1 to make this a failure)");
            return None;
        }
        ensure_vmail_user();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        // Short (unix socket paths), in a folder every daemon user can traverse.
        let dir = PathBuf::from(format!("/var/tmp/pms-{}", &suffix[..8]));
        std::fs::create_dir_all(dir.join("log")).unwrap();
        let ports = free_ports();
        let role = format!("postier_mail_{}", &suffix[..8]);
        let mut stack = MailStack {
            dir,
            ports,
            api: format!("http://127.0.0.1:{}", ports.api),
            usage_role: format!("{role}_usage"),
            role,
            postier: None,
            pg: Some(PgDatabase::create().await),
            daemons_started: false,
            outbound: outbound.to_string(),
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        stack.start_postier().await;
        stack.create_role().await;
        stack.generate();
        stack.start_daemons().await;
        Some(stack)
    }

    fn pg(&self) -> &PgDatabase {
        self.pg.as_ref().unwrap()
    }

    /// The role's URL: what the daemons' configuration is generated from.
    fn role_url(&self) -> String {
        self.url_of(&self.role, "mailstack-test-pw")
    }

    /// The usage role's URL (`--usage-database-url`).
    fn usage_role_url(&self) -> String {
        self.url_of(&self.usage_role, "mailstack-usage-pw")
    }

    fn url_of(&self, role: &str, password: &str) -> String {
        let mut url = url::Url::parse(&self.pg().url).unwrap();
        url.set_username(role).unwrap();
        url.set_password(Some(password)).unwrap();
        url.to_string()
    }

    async fn start_postier(&mut self) {
        let log = std::fs::File::create(self.dir.join("log/postier.log")).unwrap();
        let child = detached(Path::new(env!("CARGO_BIN_EXE_postier")))
            .arg("serve")
            .env("POSTIER_LISTEN", format!("127.0.0.1:{}", self.ports.api))
            .env("POSTIER_DATABASE_URL", &self.pg().url)
            .env("POSTIER_DATA_DIR", self.dir.join("postier"))
            .env(
                "POSTIER_POLICY_LISTEN",
                format!("127.0.0.1:{}", self.ports.policy),
            )
            .env("POSTIER_MAIL_HOST", MAIL_HOST)
            // The stack's domains are made up: no DNS proves them.
            .env("POSTIER_DOMAIN_OWNERSHIP", "trust")
            .env("POSTIER_FREE_DOMAIN", FREE_DOMAIN)
            .env(
                "POSTIER_JWT_SECRET",
                uuid::Uuid::new_v4().simple().to_string().repeat(2),
            )
            .env("POSTIER_LOG_FORMAT", "json")
            .env("POSTIER_WORKERS", "2")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postier");
        self.postier = Some(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(res) = client.get(format!("{}/readyz", self.api)).send().await {
                if res.status().is_success() {
                    break;
                }
            }
            if let Some(status) = self.postier.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "postier exited ({status}):\n{}",
                    self.log_tail("postier.log")
                );
            }
            assert!(
                Instant::now() < deadline,
                "postier not ready:\n{}",
                self.log_tail("postier.log")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the SQL printed by `postier mailstack-config --print-role-sql`, as the README
    /// tells operators to.
    async fn create_role(&self) {
        let output = Command::new(env!("CARGO_BIN_EXE_postier"))
            .args(["mailstack-config", "--print-role-sql", "--database-url"])
            .arg(self.role_url())
            .arg("--usage-database-url")
            .arg(self.usage_role_url())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let sql = String::from_utf8(output.stdout).unwrap();
        let db = Database::connect(&self.pg().url).await.unwrap();
        db.execute_unprepared(&sql).await.unwrap();
        db.close().await.ok();
    }

    fn generate(&self) {
        let p = self.ports;
        let output = Command::new(env!("CARGO_BIN_EXE_postier"))
            .arg("mailstack-config")
            .arg("--dir")
            .arg(&self.dir)
            .args(["--database-url", &self.role_url()])
            .args(["--usage-database-url", &self.usage_role_url()])
            .args(["--mail-host", MAIL_HOST, "--listen-address", "127.0.0.1"])
            .args(["--smtp-port", &p.smtp.to_string()])
            .args(["--submission-port", &p.submission.to_string()])
            .args(["--submissions-port", &p.submissions.to_string()])
            .args(["--imap-port", &p.imap.to_string()])
            .args(["--imaps-port", &p.imaps.to_string()])
            .args(["--pop3-port", &p.pop3.to_string()])
            .args(["--pop3s-port", &p.pop3s.to_string()])
            .args(["--policy", &format!("127.0.0.1:{}", p.policy)])
            .args([
                "--self-signed",
                "--outbound",
                &self.outbound,
                "--no-auth-penalty",
            ])
            .args(&self.options)
            .args([
                "--instance-name",
                self.dir.file_name().unwrap().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "mailstack-config failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn start_daemons(&mut self) {
        self.daemons_started = true;
        // The daemons inherit the script's stdout and stderr: a file, not a pipe that would
        // never close.
        let log = std::fs::File::create(self.dir.join("log/start.log")).unwrap();
        let status = detached(&self.dir.join("start.sh"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "start.sh failed:\n{}",
            self.log_tail("start.log")
                + &self.log_tail("postfix.log")
                + &self.log_tail("dovecot.log")
        );
        let p = self.ports;
        let deadline = Instant::now() + Duration::from_secs(15);
        for port in [
            p.smtp,
            p.submission,
            p.submissions,
            p.imap,
            p.imaps,
            p.pop3,
            p.pop3s,
        ] {
            while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                assert!(
                    Instant::now() < deadline,
                    "port {port} not listening:\n{}",
                    self.log_tail("postfix.log") + &self.log_tail("dovecot.log")
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The last lines of one of the stack's logs.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- {name}\n{tail}\n")
    }

    /// Runs a statement on Postier's database as its owner (to stand in for time passing).
    pub async fn sql(&self, sql: &str) {
        let db = Database::connect(&self.pg().url).await.unwrap();
        db.execute_unprepared(sql).await.unwrap();
        db.close().await.ok();
    }

    /// Changes Postfix parameters of the running stack (`postconf -e`, then `postfix reload`):
    /// for test-only timings, never for what the generator decides.
    pub fn postfix_set(&self, settings: &[&str]) {
        let dir = self.dir.join("postfix");
        let status = Command::new("postconf")
            .arg("-c")
            .arg(&dir)
            .arg("-e")
            .args(settings)
            .status()
            .unwrap();
        assert!(status.success(), "postconf -e {settings:?}");
        let status = Command::new("postfix")
            .arg("-c")
            .arg(&dir)
            .arg("reload")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "postfix reload");
    }

    /// The value of a Postfix parameter in the generated configuration (`postconf -h`).
    pub fn postconf(&self, parameter: &str) -> String {
        let output = Command::new("postconf")
            .arg("-c")
            .arg(self.dir.join("postfix"))
            .args(["-h", parameter])
            .output()
            .unwrap();
        assert!(output.status.success(), "postconf {parameter}");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// A scalar from Postier's database (as its owner), for assertions.
    pub async fn sql_i64(&self, sql: &str) -> i64 {
        let db = Database::connect(&self.pg().url).await.unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .unwrap()
            .unwrap();
        let value = row.try_get_by_index::<i64>(0).unwrap();
        db.close().await.ok();
        value
    }

    /// The API client bound to this stack's Postier.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.api, path)
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}{}{}{}",
                self.log_tail("start.log"),
                self.log_tail("postier.log"),
                self.log_tail("postfix.log"),
                self.log_tail("dovecot.log")
            );
        }
        if self.daemons_started {
            let stopped = Command::new(self.dir.join("stop.sh")).status();
            if !stopped.is_ok_and(|s| s.success()) {
                eprintln!("stop.sh failed; killing what is left");
                for pid_file in ["postfix-data/master.lock", "run/dovecot/master.pid"] {
                    if let Ok(pid) = std::fs::read_to_string(self.dir.join(pid_file)) {
                        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
                    }
                }
            }
        }
        if let Some(mut child) = self.postier.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The database first (it holds the roles' privileges), then the roles.
        drop(self.pg.take());
        let roles = [self.role.clone(), self.usage_role.clone()];
        if let Some(admin_url) = postgres_url() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        for role in roles {
                            let _ = admin
                                .execute_unprepared(&format!("DROP ROLE IF EXISTS \"{role}\""))
                                .await;
                        }
                        admin.close().await.ok();
                    }
                });
            })
            .join();
        }
        if std::env::var("POSTIER_TEST_MAILSTACK_KEEP").as_deref() == Ok("1") {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A command for a long-lived process that inherits no file descriptor but stdin, stdout and
/// stderr. Run under `flock … cargo test`, every child would otherwise hold the build lock,
/// and a daemon left behind by a killed test would block every later build.
fn detached(program: &Path) -> Command {
    let mut command = Command::new("/bin/bash");
    command.args([
        "-c",
        r#"for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null; exec "$0" "$@""#,
    ]);
    command.arg(program);
    command
}

fn ensure_vmail_user() {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    if !passwd.lines().any(|l| l.starts_with("vmail:")) {
        let status = Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", "vmail"])
            .status()
            .expect("useradd");
        assert!(status.success(), "cannot create the vmail user");
    }
}

/// Submits a message over SMTP (STARTTLS, AUTH PLAIN) with the envelope given; the error is
/// the server's answer.
pub async fn submit(
    port: u16,
    login: &str,
    password: &str,
    envelope_from: &str,
    to: &[&str],
    subject: &str,
) -> Result<(), String> {
    submit_with(
        Mechanism::Plain,
        port,
        login,
        password,
        envelope_from,
        to,
        subject,
    )
    .await
}

/// [`submit`] authenticating with `mechanism` (XOAUTH2: `secret` is a mailbox token).
pub async fn submit_with(
    mechanism: Mechanism,
    port: u16,
    login: &str,
    secret: &str,
    envelope_from: &str,
    to: &[&str],
    subject: &str,
) -> Result<(), String> {
    let tls = TlsParameters::builder(MAIL_HOST.to_string())
        .dangerous_accept_invalid_certs(true)
        .build()
        .map_err(|e| e.to_string())?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .tls(Tls::Required(tls))
        .hello_name(ClientId::Domain("e2e.test".into()))
        .credentials(Credentials::new(login.into(), secret.into()))
        .authentication(vec![mechanism])
        .timeout(Some(Duration::from_secs(15)))
        .build();
    let from = envelope_from.parse().map_err(|e| format!("{e}"))?;
    let recipients = to
        .iter()
        .map(|r| r.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{e}"))?;
    let envelope = Envelope::new(Some(from), recipients).map_err(|e| e.to_string())?;
    let message = message(envelope_from, to, subject);
    transport
        .send_raw(&envelope, message.as_bytes())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn message(envelope_from: &str, to: &[&str], subject: &str) -> String {
    format!(
        "From: <{envelope_from}>\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{}@e2e.test>\r\n\
         Date: {}\r\n\r\nSent by Postier's mail-stack test.\r\n",
        to.iter()
            .map(|r| format!("<{r}>"))
            .collect::<Vec<_>>()
            .join(", "),
        uuid::Uuid::new_v4().simple(),
        chrono::Utc::now().to_rfc2822(),
    )
}

/// SASL mechanisms that carry a mailbox token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    Xoauth2,
    Oauthbearer,
}

impl Bearer {
    pub fn name(self) -> &'static str {
        match self {
            Bearer::Xoauth2 => "XOAUTH2",
            Bearer::Oauthbearer => "OAUTHBEARER",
        }
    }

    /// The initial client response, base64 (RFC 7628 for OAUTHBEARER; Google's XOAUTH2).
    pub fn initial_response(self, user: &str, token: &str) -> String {
        use base64::Engine;
        let raw = match self {
            Bearer::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
            Bearer::Oauthbearer => format!("n,a={user},\x01auth=Bearer {token}\x01\x01"),
        };
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

/// Submits over SMTPS (implicit TLS, the submissions port) authenticating with a bearer
/// mechanism, speaking SMTP by hand (lettre has no OAUTHBEARER); the error is the server's
/// answer.
pub async fn submit_bearer(
    mechanism: Bearer,
    port: u16,
    login: &str,
    token: &str,
    envelope_from: &str,
    to: &[&str],
    subject: &str,
) -> Result<(), String> {
    let stream = tls_connect(port).await;
    let (read, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    // A (possibly multi-line) reply: its code and text.
    async fn reply(
        reader: &mut BufReader<tokio::io::ReadHalf<Box<dyn MailStream>>>,
    ) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(15), reader.read_line(&mut line))
                .await
                .expect("SMTP answer in time")
                .unwrap();
            assert!(read > 0, "SMTP connection closed");
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().unwrap_or(0), text);
            }
        }
    }
    let (code, text) = reply(&mut reader).await;
    if code != 220 {
        return Err(text);
    }
    writer.write_all(b"EHLO e2e.test\r\n").await.unwrap();
    let (code, text) = reply(&mut reader).await;
    if code != 250 || !text.contains(mechanism.name()) {
        return Err(text);
    }
    let auth = format!(
        "AUTH {} {}\r\n",
        mechanism.name(),
        mechanism.initial_response(login, token)
    );
    writer.write_all(auth.as_bytes()).await.unwrap();
    let (mut code, mut text) = reply(&mut reader).await;
    if code == 334 {
        // The error challenge (RFC 7628 §3.2.3): answer it with a dummy response to get the
        // final refusal.
        writer.write_all(b"AQ==\r\n").await.unwrap();
        (code, text) = reply(&mut reader).await;
    }
    if code != 235 {
        return Err(text);
    }
    let mut commands = vec![format!("MAIL FROM:<{envelope_from}>")];
    commands.extend(to.iter().map(|r| format!("RCPT TO:<{r}>")));
    commands.push("DATA".into());
    for command in commands {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        let (code, text) = reply(&mut reader).await;
        if !(code == 250 || (command == "DATA" && code == 354)) {
            return Err(text);
        }
    }
    let body = message(envelope_from, to, subject);
    writer
        .write_all(format!("{body}.\r\n").as_bytes())
        .await
        .unwrap();
    let (code, text) = reply(&mut reader).await;
    writer.write_all(b"QUIT\r\n").await.unwrap();
    if code == 250 {
        Ok(())
    } else {
        Err(text)
    }
}

/// What the clients run over: plain TCP or TLS.
pub trait MailStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> MailStream for T {}

/// TLS from the first byte to a local port, the stack's certificate accepted whatever its
/// issuer.
async fn tls_connect(port: u16) -> Box<dyn MailStream> {
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(MAIL_HOST).unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the mail stack");
    Box::new(tls)
}

/// A minimal IMAP4rev1 client: LOGIN, SELECT, SEARCH, LOGOUT, over plain TCP (Dovecot allows
/// plain-text LOGIN from the loopback) or implicit TLS (IMAPS).
pub struct Imap {
    reader: BufReader<tokio::io::ReadHalf<Box<dyn MailStream>>>,
    writer: tokio::io::WriteHalf<Box<dyn MailStream>>,
    tag: u32,
}

/// Accepts the test stack's self-signed certificate; still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A tagged answer and the untagged lines before it.
#[derive(Debug)]
pub struct ImapReply {
    pub ok: bool,
    pub status: String,
    pub untagged: Vec<String>,
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Imap {
    pub async fn connect(port: u16) -> Imap {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Imap::greeted(Box::new(stream)).await
    }

    /// IMAPS: TLS from the first byte, the stack's certificate accepted whatever its issuer.
    pub async fn connect_tls(port: u16) -> Imap {
        Imap::greeted(tls_connect(port).await).await
    }

    async fn greeted(stream: Box<dyn MailStream>) -> Imap {
        let (read, writer) = tokio::io::split(stream);
        let mut imap = Imap {
            reader: BufReader::new(read),
            writer,
            tag: 0,
        };
        let greeting = imap.line().await;
        assert!(greeting.starts_with("* OK"), "IMAP greeting: {greeting}");
        imap
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(15), self.reader.read_line(&mut line))
            .await
            .expect("IMAP answer in time")
            .unwrap();
        assert!(read > 0, "IMAP connection closed");
        // A literal `{n}` is followed by n bytes: keep them in the same logical line.
        while let Some(n) = line
            .trim_end()
            .strip_suffix('}')
            .and_then(|l| l.rsplit_once('{'))
            .and_then(|(_, n)| n.parse::<usize>().ok())
        {
            let mut literal = vec![0; n];
            self.reader.read_exact(&mut literal).await.unwrap();
            line.push_str(&String::from_utf8_lossy(&literal));
            self.reader.read_line(&mut line).await.unwrap();
        }
        line.trim_end().to_string()
    }

    pub async fn command(&mut self, command: &str) -> ImapReply {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .unwrap();
        let mut untagged = Vec::new();
        loop {
            let line = self.line().await;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return ImapReply {
                    ok: rest.starts_with("OK"),
                    status: rest.to_string(),
                    untagged,
                };
            }
            untagged.push(line);
        }
    }

    pub async fn login(&mut self, user: &str, password: &str) -> ImapReply {
        self.command(&format!("LOGIN {} {}", quoted(user), quoted(password)))
            .await
    }

    /// `AUTHENTICATE` with a bearer mechanism and its initial response (SASL-IR); an error
    /// challenge is answered with an empty line to get the tagged refusal.
    pub async fn authenticate(&mut self, mechanism: Bearer, user: &str, token: &str) -> ImapReply {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        let ir = mechanism.initial_response(user, token);
        self.writer
            .write_all(format!("{tag} AUTHENTICATE {} {ir}\r\n", mechanism.name()).as_bytes())
            .await
            .unwrap();
        let mut untagged = Vec::new();
        loop {
            let line = self.line().await;
            if line.starts_with('+') {
                self.writer.write_all(b"\r\n").await.unwrap();
                continue;
            }
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return ImapReply {
                    ok: rest.starts_with("OK"),
                    status: rest.to_string(),
                    untagged,
                };
            }
            untagged.push(line);
        }
    }

    /// Message numbers in INBOX whose Subject contains `text`.
    pub async fn search_subject(&mut self, text: &str) -> Vec<u32> {
        let select = self.command("SELECT INBOX").await;
        assert!(select.ok, "SELECT INBOX: {}", select.status);
        let reply = self
            .command(&format!("SEARCH SUBJECT {}", quoted(text)))
            .await;
        assert!(reply.ok, "SEARCH: {}", reply.status);
        reply
            .untagged
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().map(|n| n.parse().unwrap()))
            .collect()
    }

    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }
}

/// Whether `user` can log in over IMAP with `password` (then logs out).
pub async fn imap_login_ok(port: u16, user: &str, password: &str) -> bool {
    login_ok(Imap::connect(port).await, user, password).await
}

/// The same over IMAPS.
pub async fn imaps_login_ok(port: u16, user: &str, password: &str) -> bool {
    login_ok(Imap::connect_tls(port).await, user, password).await
}

/// Whether `user` can log in over IMAP with a mailbox token through `mechanism`.
pub async fn imap_bearer_ok(port: u16, mechanism: Bearer, user: &str, token: &str) -> bool {
    let mut imap = Imap::connect(port).await;
    let reply = imap.authenticate(mechanism, user, token).await;
    imap.logout().await;
    reply.ok
}

/// The same over IMAPS.
pub async fn imaps_bearer_ok(port: u16, mechanism: Bearer, user: &str, token: &str) -> bool {
    let mut imap = Imap::connect_tls(port).await;
    let reply = imap.authenticate(mechanism, user, token).await;
    imap.logout().await;
    reply.ok
}

async fn login_ok(mut imap: Imap, user: &str, password: &str) -> bool {
    let reply = imap.login(user, password).await;
    imap.logout().await;
    reply.ok
}

/// How many messages of `user`'s INBOX have `subject` in their Subject.
pub async fn count_in_inbox(port: u16, user: &str, password: &str, subject: &str) -> usize {
    let mut imap = Imap::connect(port).await;
    let reply = imap.login(user, password).await;
    assert!(reply.ok, "IMAP login of {user}: {}", reply.status);
    let found = imap.search_subject(subject).await.len();
    imap.logout().await;
    found
}

/// Waits (up to 15 s) until `subject` is in `user`'s INBOX.
pub async fn wait_for_message(port: u16, user: &str, password: &str, subject: &str) {
    wait_for_message_within(port, user, password, subject, Duration::from_secs(15)).await
}

/// Waits (up to `within`) until `subject` is in `user`'s INBOX.
pub async fn wait_for_message_within(
    port: u16,
    user: &str,
    password: &str,
    subject: &str,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        if count_in_inbox(port, user, password, subject).await > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{subject:?} never reached {user}'s INBOX"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A minimal POP3 client (RFC 1939): USER/PASS, STAT, RETR, QUIT, over plain TCP (Dovecot
/// allows plain-text logins from the loopback) or implicit TLS (POP3S).
pub struct Pop3 {
    reader: BufReader<tokio::io::ReadHalf<Box<dyn MailStream>>>,
    writer: tokio::io::WriteHalf<Box<dyn MailStream>>,
}

impl Pop3 {
    pub async fn connect(port: u16) -> Pop3 {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Pop3::greeted(Box::new(stream)).await
    }

    pub async fn connect_tls(port: u16) -> Pop3 {
        Pop3::greeted(tls_connect(port).await).await
    }

    async fn greeted(stream: Box<dyn MailStream>) -> Pop3 {
        let (read, writer) = tokio::io::split(stream);
        let mut pop = Pop3 {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = pop.line().await;
        assert!(greeting.starts_with("+OK"), "POP3 greeting: {greeting}");
        pop
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(15), self.reader.read_line(&mut line))
            .await
            .expect("POP3 answer in time")
            .unwrap();
        assert!(read > 0, "POP3 connection closed");
        line.trim_end().to_string()
    }

    /// Sends a command and answers its status line.
    pub async fn command(&mut self, command: &str) -> String {
        self.writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        self.line().await
    }

    pub async fn login(&mut self, user: &str, password: &str) -> bool {
        let user = self.command(&format!("USER {user}")).await;
        assert!(user.starts_with("+OK"), "USER: {user}");
        self.command(&format!("PASS {password}"))
            .await
            .starts_with("+OK")
    }

    /// Messages in the maildrop.
    pub async fn count(&mut self) -> usize {
        let stat = self.command("STAT").await;
        assert!(stat.starts_with("+OK"), "STAT: {stat}");
        stat.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The whole message `n`, dot-unstuffed.
    pub async fn retr(&mut self, n: usize) -> String {
        let status = self.command(&format!("RETR {n}")).await;
        assert!(status.starts_with("+OK"), "RETR: {status}");
        let mut message = String::new();
        loop {
            let line = self.line().await;
            if line == "." {
                return message;
            }
            message.push_str(line.strip_prefix('.').unwrap_or(&line));
            message.push('\n');
        }
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }
}

/// Whether `user` can log in over POP3S with `password` (then quits).
pub async fn pop3s_login_ok(port: u16, user: &str, password: &str) -> bool {
    let mut pop = Pop3::connect_tls(port).await;
    let ok = pop.login(user, password).await;
    pop.quit().await;
    ok
}
