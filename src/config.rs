//! Configuration: embedded defaults < optional TOML file (`POSTIER_CONFIG`) < `POSTIER_*`
//! environment variables (`__` separates nested keys). Owns validation of every setting;
//! it must not touch the database or the network.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything Postier can be configured with (README "Configuration" lists each variable).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port of the HTTP API.
    pub listen: SocketAddr,
    /// Where the embedded database and generated keys live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; the SQLite file in `data_dir` when unset.
    pub database_url: Option<String>,
    /// Connections in the database pool.
    pub database_max_connections: u32,
    /// Seconds a request waits for a database connection before it answers 503 (the
    /// database is down, restarting, or every connection is busy).
    pub database_acquire_timeout_secs: u64,
    /// HS256 signing secret (at least 32 bytes); generated and kept when unset.
    pub jwt_secret: Option<String>,
    /// Key (at least 32 bytes) sealing the TOTP secrets of two-factor logins; generated and
    /// kept like the JWT secret when unset.
    pub totp_key: Option<String>,
    /// The issuer authenticator apps show beside a Postier TOTP entry.
    pub totp_issuer: String,
    /// Postier's own base URL: links in e-mails open its pages there when `app_url` is
    /// unset; `http://` + `listen` when unset.
    pub public_url: Option<String>,
    /// A frontend's base URL: when set, links in e-mails open its pages (the paths of
    /// docs/pages.md) instead of Postier's own.
    pub app_url: Option<String>,
    /// The provider's mail host, given to mail clients.
    pub mail_host: String,
    /// The provider's shared domain for free mail services.
    pub free_domain: String,
    /// Local parts no customer may create on the shared free domain (addresses and
    /// aliases): the role addresses of RFC 2142 and the CA/Browser Forum's domain-validation
    /// addresses, which belong to the provider there. A list, or comma-separated text.
    #[serde(deserialize_with = "list_or_csv")]
    pub reserved_local_parts: Vec<String>,
    /// Relay for outgoing notifications (`smtp://host:port`, `smtps://user:pass@host`).
    pub smtp_url: Option<String>,
    /// Sender of notifications; `Postier <no-reply@{mail_host}>` when unset.
    pub mail_from: Option<String>,
    /// How recent (seconds) a password proof must be for dangerous calls.
    pub reauth_window_secs: u64,
    /// Addresses one mail service may create per sliding 24 h.
    pub daily_address_creations: u32,
    /// Address of the Postfix policy service; off when unset.
    pub policy_listen: Option<SocketAddr>,
    /// What the policy service answers when its database is unreachable.
    pub policy_fail_mode: PolicyFailMode,
    /// The last stage Postfix asks the policy service at, where a message's recipients are
    /// added to the sender's 24 h count.
    pub policy_count_at: PolicyCountStage,
    /// Networks the policy service accepts connections from (CIDR or single addresses): a
    /// list, or comma-separated text. Anyone who can speak the protocol can spend any
    /// address's 24 h budget, so only the MTAs belong here.
    #[serde(deserialize_with = "list_or_csv")]
    pub policy_clients: Vec<String>,
    /// Connections one client address may hold open at once on the policy service.
    pub policy_max_connections_per_client: usize,
    /// Seconds a policy connection may stay without a complete request before it is closed.
    pub policy_idle_timeout_secs: u64,
    /// Whether a customer domain counts only once its ownership TXT record is found (`dns`) or
    /// at once (`trust`, single-tenant installs).
    pub domain_ownership: DomainOwnership,
    /// Resolver used for DNS checks (`ip:port`); the system's when unset.
    pub dns_server: Option<SocketAddr>,
    /// Seconds a live DNS check may take in total.
    pub dns_timeout_secs: u64,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log: String,
    /// `json` or `pretty`; `pretty` on a terminal, `json` otherwise when unset.
    pub log_format: Option<LogFormat>,
    /// Lifetime of access tokens, seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a session (refresh token family), seconds.
    pub session_ttl_secs: u64,
    /// Seconds after a refresh during which the same refresh token, presented again (two
    /// browser tabs), gets the same successor instead of revoking the session; 0: never.
    pub refresh_reuse_grace_secs: u64,
    /// How long an instance trusts a session it read from the database, milliseconds
    /// (0–1000; 0: every request reads it): the bound within which a logout or a revocation
    /// on another instance takes effect here.
    pub session_cache_millis: u64,
    /// Minimum length of account and address passwords.
    pub password_min_length: usize,
    /// Largest JSON request body, bytes.
    pub max_json_bytes: usize,
    /// Largest CSV import body, bytes.
    pub import_max_bytes: usize,
    /// Most rows in one CSV import.
    pub import_max_rows: usize,
    /// Hours before a pending invitation expires.
    pub invitation_ttl_hours: u64,
    /// Hours after which a notification not delivered yet is abandoned (its single-use link
    /// removed, as on delivery); applies without a relay too.
    pub outbox_give_up_hours: u64,
    /// Days a delivered or abandoned notification stays in the outbox before it is deleted.
    pub outbox_retention_days: u64,
    /// Origins (`https://app.example`) whose browser pages may call the API (CORS); none
    /// when empty. A list, or comma-separated text. `*` is refused: credentials
    /// (`Authorization`) would have to be refused with it, and every call carries them.
    #[serde(deserialize_with = "list_or_csv")]
    pub cors_origins: Vec<String>,
    /// Lifetime of a mailbox token (SASL XOAUTH2/OAUTHBEARER at the mail servers), seconds.
    pub mailbox_token_ttl_secs: u64,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// With `trust_forwarded_for`, the networks of the reverse proxies whose `X-Forwarded-For`
    /// entries are believed (addresses or CIDR networks: a list, or comma-separated text).
    /// The client address is the right-most entry not added by one of them; a request whose
    /// peer is not one of them is taken at its peer address.
    #[serde(deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<String>,
    /// HTTP worker threads; the number of cores when 0.
    pub workers: usize,
    /// Seconds in-flight requests get to finish on SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Hosts or addresses webhooks may reach although they are loopback, private or
    /// link-local (and, for hosts, over plain `http`): a list, or comma-separated text.
    #[serde(deserialize_with = "list_or_csv")]
    pub webhook_allow_hosts: Vec<String>,
    /// Seconds one webhook delivery may take (connecting, sending, reading the answer).
    pub webhook_timeout_secs: u64,
    /// Hours a delivery is retried before it is given up (at least one attempt past them).
    pub webhook_retry_hours: u64,
    /// Hours an endpoint may fail without a single success before it is disabled.
    pub webhook_disable_after_hours: u64,
    /// Hours the previous secret keeps signing after `rotate-secret`.
    pub webhook_secret_grace_hours: u64,
    /// Deliveries in flight at once in one instance.
    pub webhook_concurrency: usize,
    pub argon2: Argon2Config,
    pub throttle: ThrottleConfig,
    pub outreach: OutreachConfig,
    pub rate_limit: RateLimitConfig,
}

