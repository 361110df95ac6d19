//! Pure rendering of the Postfix and Dovecot files from a validated [`Stack`]: no file system,
//! no processes. Every query reads only the views of `migration::MAIL_VIEWS`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// How mail for other providers leaves the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Refused at submission (`error:` transport): test stacks and closed setups.
    None,
    /// Delivered by Postfix itself through the recipients' MX.
    Direct,
    /// Handed to a relay (`[host]:port`, Postfix's `relayhost` syntax).
    Relay(String),
}

/// The read-only database role's connection, split for each daemon's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbTarget {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<String>,
}

/// Listening ports; 0 turns a listener off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub imap: u16,
    pub imaps: u16,
    /// POP3 with STLS (off by default: clients are told 995).
    pub pop3: u16,
    pub pop3s: u16,
}

impl Ports {
    pub fn pop3_on(&self) -> bool {
        self.pop3 != 0 || self.pop3s != 0
    }
}

/// Everything the files depend on, already validated (paths absolute and plain).
#[derive(Debug, Clone)]
pub struct Stack {
    pub dir: PathBuf,
    pub db: DbTarget,
    pub mail_host: String,
    pub listen: IpAddr,
    pub ports: Ports,
    /// `host:port` of Postier's policy service.
    pub policy: String,
    pub vmail_uid: u32,
    pub vmail_gid: u32,
    pub mail_root: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub outbound: Outbound,
    /// Dovecot's failed-login delay and per-IP penalty; off only for test stacks whose
    /// clients all come from one address.
    pub auth_penalty: bool,
    pub instance_name: String,
    /// The role that records device passwords' last use (EXECUTE on
    /// `mail_record_device_use` only); `None`: the use is not recorded.
    pub usage_db: Option<DbTarget>,
    /// Postfix time values (`4h`, `5d`): when the sender is told a message is still
    /// undelivered, and when it is returned.
    pub delay_warning_time: String,
    pub queue_lifetime: String,
}

/// The Dovecot files the passdbs read, each holding a database password (mode 640).
pub const DOVECOT_SQL: &str = "dovecot-sql.conf.ext";
pub const DOVECOT_SQL_TOKENS: &str = "dovecot-sql-tokens.conf.ext";
pub const DOVECOT_SQL_DEVICES: &str = "dovecot-sql-devices.conf.ext";
pub const DOVECOT_SQL_USAGE: &str = "dovecot-sql-usage.conf.ext";

/// The Postfix lookup tables: file name, the map parameter using it, and the query.
pub const POSTFIX_MAPS: [(&str, &str); 5] = [
    (
        "pgsql-domains.cf",
        "SELECT domain FROM mail_domains WHERE domain = '%s'",
    ),
    (
        "pgsql-mailboxes.cf",
        "SELECT address FROM mail_mailboxes WHERE address = '%s'",
    ),
    (
        "pgsql-aliases.cf",
        "SELECT destination FROM mail_aliases WHERE source = '%s'",
    ),
    (
        "pgsql-senders.cf",
        "SELECT login FROM mail_senders WHERE sender = '%s'",
    ),
    (
        "pgsql-send-only.cf",
        "SELECT '550 5.1.1 this address only sends mail and receives none' \
         FROM mail_send_only WHERE address = '%s'",
    ),
];

impl Stack {
    pub fn postfix_dir(&self) -> PathBuf {
        self.dir.join("postfix")
    }

    pub fn dovecot_dir(&self) -> PathBuf {
        self.dir.join("dovecot")
    }

