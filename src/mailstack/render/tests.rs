//! Tests of the rendered Postfix and Dovecot files (pure functions, no daemon).

use super::*;

fn stack() -> Stack {
    Stack {
        dir: PathBuf::from("/var/tmp/ms"),
        db: DbTarget {
            host: "127.0.0.1".into(),
            port: 5432,
            dbname: "postier".into(),
            user: "postier_mail".into(),
            password: Some("s3cret".into()),
        },
        mail_host: "mail.example.test".into(),
        listen: "127.0.0.1".parse().unwrap(),
        ports: Ports {
            smtp: 10025,
            submission: 10587,
            submissions: 0,
            imap: 10143,
            imaps: 10993,
            pop3: 0,
            pop3s: 10995,
        },
        policy: "127.0.0.1:10040".into(),
        vmail_uid: 999,
        vmail_gid: 995,
        mail_root: PathBuf::from("/var/tmp/ms/vmail"),
        tls_cert: PathBuf::from("/var/tmp/ms/tls/cert.pem"),
        tls_key: PathBuf::from("/var/tmp/ms/tls/key.pem"),
        outbound: Outbound::None,
        auth_penalty: false,
        instance_name: "postier".into(),
        usage_db: Some(DbTarget {
            host: "127.0.0.1".into(),
            port: 5432,
            dbname: "postier".into(),
            user: "postier_mail_usage".into(),
            password: Some("us4ge".into()),
        }),
        delay_warning_time: "4h".into(),
        queue_lifetime: "5d".into(),
    }
}

fn setting<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
}

#[test]
fn the_policy_service_is_asked_before_any_permit() {
    let main = postfix_main_cf(&stack());
    let restrictions = setting(&main, "smtpd_recipient_restrictions").unwrap();
    let policy = restrictions
        .find("check_policy_service inet:127.0.0.1:10040")
        .unwrap();
    assert!(policy < restrictions.find("permit").unwrap());
    assert!(!restrictions.contains("permit_sasl_authenticated"));
    for key in ["smtpd_data_restrictions", "smtpd_end_of_data_restrictions"] {
        assert_eq!(
            setting(&main, key),
            Some("check_policy_service inet:127.0.0.1:10040")
        );
    }
}

#[test]
fn every_lookup_reads_a_mail_view_through_proxymap() {
    let s = stack();
    let main = postfix_main_cf(&s);
    for (key, file) in [
        ("virtual_mailbox_domains", "pgsql-domains.cf"),
        ("virtual_mailbox_maps", "pgsql-mailboxes.cf"),
        ("virtual_alias_maps", "pgsql-aliases.cf"),
        ("smtpd_sender_login_maps", "pgsql-senders.cf"),
    ] {
        assert_eq!(
            setting(&main, key),
            Some(format!("proxy:pgsql:/var/tmp/ms/postfix/{file}").as_str())
        );
    }
    for (_, query) in POSTFIX_MAPS {
        let from = query.split(" FROM ").nth(1).unwrap();
        let view = from.split_whitespace().next().unwrap();
        assert!(migration::MAIL_VIEWS.contains(&view), "{query}");
        let map = postfix_map(&s, query);
        assert!(map.contains("hosts = inet:127.0.0.1:5432\n"));
        assert!(map.contains("user = postier_mail\npassword = s3cret\ndbname = postier\n"));
    }
}

#[test]
fn master_cf_listens_on_the_chosen_address_without_chroot() {
    let master = postfix_master_cf(&stack());
    assert!(master.contains("127.0.0.1:10025 inet n - n - - smtpd\n"));
    assert!(master.contains("127.0.0.1:10587 inet n - n - - smtpd\n"));
    assert!(master.contains("-o smtpd_sender_restrictions=reject_sender_login_mismatch"));
    assert!(master.contains("postlog    unix-dgram n"));
    // A port of 0 turns the listener off.
    assert!(!master.contains("wrappermode"));
    for line in master.lines().filter(|l| !l.starts_with([' ', '#'])) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[4], "n", "chrooted: {line}");
    }
    let mut s = stack();
    s.listen = "::1".parse().unwrap();
    s.ports.submissions = 10465;
    let master = postfix_master_cf(&s);
    assert!(master.contains("[::1]:10465 inet n - n - - smtpd\n  -o syslog_name=postfix/submissions\n  -o smtpd_tls_wrappermode=yes\n"));
}

#[test]
fn dovecot_checks_argon2id_hashes_without_any_cache() {
    let s = stack();
    let sql = dovecot_sql(&s);
    assert!(sql.contains(
        "connect = host=127.0.0.1 port=5432 dbname=postier user=postier_mail password=s3cret\n"
    ));
    assert!(sql.contains("'{ARGON2ID}' || password_hash AS password FROM mail_passwords"));
    assert!(sql.contains("'/var/tmp/ms/vmail/' || mailbox_id AS home FROM mail_mailboxes"));
    let conf = dovecot_conf(&s);
    assert_eq!(setting(&conf, "auth_cache_size"), Some("0"));
    assert!(conf.contains("port = 10143\n"));
    assert!(conf.contains("base_dir = /var/tmp/ms/run/dovecot\n"));
    assert!(conf.contains("first_valid_uid = 999\nlast_valid_uid = 999\n"));
    assert!(conf.contains("anvil-auth-penalty"));
    let production = dovecot_conf(&Stack {
        auth_penalty: true,
        ..stack()
    });
    assert!(!production.contains("anvil-auth-penalty"));
    assert!(!production.contains("auth_failure_delay"));
}