/// The default of `reserved_local_parts`.
pub const DEFAULT_RESERVED_LOCAL_PARTS: [&str; 11] = [
    "postmaster",
    "abuse",
    "hostmaster",
    "webmaster",
    "admin",
    "administrator",
    "root",
    "security",
    "noc",
    "ssl-admin",
    "mailer-daemon",
];
/// An IP network written as an address (`10.0.0.7`, one host) or in CIDR form (`10.0.0.0/8`).
pub(crate) fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// A list setting given as a TOML list or as comma-separated text (environment variables).
fn list_or_csv<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    let items = match ListOrCsv::deserialize(deserializer)? {
        ListOrCsv::List(items) => items,
        ListOrCsv::Csv(text) => text.split(',').map(str::to_string).collect(),
    };
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect())
}

/// A CORS origin is exactly what a browser sends in `Origin`: `scheme://host[:port]`, http
/// or https, nothing after. `*` is refused: every call but sign-up and log-in carries
/// credentials (`Authorization`), which the CORS rules forbid with a wildcard, so listing the
/// frontends' origins is the only setting that works.
fn check_cors_origin(origin: &str) -> Result<(), ConfigError> {
    let refuse = |why: &str| {
        Err(ConfigError::new(
            "cors_origins",
            format!("{origin:?} {why}"),
        ))
    };
    if origin == "*" || origin.contains('*') {
        return refuse(
            "is a wildcard: name each origin (requests carry credentials, which CORS forbids with *)",
        );
    }
    let Ok(url) = url::Url::parse(origin) else {
        return refuse("is not an origin (scheme://host[:port])");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("must be http:// or https://");
    }
    if url.origin().ascii_serialization() != origin {
        return refuse(&format!(
            "must be written as a browser sends it: {}",
            url.origin().ascii_serialization()
        ));
    }
    Ok(())
}