    /// Dovecot's `base_dir`: its sockets, among them `lmtp` and `auth-postfix`.
    pub fn dovecot_run_dir(&self) -> PathBuf {
        self.dir.join("run").join("dovecot")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    pub fn queue_dir(&self) -> PathBuf {
        self.dir.join("postfix-spool")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("postfix-data")
    }

    fn map(&self, file: &str) -> String {
        format!("proxy:pgsql:{}", self.postfix_dir().join(file).display())
    }

    /// `127.0.0.1` or `[::1]`, as master.cf wants a listening address.
    fn listen_host(&self) -> String {
        match self.listen {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        }
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Dovecot's main configuration: IMAP (and POP3) for mail clients, LMTP and SASL sockets
/// for Postfix, users and passwords from SQL through a chain of passdbs (mailbox tokens,
/// device passwords and their last use, the address password), no auth cache (a password
/// change, a revocation or a deletion applies at the next login).
pub(super) fn dovecot_conf(s: &Stack) -> String {
    let dir = show(&s.dir);
    let run = show(&s.dovecot_run_dir());
    let log = show(&s.log_dir().join("dovecot.log"));
    let file = |name: &str| show(&s.dovecot_dir().join(name));
    let listen = s.listen;
    let protocols = if s.ports.pop3_on() {
        "imap pop3 lmtp"
    } else {
        "imap lmtp"
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "# Generated by `postier mailstack-config` for {dir}; regenerate instead of editing.\n\
         instance_name = {instance}\n\
         base_dir = {run}\n\
         state_dir = {dir}/run/dovecot-state\n\
         log_path = {log}\n\
         info_log_path = {log}\n\
         protocols = {protocols}\n\
         listen = {listen}\n\
         # Plain-text logins only over TLS (or from the loopback, which Dovecot trusts).\n\
         disable_plaintext_auth = yes\n\
         # XOAUTH2 and OAUTHBEARER carry mailbox tokens (the webmail); they need no oauth2\n\
         # passdb: the token reaches the passdb chain as the password.\n\
         auth_mechanisms = plain login xoauth2 oauthbearer\n\
         auth_username_format = %Lu\n\
         auth_verbose = yes\n\
         # No cache: Postier's password changes, revocations and deletions apply at the next login.\n\
         auth_cache_size = 0\n\
         ssl = yes\n\
         ssl_cert = <{cert}\n\
         ssl_key = <{key}\n\
         ssl_min_protocol = TLSv1.2\n\
         first_valid_uid = {uid}\n\
         last_valid_uid = {uid}\n\
         first_valid_gid = {gid}\n\
         last_valid_gid = {gid}\n\
         mail_uid = {uid}\n\
         mail_gid = {gid}\n\
         mail_location = maildir:~/Maildir\n\
         # '+' is an ordinary character of Postier's local parts, not a detail separator.\n\
         recipient_delimiter =\n\
         namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n\
         # 1. Mailbox tokens, only through XOAUTH2/OAUTHBEARER: the row is found by the token's\n\
         #    SHA-256, which is the whole verification.\n\
         passdb {{\n  driver = sql\n  mechanisms = xoauth2 oauthbearer\n  args = {tokens}\n}}\n\
         # 2. Device passwords pst_<id>_<secret>: the id selects one row, argon2id verifies it.\n\
         #    No row or a mismatch goes on to the address password.\n\
         passdb {{\n  driver = sql\n  mechanisms = plain login\n  args = {devices}\n{device_success}}}\n",
        instance = s.instance_name,
        cert = show(&s.tls_cert),
        key = show(&s.tls_key),
        uid = s.vmail_uid,
        gid = s.vmail_gid,
        tokens = file(DOVECOT_SQL_TOKENS),
        devices = file(DOVECOT_SQL_DEVICES),
        device_success = if s.usage_db.is_some() {
            "  result_success = continue-ok\n"
        } else {
            ""
        },
    );
    if s.usage_db.is_some() {
        let _ = write!(
            out,
            "# 3. After a device password succeeded, record its last use (a role that may only\n\
             #    EXECUTE mail_record_device_use). Whatever happens here, the login stands.\n\
             passdb {{\n  driver = sql\n  mechanisms = plain login\n  args = {usage}\n\
             \x20 skip = unauthenticated\n  result_success = return-ok\n  result_failure = return-ok\n\
             \x20 result_internalfail = return-ok\n}}\n",
            usage = file(DOVECOT_SQL_USAGE),
        );
    }
    let _ = write!(
        out,
        "# The address's own password.\n\
         passdb {{\n  driver = sql\n  mechanisms = plain login\n  args = {sql}\n  skip = authenticated\n}}\n\
         userdb {{\n  driver = sql\n  args = {sql}\n}}\n\
         service imap-login {{\n\
         \x20 inet_listener imap {{\n    address = {listen}\n    port = {imap}\n  }}\n\
         \x20 inet_listener imaps {{\n    address = {listen}\n    port = {imaps}\n    ssl = yes\n  }}\n\
         }}\n",
        sql = file(DOVECOT_SQL),
        imap = s.ports.imap,
        imaps = s.ports.imaps,
    );
    if s.ports.pop3_on() {
        let _ = write!(
            out,
            "service pop3-login {{\n\
             \x20 inet_listener pop3 {{\n    address = {listen}\n    port = {pop3}\n  }}\n\
             \x20 inet_listener pop3s {{\n    address = {listen}\n    port = {pop3s}\n    ssl = yes\n  }}\n\
             }}\n\
             protocol pop3 {{\n\
             \x20 # Outlook and Outlook Express need these; the default UIDL format stays.\n\
             \x20 pop3_client_workarounds = outlook-no-nuls oe-ns-eoh\n\
             }}\n",
            pop3 = s.ports.pop3,
            pop3s = s.ports.pop3s,
        );
    }
    let _ = write!(
        out,
        "service lmtp {{\n\
         \x20 unix_listener lmtp {{\n    mode = 0660\n    user = postfix\n    group = postfix\n  }}\n\
         }}\n\
         service auth {{\n\
         \x20 unix_listener auth-postfix {{\n    mode = 0660\n    user = postfix\n    group = postfix\n  }}\n\
         }}\n\
         protocol lmtp {{\n  postmaster_address = postmaster@{host}\n}}\n",
        host = s.mail_host,
    );
    if !s.auth_penalty {
        out.push_str(
            "# Test stack: every client is 127.0.0.1, so no failed-login delay or penalty.\n\
             auth_failure_delay = 0\n\
             service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n",
        );
    }
    out
}

/// libpq's `key=value` connection string.
fn conninfo(db: &DbTarget) -> String {
    let mut out = format!(
        "host={} port={} dbname={} user={}",
        db.host, db.port, db.dbname, db.user
    );
    if let Some(password) = &db.password {
        let _ = write!(out, " password={password}");
    }
    out
}

/// Dovecot's SQL passdb and userdb. A login is refused for SMTP when the address cannot send
/// (catchall) and for IMAP when it has no mailbox (no-reply): `%s` is the service.
pub(super) fn dovecot_sql(s: &Stack) -> String {
    format!(
        "# Generated by `postier mailstack-config`: Dovecot reads Postier's mail views.\n\
         driver = pgsql\n\
         connect = {conninfo}\n\
         default_pass_scheme = ARGON2ID\n\
         # Postier stores raw argon2id PHC strings; Dovecot needs the scheme prefix.\n\
         password_query = SELECT address AS user, '{{ARGON2ID}}' || password_hash AS password \
         FROM mail_passwords WHERE address = '%u' \
         AND CASE WHEN '%s' = 'smtp' THEN sends ELSE receives END\n\
         # The mailbox lives under its address id: a deleted and re-created address starts empty.\n\
         user_query = SELECT address AS user, '{root}/' || mailbox_id AS home \
         FROM mail_mailboxes WHERE address = '%u'\n\
         iterate_query = SELECT address AS user FROM mail_mailboxes\n",
        conninfo = conninfo(&s.db),
        root = show(&s.mail_root),
    )
}

/// The mailbox-token passdb. XOAUTH2 and OAUTHBEARER hand the bearer token over as the
/// password; `%{sha256:password}` is its hex SHA-256, so the token never appears in the
/// query text (which Dovecot logs when a query fails). The lookup is the verification:
/// `nopassword` accepts the row, and the service (`%s`) must be within the token's scopes.
pub(super) fn dovecot_sql_tokens(s: &Stack) -> String {
    format!(
        "# Generated by `postier mailstack-config`: mailbox tokens (SASL XOAUTH2/OAUTHBEARER).\n\
         driver = pgsql\n\
         connect = {conninfo}\n\
         password_query = SELECT address AS user, NULL AS password, 'Y' AS nopassword \
         FROM mail_tokens WHERE address = '%u' AND token_hash = '%{{sha256:password}}' \
         AND CASE '%s' WHEN 'imap' THEN imap WHEN 'smtp' THEN smtp ELSE false END\n",
        conninfo = conninfo(&s.db),
    )
}

/// `pst_<id>_…` gives the 8-character id, anything else an empty string (no row). Only the
/// id reaches the query text: never `%w` itself, nor a slice of an address password.
const DEVICE_ID: &str = "%{if;%4w;eq;pst_;%4.8w;}";

/// The device-password passdb: the id selects one row, Dovecot verifies the argon2id hash of
/// the whole password, and the service (`%s`) must be one the device password opens.
pub(super) fn dovecot_sql_devices(s: &Stack) -> String {
    format!(
        "# Generated by `postier mailstack-config`: device passwords pst_<id>_<secret>.\n\
         driver = pgsql\n\
         connect = {conninfo}\n\
         default_pass_scheme = ARGON2ID\n\
         # %4w is the first 4 characters of the password, %4.8w the 8 after them.\n\
         password_query = SELECT address AS user, '{{ARGON2ID}}' || password_hash AS password \
         FROM mail_device_passwords WHERE address = '%u' AND public_id = '{DEVICE_ID}' \
         AND CASE '%s' WHEN 'imap' THEN imap WHEN 'pop3' THEN pop3 WHEN 'smtp' THEN smtp ELSE false END\n",
        conninfo = conninfo(&s.db),
    )
}

/// The passdb that records a device password's last use, run only after the device passdb
/// accepted the password (`skip = unauthenticated`): `%r` is the client's address (Postfix
/// passes its SMTP client's), `%s` the service.
pub(super) fn dovecot_sql_usage(usage: &DbTarget) -> String {
    format!(
        "# Generated by `postier mailstack-config`: records device passwords' last use.\n\
         driver = pgsql\n\
         connect = {conninfo}\n\
         password_query = SELECT mail_record_device_use('%u', '{DEVICE_ID}', '%r', '%s') AS user, \
         NULL AS password, 'Y' AS nopassword\n",
        conninfo = conninfo(usage),
    )
}

/// One Postfix pgsql lookup table.
pub(super) fn postfix_map(s: &Stack, query: &str) -> String {
    let mut out = format!(
        "# Generated by `postier mailstack-config`: a lookup in Postier's mail views.\n\
         hosts = inet:{}:{}\n\
         user = {}\n",
        s.db.host, s.db.port, s.db.user
    );
    if let Some(password) = &s.db.password {
        let _ = writeln!(out, "password = {password}");
    }
    let _ = writeln!(out, "dbname = {}", s.db.dbname);
    let _ = writeln!(out, "query = {query}");
    out
}

/// Postfix's main.cf: virtual domains, mailboxes and aliases from the views, delivery to
/// Dovecot over LMTP, SASL through Dovecot, and Postier's policy service asked at RCPT,
/// DATA and END-OF-MESSAGE.
pub(super) fn postfix_main_cf(s: &Stack) -> String {
    let dir = show(&s.dir);
    let log_dir = show(&s.log_dir());
    let run = show(&s.dovecot_run_dir());
    let policy = format!("check_policy_service inet:{}", s.policy);
    let (inet_interfaces, inet_protocols) = if s.listen.is_unspecified() {
        ("all".to_string(), "all")
    } else if s.listen.is_ipv4() {
        (s.listen.to_string(), "ipv4")
    } else {
        (s.listen.to_string(), "ipv6")
    };
    let outbound = match &s.outbound {
        Outbound::None => "default_transport = error:5.7.1 no outbound delivery from this server\n\
             relay_transport = error:5.7.1 no outbound delivery from this server\n\
             smtp_tls_security_level = none\n"
            .to_string(),
        Outbound::Direct => "smtp_tls_security_level = may\n".to_string(),
        Outbound::Relay(relay) => format!("relayhost = {relay}\nsmtp_tls_security_level = may\n"),
    };
    format!(
        "# Generated by `postier mailstack-config` for {dir}; regenerate instead of editing.\n\
         compatibility_level = 3.6\n\
         queue_directory = {queue}\n\
         data_directory = {data}\n\
         mail_owner = postfix\n\
         setgid_group = postdrop\n\
         myhostname = {host}\n\
         myorigin = $myhostname\n\
         mydestination =\n\
         local_recipient_maps =\n\
         local_transport = error:5.1.1 no local delivery on this server\n\
         inet_interfaces = {inet_interfaces}\n\
         inet_protocols = {inet_protocols}\n\
         mynetworks = {mynetworks}\n\
         # No syslog is assumed: postlogd writes the log (master.cf has the postlog service).\n\
         maillog_file = {log_dir}/postfix.log\n\
         maillog_file_prefixes = /var, /dev/stdout, {log_dir}\n\
         alias_maps =\n\
         alias_database =\n\
         biff = no\n\
         smtputf8_enable = no\n\
         append_dot_mydomain = no\n\
         # '+' is an ordinary character of Postier's local parts, not a detail separator.\n\
         recipient_delimiter =\n\
         {outbound}\
         virtual_mailbox_domains = {domains}\n\
         virtual_mailbox_maps = {mailboxes}\n\
         virtual_alias_maps = {aliases}\n\
         virtual_transport = lmtp:unix:{run}/lmtp\n\
         smtpd_sender_login_maps = {senders}\n\
         smtpd_tls_cert_file = {cert}\n\
         smtpd_tls_key_file = {key}\n\
         smtpd_tls_security_level = may\n\
         smtpd_tls_mandatory_protocols = >=TLSv1.2\n\
         smtpd_sasl_type = dovecot\n\
         smtpd_sasl_path = {run}/auth-postfix\n\
         smtpd_sasl_auth_enable = no\n\
         smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\n\
         # The policy service comes before any permit: an authenticated client must reach it.\n\
         smtpd_recipient_restrictions = check_recipient_access {send_only}, {policy}, permit\n\
         smtpd_data_restrictions = {policy}\n\
         smtpd_end_of_data_restrictions = {policy}\n\
         smtpd_policy_service_timeout = 10s\n\
         smtpd_policy_service_default_action = 451 4.3.5 policy service unavailable\n\
         # A message still undelivered after {delay} is announced to its sender (with how long\n\
         # it is retried); after {lifetime} it is returned with a final notice.\n\
         delay_warning_time = {delay}\n\
         maximal_queue_lifetime = {lifetime}\n\
         bounce_queue_lifetime = {lifetime}\n",
        queue = show(&s.queue_dir()),
        data = show(&s.data_dir()),
        host = s.mail_host,
        mynetworks = match s.listen {
            IpAddr::V4(_) => "127.0.0.0/8".to_string(),
            IpAddr::V6(_) => "[::1]/128".to_string(),
        },
        domains = s.map(POSTFIX_MAPS[0].0),
        mailboxes = s.map(POSTFIX_MAPS[1].0),
        aliases = s.map(POSTFIX_MAPS[2].0),
        senders = s.map(POSTFIX_MAPS[3].0),
        send_only = s.map(POSTFIX_MAPS[4].0),
        cert = show(&s.tls_cert),
        key = show(&s.tls_key),
        delay = s.delay_warning_time,
        lifetime = s.queue_lifetime,
    )
}

/// The options every authenticated submission listener shares.
const SUBMISSION_OPTIONS: &str = concat!(
    "  -o smtpd_tls_auth_only=yes\n",
    "  -o smtpd_sasl_auth_enable=yes\n",
    "  -o smtpd_sasl_security_options=noanonymous\n",
    "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n",
    "  -o smtpd_sender_restrictions=reject_sender_login_mismatch\n",
    "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n",
);

/// Postfix's master.cf: the listeners on the chosen address, then the internal services,
/// none of them chrooted (the SASL and LMTP sockets are absolute paths).
pub(super) fn postfix_master_cf(s: &Stack) -> String {
    let host = s.listen_host();
    let mut out = String::from(
        "# Generated by `postier mailstack-config`; regenerate instead of editing.\n\
         # service type  private unpriv  chroot  wakeup  maxproc command + args\n",
    );
    if s.ports.smtp != 0 {
        let _ = writeln!(out, "{host}:{} inet n - n - - smtpd", s.ports.smtp);
    }
    if s.ports.submission != 0 {
        let _ = writeln!(out, "{host}:{} inet n - n - - smtpd", s.ports.submission);
        out.push_str(
            "  -o syslog_name=postfix/submission\n  -o smtpd_tls_security_level=encrypt\n",
        );
        out.push_str(SUBMISSION_OPTIONS);
    }
    if s.ports.submissions != 0 {
        let _ = writeln!(out, "{host}:{} inet n - n - - smtpd", s.ports.submissions);
        out.push_str("  -o syslog_name=postfix/submissions\n  -o smtpd_tls_wrappermode=yes\n");
        out.push_str(SUBMISSION_OPTIONS);
    }
    out.push_str(
        "pickup     unix  n       -       n       60      1       pickup\n\
         cleanup    unix  n       -       n       -       0       cleanup\n\
         qmgr       unix  n       -       n       300     1       qmgr\n\
         tlsmgr     unix  -       -       n       1000?   1       tlsmgr\n\
         rewrite    unix  -       -       n       -       -       trivial-rewrite\n\
         bounce     unix  -       -       n       -       0       bounce\n\
         defer      unix  -       -       n       -       0       bounce\n\
         trace      unix  -       -       n       -       0       bounce\n\
         verify     unix  -       -       n       -       1       verify\n\
         flush      unix  n       -       n       1000?   0       flush\n\
         proxymap   unix  -       -       n       -       -       proxymap\n\
         proxywrite unix  -       -       n       -       1       proxymap\n\
         smtp       unix  -       -       n       -       -       smtp\n\
         relay      unix  -       -       n       -       -       smtp\n\
         showq      unix  n       -       n       -       -       showq\n\
         error      unix  -       -       n       -       -       error\n\
         retry      unix  -       -       n       -       -       error\n\
         discard    unix  -       -       n       -       -       discard\n\
         local      unix  -       n       n       -       -       local\n\
         virtual    unix  -       n       n       -       -       virtual\n\
         lmtp       unix  -       -       n       -       -       lmtp\n\
         anvil      unix  -       -       n       -       1       anvil\n\
         scache     unix  -       -       n       -       1       scache\n\
         postlog    unix-dgram n  -       n       -       1       postlogd\n",
    );
    out
}

/// Starts Dovecot, then Postfix. Both return once their masters run in the background.
pub(super) fn start_sh(s: &Stack) -> String {
    format!(
        "#!/bin/sh\n\
         # Generated by `postier mailstack-config`: starts Dovecot, then Postfix, as plain\n\
         # daemons on this folder's configuration. Run as root.\n\
         set -eu\n\
         DIR={dir}\n\
         dovecot -c \"$DIR/dovecot/dovecot.conf\"\n\
         # postfix(1) prints its errors only on a terminal: give it one when possible.\n\
         if command -v script >/dev/null 2>&1; then\n\
         \x20 script -qec \"postfix -c $DIR/postfix check\" /dev/null\n\
         else\n\
         \x20 postfix -c \"$DIR/postfix\" check\n\
         fi\n\
         postfix -c \"$DIR/postfix\" start\n",
        dir = show(&s.dir),
    )
}

/// Stops Postfix and Dovecot and waits until both masters are gone (their own commands
/// return before that), so that the ports can be reused at once.
pub(super) fn stop_sh(s: &Stack) -> String {
    format!(
        "#!/bin/sh\n\
         # Generated by `postier mailstack-config`: stops Postfix and Dovecot and waits until\n\
         # both master processes have exited.\n\
         set -u\n\
         DIR={dir}\n\
         pf=$(tr -dc 0-9 2>/dev/null < \"$DIR/postfix-data/master.lock\" || true)\n\
         dv=$(tr -dc 0-9 2>/dev/null < \"$DIR/run/dovecot/master.pid\" || true)\n\
         postfix -c \"$DIR/postfix\" stop >/dev/null 2>&1 || true\n\
         if [ -n \"$dv\" ]; then kill -TERM \"$dv\" 2>/dev/null || true; fi\n\
         for pid in $pf $dv; do\n\
         \x20 i=0\n\
         \x20 while kill -0 \"$pid\" 2>/dev/null; do\n\
         \x20   i=$((i + 1))\n\
         \x20   if [ \"$i\" -eq 200 ]; then kill -KILL \"$pid\" 2>/dev/null || true; fi\n\
         \x20   if [ \"$i\" -ge 300 ]; then echo \"process $pid did not stop\" >&2; exit 1; fi\n\
         \x20   sleep 0.05\n\
         \x20 done\n\
         done\n",
        dir = show(&s.dir),
    )
}

#[cfg(test)]
mod tests;