/// The passdb blocks of dovecot.conf, in order, as their `args` file names and settings.
fn passdbs(conf: &str) -> Vec<String> {
    conf.split("passdb {")
        .skip(1)
        .map(|block| block.split("\n}").next().unwrap().trim().to_string())
        .collect()
}

#[test]
fn dovecot_tries_tokens_then_device_passwords_then_the_address_password() {
    let s = stack();
    let conf = dovecot_conf(&s);
    assert_eq!(
        setting(&conf, "auth_mechanisms"),
        Some("plain login xoauth2 oauthbearer")
    );
    let chain = passdbs(&conf);
    assert_eq!(chain.len(), 4, "{chain:?}");
    assert!(chain[0].contains("mechanisms = xoauth2 oauthbearer"));
    assert!(chain[0].contains(DOVECOT_SQL_TOKENS));
    assert!(chain[1].contains("mechanisms = plain login"));
    assert!(chain[1].contains(DOVECOT_SQL_DEVICES));
    assert!(chain[1].contains("result_success = continue-ok"));
    assert!(chain[2].contains(DOVECOT_SQL_USAGE));
    assert!(chain[2].contains("skip = unauthenticated"));
    for result in ["result_success", "result_failure", "result_internalfail"] {
        assert!(
            chain[2].contains(&format!("{result} = return-ok")),
            "{result}"
        );
    }
    assert!(chain[3].contains("dovecot-sql.conf.ext"));
    assert!(chain[3].contains("skip = authenticated"));
    // Without the usage role, a device password that matches ends the chain.
    let without = dovecot_conf(&Stack {
        usage_db: None,
        ..stack()
    });
    let chain = passdbs(&without);
    assert_eq!(chain.len(), 3);
    assert!(!chain[1].contains("continue-ok"));
}

#[test]
fn no_query_ever_holds_the_typed_password() {
    let s = stack();
    let usage = s.usage_db.clone().unwrap();
    for file in [
        dovecot_sql(&s),
        dovecot_sql_tokens(&s),
        dovecot_sql_devices(&s),
        dovecot_sql_usage(&usage),
    ] {
        let query = setting(&file, "password_query").unwrap();
        // Dovecot logs a failed query's text: %w (the password or token) must never be
        // in it, only the device id slice behind the pst_ test, or the token's hash.
        let without_allowed = query
            .replace("%{if;%4w;eq;pst_;%4.8w;}", "")
            .replace("%{sha256:password}", "");
        assert!(!without_allowed.contains("%w"), "{query}");
        assert!(!without_allowed.contains("password}"), "{query}");
    }
    assert!(dovecot_sql_tokens(&s)
        .contains("FROM mail_tokens WHERE address = '%u' AND token_hash = '%{sha256:password}'"));
    assert!(dovecot_sql_devices(&s).contains("FROM mail_device_passwords WHERE address = '%u' AND public_id = '%{if;%4w;eq;pst_;%4.8w;}'"));
    assert!(dovecot_sql_usage(&usage).contains("user=postier_mail_usage password=us4ge"));
    assert!(dovecot_sql_usage(&usage)
        .contains("SELECT mail_record_device_use('%u', '%{if;%4w;eq;pst_;%4.8w;}', '%r', '%s')"));
}

#[test]
fn pop3_listens_on_995_and_on_110_only_when_asked() {
    let s = stack();
    let conf = dovecot_conf(&s);
    assert_eq!(setting(&conf, "protocols"), Some("imap pop3 lmtp"));
    assert!(conf.contains(
        "inet_listener pop3s {\n    address = 127.0.0.1\n    port = 10995\n    ssl = yes\n"
    ));
    assert!(conf.contains("inet_listener pop3 {\n    address = 127.0.0.1\n    port = 0\n"));
    let mut s = stack();
    s.ports.pop3s = 0;
    let conf = dovecot_conf(&s);
    assert_eq!(setting(&conf, "protocols"), Some("imap lmtp"));
    assert!(!conf.contains("pop3-login"));
}

#[test]
fn postfix_warns_after_four_hours_and_returns_after_five_days() {
    let main = postfix_main_cf(&stack());
    assert_eq!(setting(&main, "delay_warning_time"), Some("4h"));
    assert_eq!(setting(&main, "maximal_queue_lifetime"), Some("5d"));
    assert_eq!(setting(&main, "bounce_queue_lifetime"), Some("5d"));
}

#[test]
fn outbound_mail_is_refused_direct_or_relayed() {
    let mut s = stack();
    assert!(postfix_main_cf(&s).contains("default_transport = error:"));
    s.outbound = Outbound::Direct;
    assert!(!postfix_main_cf(&s).contains("default_transport"));
    s.outbound = Outbound::Relay("[relay.example.test]:587".into());
    assert!(postfix_main_cf(&s).contains("relayhost = [relay.example.test]:587\n"));
}

#[test]
fn the_scripts_wait_for_both_masters() {
    let s = stack();
    assert!(start_sh(&s).contains("DIR=/var/tmp/ms\ndovecot -c"));
    let stop = stop_sh(&s);
    assert!(stop.contains("postfix-data/master.lock"));
    assert!(stop.contains("run/dovecot/master.pid"));
    assert!(stop.contains("kill -0"));
}