/// argon2id cost parameters (production defaults: OWASP's m=19456 KiB, t=2, p=1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashing worker threads, hence hashes computed at once (each keeps one buffer of
    /// `memory_kib`); the number of cores when 0.
    pub max_concurrent: usize,
    /// Password checks and hashes allowed to wait for a worker; beyond, 503 with
    /// `Retry-After` at once (a CSV import waits instead).
    pub max_queued: usize,
}

/// Limits on failed logins, attaches and sign-ups (all counted in the database).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed logins (or attaches) allowed per login and client address within
    /// `window_secs`: what one guesser gets, without locking the owner out elsewhere.
    pub failures_per_login_and_ip: u32,
    /// Consecutive failed logins (or attaches) allowed per login from all client addresses
    /// together within `window_secs` (a success starts the count again): the ceiling against
    /// guessing from many addresses (NIST SP 800-63B-4: at most 100).
    pub failures_per_login: u32,
    /// Failed logins (or attaches) allowed per client address within `window_secs`.
    pub failures_per_ip: u32,
    pub window_secs: u64,
    /// Sign-ups allowed per client address within `signup_window_secs`.
    pub signups_per_ip: u32,
    pub signup_window_secs: u64,
    /// E-mails sent on request (verification links, password resets, login changes) per
    /// login within `account_mail_window_secs`.
    pub account_mails_per_login: u32,
    /// The same e-mails per client address within `account_mail_window_secs`.
    pub account_mails_per_ip: u32,
    pub account_mail_window_secs: u64,
}

/// Request budgets of authenticated callers (`auth::rate_limit`): each account's sessions
/// share one, each API token has its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests allowed per window; 0 turns rate limiting off.
    pub requests: u32,
    /// The fixed window, 1 s to 24 h.
    pub window_secs: u64,
    /// How often an instance writes its counts and reads every instance's (10 ms to 10 s).
    pub sync_millis: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests: 600,
            window_secs: 60,
            sync_millis: 1000,
        }
    }
}

/// Limits on the e-mails an organization's actions send to addresses its members typed
/// (forward confirmations, invitations onto an address, invitations to join), counted in the
/// database over `window_secs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutreachConfig {
    /// Such e-mails one address may receive, from every organization together.
    pub per_recipient: u32,
    /// Such e-mails one organization may send, to every address together.
    pub per_organization: u32,
    pub window_secs: u64,
}

impl Default for OutreachConfig {
    fn default() -> Self {
        Self {
            per_recipient: 5,
            per_organization: 50,
            window_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Fail open (`DUNNO`, mail flows unchecked) or closed (`DEFER`, the client retries later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyFailMode {
    Open,
    Closed,
}

/// How a customer domain comes to count (mail views, policy service, exclusive use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainOwnership {
    /// Pending until the live DNS check finds the ownership TXT record Postier chose.
    Dns,
    /// Proven as soon as it is linked: every account is trusted with any domain.
    Trust,
}

/// Where the policy service counts a message: `end_of_message` when Postfix has
/// `smtpd_end_of_data_restrictions = check_policy_service …` (recommended: a message whose
/// transfer fails is not counted), `data` when the policy service is only asked up to `DATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyCountStage {
    Data,
    EndOfMessage,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 10,
            database_acquire_timeout_secs: 3,
            jwt_secret: None,
            totp_key: None,
            totp_issuer: "Postier".into(),
            public_url: None,
            app_url: None,
            mail_host: "mail.example".into(),
            free_domain: "free.example".into(),
            reserved_local_parts: DEFAULT_RESERVED_LOCAL_PARTS
                .iter()
                .map(|l| (*l).to_string())
                .collect(),
            smtp_url: None,
            mail_from: None,
            reauth_window_secs: 600,
            daily_address_creations: 50,
            policy_listen: None,
            policy_fail_mode: PolicyFailMode::Closed,
            policy_count_at: PolicyCountStage::EndOfMessage,
            policy_clients: vec!["127.0.0.0/8".into(), "::1".into()],
            policy_max_connections_per_client: 512,
            policy_idle_timeout_secs: 60,
            domain_ownership: DomainOwnership::Dns,
            dns_server: None,
            dns_timeout_secs: 5,
            log: "info".into(),
            log_format: None,
            access_token_ttl_secs: 15 * 60,
            session_ttl_secs: 30 * 24 * 3600,
            refresh_reuse_grace_secs: 10,
            session_cache_millis: 1000,
            password_min_length: 12,
            max_json_bytes: 64 * 1024,
            import_max_bytes: 2 * 1024 * 1024,
            import_max_rows: 5_000,
            invitation_ttl_hours: 7 * 24,
            outbox_give_up_hours: 48,
            outbox_retention_days: 30,
            cors_origins: Vec::new(),
            mailbox_token_ttl_secs: 600,
            trust_forwarded_for: false,
            trusted_proxies: vec!["127.0.0.0/8".into(), "::1/128".into()],
            workers: 0,
            shutdown_timeout_secs: 30,
            webhook_allow_hosts: Vec::new(),
            webhook_timeout_secs: 10,
            webhook_retry_hours: 24,
            webhook_disable_after_hours: 72,
            webhook_secret_grace_hours: 24,
            webhook_concurrency: 16,
            argon2: Argon2Config::default(),
            throttle: ThrottleConfig::default(),
            outreach: OutreachConfig::default(),
            rate_limit: RateLimitConfig::default(),
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
            max_queued: 64,
        }
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            failures_per_login_and_ip: 10,
            failures_per_login: 100,
            failures_per_ip: 50,
            window_secs: 15 * 60,
            signups_per_ip: 20,
            signup_window_secs: 3600,
            account_mails_per_login: 5,
            account_mails_per_ip: 30,
            account_mail_window_secs: 3600,
        }
    }
}

