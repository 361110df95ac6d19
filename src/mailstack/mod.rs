//! `postier mailstack-config`: writes a working Postfix + Dovecot configuration that reads
//! Postier's mail views (migration `create_mail_views`) through a read-only PostgreSQL role,
//! prepares the folders the daemons need, and prints the SQL that creates that role. It never
//! connects to the database and never starts a daemon (the generated `start.sh` does).

mod database;
mod render;

use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use database::{parse_database_url, role_sql, usage_role_sql};
pub use render::{
    DbTarget, Outbound, Ports, Stack, DOVECOT_SQL, DOVECOT_SQL_DEVICES, DOVECOT_SQL_TOKENS,
    DOVECOT_SQL_USAGE, POSTFIX_MAPS,
};

use crate::domain::{IMAPS_PORT, POP3S_PORT, SUBMISSIONS_PORT, SUBMISSION_PORT};

/// Options of `postier mailstack-config` (README "Running a real mail server on Postier").
#[derive(Debug, Clone, clap::Args)]
pub struct MailstackArgs {
    /// Folder that receives the configuration, the queue, the sockets and the logs.
    #[arg(long, required_unless_present = "print_role_sql")]
    pub dir: Option<PathBuf>,
    /// The mail servers' read-only role: `postgres://ROLE:PASSWORD@HOST:PORT/DATABASE`.
    #[arg(long)]
    pub database_url: String,
    /// Host name of the mail server (`myhostname`, the TLS certificate's name).
    #[arg(long, default_value = "mail.example")]
    pub mail_host: String,
    /// Address every listener binds to (`0.0.0.0` for all).
    #[arg(long, default_value = "127.0.0.1")]
    pub listen_address: IpAddr,
    /// SMTP port for mail from other servers (0: off).
    #[arg(long, default_value_t = 25)]
    pub smtp_port: u16,
    /// Submission port, STARTTLS + AUTH (0: off).
    #[arg(long, default_value_t = SUBMISSION_PORT)]
    pub submission_port: u16,
    /// Submission over implicit TLS (0: off).
    #[arg(long, default_value_t = SUBMISSIONS_PORT)]
    pub submissions_port: u16,
    /// IMAP port, STARTTLS (0: off).
    #[arg(long, default_value_t = 143)]
    pub imap_port: u16,
    /// IMAP over implicit TLS (0: off).
    #[arg(long, default_value_t = IMAPS_PORT)]
    pub imaps_port: u16,
    /// POP3 port, STLS (0: off; clients are told 995).
    #[arg(long, default_value_t = 0)]
    pub pop3_port: u16,
    /// POP3 over implicit TLS (0: off, and with --pop3-port 0 no POP3 at all).
    #[arg(long, default_value_t = POP3S_PORT)]
    pub pop3s_port: u16,
    /// `host:port` of Postier's policy service (`POSTIER_POLICY_LISTEN`).
    #[arg(long, default_value = "127.0.0.1:10040")]
    pub policy: String,
    /// System user owning the mailboxes (its uid and gid are used).
    #[arg(long, default_value = "vmail")]
    pub vmail_user: String,
    /// Owner uid of the mailboxes, instead of `--vmail-user`.
    #[arg(long, requires = "vmail_gid")]
    pub vmail_uid: Option<u32>,
    /// Owner gid of the mailboxes, instead of `--vmail-user`.
    #[arg(long, requires = "vmail_uid")]
    pub vmail_gid: Option<u32>,
    /// Where the mailboxes live (`DIR/vmail` when unset).
    #[arg(long)]
    pub mail_root: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key", conflicts_with = "self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM, not encrypted).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Instead of `--tls-cert`: make a self-signed certificate for `--mail-host` in
    /// `DIR/tls` with openssl(1) (kept when it exists).
    #[arg(long)]
    pub self_signed: bool,
    /// Mail for other domains: `direct` (through their MX), `none` (refused), or a relay
    /// `[host]:port`.
    #[arg(long, default_value = "direct")]
    pub outbound: String,
    /// Turn off Dovecot's failed-login delay and penalty (test stacks only: there every
    /// client is the same address).
    #[arg(long)]
    pub no_auth_penalty: bool,
    /// Dovecot's instance name (`doveadm -i`), for several stacks on one host.
    #[arg(long, default_value = "postier")]
    pub instance_name: String,
    /// The role that records when and from where device passwords are used (EXECUTE on
    /// `mail_record_device_use` only), `postgres://ROLE:PASSWORD@HOST:PORT/DATABASE` on the
    /// same database; unset: last use is not recorded.
    #[arg(long)]
    pub usage_database_url: Option<String>,
    /// Postfix `delay_warning_time`: when the sender of a message still undelivered is told.
    #[arg(long, default_value = "4h")]
    pub delay_warning_time: String,
    /// Postfix `maximal_queue_lifetime` and `bounce_queue_lifetime`: how long delivery is
    /// retried before the message is returned.
    #[arg(long, default_value = "5d")]
    pub queue_lifetime: String,
    /// Print the SQL that creates the read-only role of `--database-url` with SELECT on the
    /// mail views only (and the role of `--usage-database-url`, if given), and exit.
    #[arg(long)]
    pub print_role_sql: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MailstackError {
    #[error("{option}: {message}")]
    Invalid {
        option: &'static str,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Command(String),
}

fn invalid(option: &'static str, message: impl Into<String>) -> MailstackError {
    MailstackError::Invalid {
        option,
        message: message.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> MailstackError + '_ {
    move |source| MailstackError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What `generate` did, for the operator.
#[derive(Debug)]
pub struct Generated {
    pub stack: Stack,
    pub files: Vec<PathBuf>,
    /// False when not run as root: ownership was left to the operator.
    pub owned: bool,
}

/// Runs the command: prints the role SQL, or writes the stack and prints what to do next.
pub fn run(args: &MailstackArgs) -> Result<(), MailstackError> {
    let db = parse_database_url(&args.database_url)?;
    if args.print_role_sql {
        print!("{}", role_sql(&db)?);
        if let Some(usage) = usage_target(args, &db)? {
            print!("{}", usage_role_sql(&usage)?);
        }
        return Ok(());
    }
    let generated = generate(args)?;
    let dir = generated.stack.dir.display();
    for file in &generated.files {
        println!("wrote {}", file.display());
    }
    if !generated.owned {
        eprintln!(
            "warning: not running as root, so nothing was chowned; see README \"Running a real mail server on Postier\""
        );
    }
    println!("start: {dir}/start.sh    stop: {dir}/stop.sh");
    println!(
        "the role {} needs SELECT on the mail views: postier mailstack-config --database-url ... --print-role-sql | psql <admin URL of {}>",
        db.user, db.dbname
    );
    if generated.stack.usage_db.is_none() {
        println!(
            "device passwords' last use is not recorded: add --usage-database-url (README \"Device passwords\")"
        );
    }
    Ok(())
}

/// The usage role of `--usage-database-url`: on the read role's database, another role.
fn usage_target(args: &MailstackArgs, db: &DbTarget) -> Result<Option<DbTarget>, MailstackError> {
    const OPTION: &str = "--usage-database-url";
    let Some(url) = &args.usage_database_url else {
        return Ok(None);
    };
    let usage = parse_database_url(url).map_err(|e| match e {
        MailstackError::Invalid { message, .. } => invalid(OPTION, message),
        other => other,
    })?;
    if (&usage.host, usage.port, &usage.dbname) != (&db.host, db.port, &db.dbname) {
        return Err(invalid(
            OPTION,
            "must name the same host, port and database as --database-url",
        ));
    }
    if usage.user == db.user {
        return Err(invalid(
            OPTION,
            "must be another role than --database-url's (that one stays read-only)",
        ));
    }
    Ok(Some(usage))
}

/// Validates the options into a [`Stack`] (no side effect).
pub fn resolve(args: &MailstackArgs) -> Result<Stack, MailstackError> {
    let db = parse_database_url(&args.database_url)?;
    let dir = args
        .dir
        .clone()
        .ok_or_else(|| invalid("--dir", "is required"))?;
    let dir = absolute(&dir, "--dir")?;
    // Dovecot's deepest socket is `login/imap-urlauth` under its base dir; a unix socket
    // path holds at most 107 bytes.
    if dir.as_os_str().len() + "/run/dovecot/login/imap-urlauth-worker".len() > 107 {
        return Err(invalid(
            "--dir",
            "is too long for unix socket paths (keep it under ~65 characters)",
        ));
    }
    let mail_host = crate::domain::DomainName::parse(&args.mail_host)
        .map_err(|e| invalid("--mail-host", e.to_string()))?
        .to_string();
    let policy = args.policy.trim().to_string();
    let valid_policy = policy.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
            && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if !valid_policy {
        return Err(invalid("--policy", "must be host:port"));
    }
    let (vmail_uid, vmail_gid) = match (args.vmail_uid, args.vmail_gid) {
        (Some(uid), Some(gid)) => (uid, gid),
        _ => lookup_user(&args.vmail_user).ok_or_else(|| {
            invalid(
                "--vmail-user",
                format!(
                    "no system user {:?} (useradd --system --no-create-home --shell /usr/sbin/nologin {})",
                    args.vmail_user, args.vmail_user
                ),
            )
        })?,
    };
    if vmail_uid == 0 || vmail_gid == 0 {
        return Err(invalid("--vmail-user", "mailboxes cannot be owned by root"));
    }
    let mail_root = match &args.mail_root {
        Some(path) => absolute(path, "--mail-root")?,
        None => dir.join("vmail"),
    };
    let (tls_cert, tls_key) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (absolute(cert, "--tls-cert")?, absolute(key, "--tls-key")?),
        _ if args.self_signed => (dir.join("tls/cert.pem"), dir.join("tls/key.pem")),
        _ => {
            return Err(invalid(
                "--tls-cert",
                "give --tls-cert and --tls-key, or --self-signed",
            ))
        }
    };
    let outbound = match args.outbound.as_str() {
        "none" => Outbound::None,
        "direct" => Outbound::Direct,
        relay
            if relay.contains(':')
                && relay
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c)) =>
        {
            Outbound::Relay(relay.to_string())
        }
        _ => {
            return Err(invalid(
                "--outbound",
                "must be none, direct or a relay [host]:port",
            ))
        }
    };
    let instance_name = args.instance_name.clone();
    if instance_name.is_empty()
        || !instance_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    {
        return Err(invalid(
            "--instance-name",
            "must be letters, digits, '_' or '-'",
        ));
    }
    // Postfix time values: a number and one unit (s, m, h, d, w).
    for (option, value) in [
        ("--delay-warning-time", &args.delay_warning_time),
        ("--queue-lifetime", &args.queue_lifetime),
    ] {
        let valid = value
            .strip_suffix(['s', 'm', 'h', 'd', 'w'])
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return Err(invalid(option, "must be a number and a unit: 4h, 5d, 30m"));
        }
    }
    let usage_db = usage_target(args, &db)?;
    Ok(Stack {
        dir,
        db,
        mail_host,
        listen: args.listen_address,
        ports: Ports {
            smtp: args.smtp_port,
            submission: args.submission_port,
            submissions: args.submissions_port,
            imap: args.imap_port,
            imaps: args.imaps_port,
            pop3: args.pop3_port,
            pop3s: args.pop3s_port,
        },
        policy,
        vmail_uid,
        vmail_gid,
        mail_root,
        tls_cert,
        tls_key,
        outbound,
        auth_penalty: !args.no_auth_penalty,
        instance_name,
        usage_db,
        delay_warning_time: args.delay_warning_time.clone(),
        queue_lifetime: args.queue_lifetime.clone(),
    })
}