/// A configuration problem, naming the setting as the operator would write it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

impl ConfigError {
    fn new(setting: &str, message: impl Into<String>) -> Self {
        Self {
            setting: env_name(setting),
            message: message.into(),
        }
    }
}

/// `argon2.memory_kib` → `POSTIER_ARGON2__MEMORY_KIB`.
fn env_name(path: &str) -> String {
    format!("POSTIER_{}", path.replace('.', "__").to_uppercase())
}

impl Config {
    /// How long a notification may wait for delivery before it is abandoned.
    pub(crate) fn outbox_give_up(&self) -> chrono::Duration {
        chrono::Duration::hours(
            i64::try_from(self.outbox_give_up_hours).unwrap_or(i64::MAX / 3_600_000),
        )
    }

    /// How long a delivered or abandoned notification is kept.
    pub(crate) fn outbox_retention(&self) -> chrono::Duration {
        chrono::Duration::days(
            i64::try_from(self.outbox_retention_days).unwrap_or(i64::MAX / 86_400_000),
        )
    }

    /// How long an invitation (onto an address or to join) stays valid: `invitation_ttl_hours`.
    pub(crate) fn invitation_ttl(&self) -> chrono::Duration {
        chrono::Duration::hours(
            i64::try_from(self.invitation_ttl_hours).unwrap_or(i64::MAX / 3_600_000),
        )
    }

    /// Reads defaults, then `POSTIER_CONFIG` (a TOML file) when set, then `POSTIER_*`.
    pub fn load() -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Ok(path) = std::env::var("POSTIER_CONFIG") {
            if !std::path::Path::new(&path).is_file() {
                return Err(ConfigError::new("config", format!("no file at {path}")));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Variables that configure tooling around Postier, not Postier itself.
        let env = Env::prefixed("POSTIER_").split("__").filter(|key| {
            key != "config" && !key.as_str().to_ascii_lowercase().starts_with("test_")
        });
        let config: Config = figment.merge(env).extract().map_err(|e| {
            let path = e.path.join(".");
            let setting = if path.is_empty() {
                "config".to_string()
            } else {
                path
            };
            ConfigError::new(&setting, e.kind.to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges, URL schemes, secret lengths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for origin in &self.cors_origins {
            check_cors_origin(origin)?;
        }
        if let Some(url) = &self.database_url {
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(ConfigError::new(
                    "database_url",
                    "must start with sqlite:, postgres:// or postgresql://",
                ));
            }
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 32 {
                return Err(ConfigError::new(
                    "jwt_secret",
                    "must be at least 32 bytes long",
                ));
            }
        }
        if let Some(key) = &self.totp_key {
            if key.len() < 32 {
                return Err(ConfigError::new(
                    "totp_key",
                    "must be at least 32 bytes long",
                ));
            }
        }
        let issuer = self.totp_issuer.trim();
        if issuer.is_empty() || issuer.len() > 64 || issuer.contains(':') {
            return Err(ConfigError::new(
                "totp_issuer",
                "must be 1 to 64 characters, without ':'",
            ));
        }
        for (name, url) in [("public_url", &self.public_url), ("app_url", &self.app_url)] {
            if let Some(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::new(
                        name,
                        "must start with http:// or https://",
                    ));
                }
            }
        }
        if let Some(url) = &self.smtp_url {
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
                .map_err(|e| ConfigError::new("smtp_url", e.to_string()))?;
        }
        if let Some(from) = &self.mail_from {
            from.parse::<lettre::message::Mailbox>()
                .map_err(|e| ConfigError::new("mail_from", e.to_string()))?;
        }
        for (name, value) in [
            ("mail_host", &self.mail_host),
            ("free_domain", &self.free_domain),
        ] {
            crate::domain::DomainName::parse(value)
                .map_err(|e| ConfigError::new(name, e.to_string()))?;
        }
        for local in &self.reserved_local_parts {
            crate::domain::LocalPart::parse(local)
                .map_err(|e| ConfigError::new("reserved_local_parts", format!("{local:?}: {e}")))?;
        }
        for proxy in &self.trusted_proxies {
            parse_network(proxy).ok_or_else(|| {
                ConfigError::new(
                    "trusted_proxies",
                    format!("{proxy:?} is not an IP address or a CIDR network"),
                )
            })?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| ConfigError::new("log", e.to_string()))?;
        argon2::Params::new(
            self.argon2.memory_kib,
            self.argon2.iterations,
            self.argon2.parallelism,
            None,
        )
        .map_err(|e| ConfigError::new("argon2", e.to_string()))?;
        let positive = [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("session_ttl_secs", self.session_ttl_secs),
            ("reauth_window_secs", self.reauth_window_secs),
            ("dns_timeout_secs", self.dns_timeout_secs),
            ("invitation_ttl_hours", self.invitation_ttl_hours),
            ("outbox_give_up_hours", self.outbox_give_up_hours),
            ("outbox_retention_days", self.outbox_retention_days),
            ("throttle.window_secs", self.throttle.window_secs),
            (
                "throttle.signup_window_secs",
                self.throttle.signup_window_secs,
            ),
            (
                "throttle.account_mail_window_secs",
                self.throttle.account_mail_window_secs,
            ),
            (
                "database_max_connections",
                self.database_max_connections.into(),
            ),
            (
                "database_acquire_timeout_secs",
                self.database_acquire_timeout_secs,
            ),
            ("max_json_bytes", self.max_json_bytes as u64),
            ("import_max_bytes", self.import_max_bytes as u64),
            ("import_max_rows", self.import_max_rows as u64),
            ("webhook_timeout_secs", self.webhook_timeout_secs),
            ("webhook_retry_hours", self.webhook_retry_hours),
            (
                "webhook_disable_after_hours",
                self.webhook_disable_after_hours,
            ),
            (
                "webhook_secret_grace_hours",
                self.webhook_secret_grace_hours,
            ),
            ("webhook_concurrency", self.webhook_concurrency as u64),
            ("outreach.window_secs", self.outreach.window_secs),
            ("outreach.per_recipient", self.outreach.per_recipient.into()),
            (
                "outreach.per_organization",
                self.outreach.per_organization.into(),
            ),
            ("policy_idle_timeout_secs", self.policy_idle_timeout_secs),
            (
                "policy_max_connections_per_client",
                self.policy_max_connections_per_client as u64,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(name, "must be greater than 0"));
            }
        }
        if self.session_cache_millis > 1000 {
            return Err(ConfigError::new(
                "session_cache_millis",
                "must be at most 1000 (a logout takes effect on every instance within it)",
            ));
        }
        // Mailbox tokens are bearer secrets that reach the mail servers: short-lived only.
        if !(30..=3600).contains(&self.mailbox_token_ttl_secs) {
            return Err(ConfigError::new(
                "mailbox_token_ttl_secs",
                "must be between 30 and 3600",
            ));
        }
        for host in &self.webhook_allow_hosts {
            let name_like = host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if host.parse::<std::net::IpAddr>().is_err() && !name_like {
                return Err(ConfigError::new(
                    "webhook_allow_hosts",
                    format!("{host:?} is neither an IP address nor a host name"),
                ));
            }
        }
        crate::policy::clients::parse_networks(&self.policy_clients)
            .map_err(|e| ConfigError::new("policy_clients", e))?;
        if self.policy_listen.is_some() && self.policy_clients.is_empty() {
            return Err(ConfigError::new(
                "policy_clients",
                "must name at least one network (the MTAs') when the policy service is on",
            ));
        }
        if self.webhook_timeout_secs > 300 {
            return Err(ConfigError::new(
                "webhook_timeout_secs",
                "must be at most 300",
            ));
        }
        if !(1..=86_400).contains(&self.rate_limit.window_secs) {
            return Err(ConfigError::new(
                "rate_limit.window_secs",
                "must be between 1 and 86400",
            ));
        }
        if !(10..=10_000).contains(&self.rate_limit.sync_millis) {
            return Err(ConfigError::new(
                "rate_limit.sync_millis",
                "must be between 10 and 10000",
            ));
        }
        if !(8..=128).contains(&self.password_min_length) {
            return Err(ConfigError::new(
                "password_min_length",
                "must be between 8 and 128",
            ));
        }
        Ok(())
    }