/// An absolute path of plain characters: it is written unquoted into every file.
fn absolute(path: &Path, option: &'static str) -> Result<PathBuf, MailstackError> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| invalid(option, e.to_string()))?
            .join(path)
    };
    let text = path.to_str().unwrap_or_default();
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        || text.split('/').any(|part| part == "..")
    {
        return Err(invalid(
            option,
            "must be a path of letters, digits, '/', '.', '_' and '-' without '..'",
        ));
    }
    Ok(path)
}

/// Writes the configuration and prepares the folders (owners and modes when run as root).
pub fn generate(args: &MailstackArgs) -> Result<Generated, MailstackError> {
    let stack = resolve(args)?;
    let owned = running_as_root();
    let ids = |user: &str| -> Result<(u32, u32), MailstackError> {
        let (uid, _) = lookup_user(user).ok_or_else(|| {
            MailstackError::Command(format!(
                "no system user {user}: install postfix and dovecot-core first"
            ))
        })?;
        let gid = lookup_group(user)
            .ok_or_else(|| MailstackError::Command(format!("no system group {user}")))?;
        Ok((uid, gid))
    };
    let (postfix_uid, postfix_gid) = ids("postfix")?;
    let (_, dovecot_gid) = ids("dovecot")?;
    let s = &stack;
    let root = (0, 0);
    // Postfix must be able to traverse every parent folder to reach Dovecot's sockets.
    let dirs: [(PathBuf, u32, (u32, u32)); 9] = [
        (s.dir.clone(), 0o755, root),
        (s.postfix_dir(), 0o755, root),
        (s.dovecot_dir(), 0o755, root),
        (s.queue_dir(), 0o755, root),
        // master.lock lives here and must be writable by postfix.
        (s.data_dir(), 0o700, (postfix_uid, postfix_gid)),
        (s.dir.join("run"), 0o755, root),
        (s.log_dir(), 0o755, root),
        (s.dir.join("tls"), 0o755, root),
        (s.mail_root.clone(), 0o770, (s.vmail_uid, s.vmail_gid)),
    ];
    for (path, mode, (uid, gid)) in &dirs {
        std::fs::create_dir_all(path).map_err(io_error(path))?;
        set_mode(path, *mode)?;
        if owned {
            std::os::unix::fs::chown(path, Some(*uid), Some(*gid)).map_err(io_error(path))?;
        }
    }
    if args.self_signed && !(s.tls_cert.exists() && s.tls_key.exists()) {
        self_signed(s)?;
    }
    let mut files = Vec::new();
    let mut write = |path: PathBuf, text: String, mode: u32, group: Option<u32>| {
        std::fs::write(&path, text).map_err(io_error(&path))?;
        set_mode(&path, mode)?;
        if owned {
            std::os::unix::fs::chown(&path, Some(0), Some(group.unwrap_or(0)))
                .map_err(io_error(&path))?;
        }
        files.push(path);
        Ok::<(), MailstackError>(())
    };
    // Files holding the database password: readable by root and the daemon's group only.
    write(
        s.dovecot_dir().join("dovecot.conf"),
        render::dovecot_conf(s),
        0o644,
        None,
    )?;
    let mut dovecot_sql = vec![
        (DOVECOT_SQL, render::dovecot_sql(s)),
        (DOVECOT_SQL_TOKENS, render::dovecot_sql_tokens(s)),
        (DOVECOT_SQL_DEVICES, render::dovecot_sql_devices(s)),
    ];
    if let Some(usage) = &s.usage_db {
        dovecot_sql.push((DOVECOT_SQL_USAGE, render::dovecot_sql_usage(usage)));
    } else {
        // A file left from an earlier run with the usage role would hold its password.
        let stale = s.dovecot_dir().join(DOVECOT_SQL_USAGE);
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(io_error(&stale))?;
        }
    }
    for (file, text) in dovecot_sql {
        write(s.dovecot_dir().join(file), text, 0o640, Some(dovecot_gid))?;
    }
    write(
        s.postfix_dir().join("main.cf"),
        render::postfix_main_cf(s),
        0o644,
        None,
    )?;
    write(
        s.postfix_dir().join("master.cf"),
        render::postfix_master_cf(s),
        0o644,
        None,
    )?;
    for (file, query) in POSTFIX_MAPS {
        write(
            s.postfix_dir().join(file),
            render::postfix_map(s, query),
            0o640,
            Some(postfix_gid),
        )?;
    }
    write(s.dir.join("start.sh"), render::start_sh(s), 0o755, None)?;
    write(s.dir.join("stop.sh"), render::stop_sh(s), 0o755, None)?;
    Ok(Generated {
        stack,
        files,
        owned,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), MailstackError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_error(path))
}

/// A self-signed certificate for the mail host (and the listen address) with openssl(1).
fn self_signed(s: &Stack) -> Result<(), MailstackError> {
    let san = format!("subjectAltName=DNS:{},IP:{}", s.mail_host, s.listen);
    let output = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825",
        ])
        .arg("-keyout")
        .arg(&s.tls_key)
        .arg("-out")
        .arg(&s.tls_cert)
        .args(["-subj", &format!("/CN={}", s.mail_host), "-addext", &san])
        .output()
        .map_err(|e| MailstackError::Command(format!("cannot run openssl: {e}")))?;
    if !output.status.success() {
        return Err(MailstackError::Command(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    set_mode(&s.tls_key, 0o600)?;
    set_mode(&s.tls_cert, 0o644)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// uid and primary gid of a system user, from /etc/passwd.
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [user, _, uid, gid, ..] if *user == name => {
                Some((uid.parse().ok()?, gid.parse().ok()?))
            }
            _ => None,
        }
    })
}

/// gid of a system group, from /etc/group.
pub fn lookup_group(name: &str) -> Option<u32> {
    let group = std::fs::read_to_string("/etc/group").ok()?;
    group.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [group, _, gid, ..] if *group == name => gid.parse().ok(),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests;