    /// The database URL actually used: the configured one, or SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("postier.db").display()
            ),
        }
    }

    /// Base of links put in e-mails, without a trailing slash: the frontend's
    /// (`app_url`) when set, else Postier's own pages (`public_url`).
    pub fn effective_link_base(&self) -> String {
        match &self.app_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => self.effective_public_url(),
        }
    }

    /// Postier's own base URL, without a trailing slash.
    pub fn effective_public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    /// Sender of notification e-mails.
    pub fn effective_mail_from(&self) -> String {
        self.mail_from
            .clone()
            .unwrap_or_else(|| format!("Postier <no-reply@{}>", self.mail_host))
    }

    /// Cores available to this process, never 0.
    pub fn cores() -> usize {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn cors_origins_must_be_exact_origins_and_never_a_wildcard() {
        let with = |origins: &[&str]| Config {
            cors_origins: origins.iter().map(|o| (*o).to_string()).collect(),
            ..Config::default()
        };
        with(&["https://app.example", "http://localhost:5173"])
            .validate()
            .unwrap();
        for bad in [
            "*",
            "https://*.example",
            "https://app.example/",
            "https://app.example/path",
            "HTTPS://App.example",
            "ftp://app.example",
            "app.example",
        ] {
            let error = with(&[bad]).validate().unwrap_err();
            assert_eq!(error.setting, "POSTIER_CORS_ORIGINS", "{bad}");
        }
    }

    #[test]
    fn a_short_jwt_secret_is_refused_naming_the_variable() {
        let config = Config {
            jwt_secret: Some("short".into()),
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.setting, "POSTIER_JWT_SECRET");
    }

    #[test]
    fn webhook_allow_hosts_are_a_list_or_comma_separated_text() {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(("webhook_allow_hosts", "127.0.0.1, receiver.internal,"))
            .extract()
            .unwrap();
        assert_eq!(
            config.webhook_allow_hosts,
            ["127.0.0.1", "receiver.internal"]
        );
        config.validate().unwrap();
        let bad = Config {
            webhook_allow_hosts: vec!["not a host".into()],
            ..Config::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().setting,
            "POSTIER_WEBHOOK_ALLOW_HOSTS"
        );
    }

    #[test]
    fn reserved_local_parts_default_to_the_role_addresses_and_are_checked() {
        let config = Config::default();
        assert!(config
            .reserved_local_parts
            .iter()
            .any(|l| l == "postmaster"));
        assert_eq!(config.reserved_local_parts.len(), 11);
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(("reserved_local_parts", "billing, support"))
            .extract()
            .unwrap();
        assert_eq!(config.reserved_local_parts, ["billing", "support"]);
        let bad = Config {
            reserved_local_parts: vec!["not valid".into()],
            ..Config::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().setting,
            "POSTIER_RESERVED_LOCAL_PARTS"
        );
        let zero = Config {
            outreach: OutreachConfig {
                per_recipient: 0,
                ..OutreachConfig::default()
            },
            ..Config::default()
        };
        assert_eq!(
            zero.validate().unwrap_err().setting,
            "POSTIER_OUTREACH__PER_RECIPIENT"
        );
    }

    #[test]
    fn policy_clients_are_networks() {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(("policy_clients", "10.0.0.0/8, 192.0.2.7,fd00::/8"))
            .extract()
            .unwrap();
        assert_eq!(
            config.policy_clients,
            ["10.0.0.0/8", "192.0.2.7", "fd00::/8"]
        );
        config.validate().unwrap();
        let bad = Config {
            policy_clients: vec!["mta.internal".into()],
            ..Config::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().setting,
            "POSTIER_POLICY_CLIENTS"
        );
    }

    #[test]
    fn nested_settings_are_named_as_environment_variables() {
        assert_eq!(env_name("argon2.memory_kib"), "POSTIER_ARGON2__MEMORY_KIB");
    }
}
