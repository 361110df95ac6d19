//! Tests of the options, the database URL and the generated tree of `mailstack-config`.

use super::*;

#[test]
fn a_database_url_is_split_for_the_daemons() {
    let db = parse_database_url("postgres://postier_mail:s3cret@127.0.0.1:5433/postier").unwrap();
    assert_eq!(
        db,
        DbTarget {
            host: "127.0.0.1".into(),
            port: 5433,
            dbname: "postier".into(),
            user: "postier_mail".into(),
            password: Some("s3cret".into()),
        }
    );
    let db = parse_database_url("postgresql://mail@db.internal/postier").unwrap();
    assert_eq!((db.port, db.password), (5432, None));
}

#[test]
fn database_urls_the_files_cannot_hold_are_refused() {
    for url in [
        "sqlite://data/postier.db",
        "postgres://mail:pa%20ss@127.0.0.1/postier",
        "postgres://mail:pa'ss@127.0.0.1/postier",
        "postgres://Mail@127.0.0.1/postier",
        "postgres://mail@127.0.0.1/",
        "postgres://mail@127.0.0.1/postier?sslmode=require",
    ] {
        assert!(parse_database_url(url).is_err(), "{url}");
    }
}

#[test]
fn the_role_may_select_the_mail_views_and_nothing_else() {
    let db = parse_database_url("postgres://postier_mail:s3cret@127.0.0.1/postier").unwrap();
    let sql = role_sql(&db).unwrap();
    assert!(sql.contains("CREATE ROLE \"postier_mail\" LOGIN PASSWORD 's3cret';"));
    assert!(sql.contains(
        "GRANT SELECT ON mail_domains, mail_mailboxes, mail_send_only, mail_aliases, mail_senders, mail_passwords, mail_auto_replies, mail_device_passwords, mail_tokens TO \"postier_mail\";"
    ));
    assert!(sql.contains("default_transaction_read_only = on"));
    assert_eq!(sql.matches("GRANT SELECT").count(), 1);
    assert!(!sql.contains("ALL TABLES"));
    assert!(!sql.contains("EXECUTE"));
}

#[test]
fn the_usage_role_may_execute_one_function_and_nothing_else() {
    let usage =
        parse_database_url("postgres://postier_mail_usage:us4ge@127.0.0.1/postier").unwrap();
    let sql = usage_role_sql(&usage).unwrap();
    assert!(sql.contains("CREATE ROLE \"postier_mail_usage\" LOGIN PASSWORD 'us4ge';"));
    assert!(sql.contains(
        "GRANT EXECUTE ON FUNCTION mail_record_device_use(text, text, text, text) TO \"postier_mail_usage\";"
    ));
    assert_eq!(sql.matches("GRANT ").count(), 3);
    assert!(!sql.contains("SELECT ON"));
}

#[test]
fn the_usage_role_is_another_role_on_the_same_database() {
    let ok = resolve(&args(&[
        "--self-signed",
        "--usage-database-url",
        "postgres://postier_mail_usage:us4ge@127.0.0.1/postier",
    ]))
    .unwrap();
    assert_eq!(ok.usage_db.unwrap().user, "postier_mail_usage");
    for url in [
        "postgres://postier_mail:s3cret@127.0.0.1/postier",
        "postgres://postier_mail_usage:us4ge@127.0.0.1/other",
        "postgres://postier_mail_usage:us4ge@db.internal/postier",
    ] {
        match resolve(&args(&["--self-signed", "--usage-database-url", url])) {
            Err(MailstackError::Invalid { option, .. }) => {
                assert_eq!(option, "--usage-database-url", "{url}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

/// What customers are told (server settings, autoconfig, autodiscover, profiles, DNS
/// records) must be what the generated stack serves by default.
#[test]
fn every_port_mail_clients_are_told_is_a_default_listener() {
    let stack = resolve(&args(&["--self-signed"])).unwrap();
    let p = stack.ports;
    let listening = [
        p.smtp,
        p.submission,
        p.submissions,
        p.imap,
        p.imaps,
        p.pop3,
        p.pop3s,
    ];
    for endpoint in crate::domain::CLIENT_ENDPOINTS {
        assert!(listening.contains(&endpoint.port), "{endpoint:?}");
    }
    let records = crate::dns::expected_records("famille.example", "mail.example", "s", "k");
    for record in records {
        match record.port {
            // Autodiscover is answered by Postier's HTTPS behind the mail host.
            Some(443) => assert_eq!(record.name, "_autodiscover._tcp.famille.example"),
            Some(port) => assert!(listening.contains(&port), "{record:?}"),
            None => {}
        }
    }
    assert_eq!(p.smtp, 25);
    assert_eq!(p.pop3, 0, "plain POP3 is only offered when asked");
}

fn args(extra: &[&str]) -> MailstackArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MailstackArgs,
    }
    let dir: &[&str] = if extra.contains(&"--dir") {
        &[]
    } else {
        &["--dir", "/var/tmp/ms"]
    };
    let base = [
        "postier",
        "--database-url",
        "postgres://postier_mail:s3cret@127.0.0.1/postier",
        "--vmail-uid",
        "999",
        "--vmail-gid",
        "995",
    ];
    Cli::try_parse_from(base.iter().chain(dir).chain(extra))
        .unwrap()
        .args
}

#[test]
fn options_resolve_into_a_stack_with_production_defaults() {
    let stack = resolve(&args(&["--self-signed"])).unwrap();
    assert_eq!(stack.ports.smtp, 25);
    assert_eq!(stack.ports.submission, 587);
    assert_eq!(stack.ports.imaps, 993);
    assert_eq!((stack.ports.pop3, stack.ports.pop3s), (0, 995));
    assert_eq!(
        (
            stack.delay_warning_time.as_str(),
            stack.queue_lifetime.as_str()
        ),
        ("4h", "5d")
    );
    assert!(stack.usage_db.is_none());
    assert_eq!(stack.outbound, Outbound::Direct);
    assert!(stack.auth_penalty);
    assert_eq!(stack.mail_root, PathBuf::from("/var/tmp/ms/vmail"));
    assert_eq!(stack.tls_cert, PathBuf::from("/var/tmp/ms/tls/cert.pem"));
    let stack = resolve(&args(&[
        "--tls-cert",
        "/etc/ssl/m/cert.pem",
        "--tls-key",
        "/etc/ssl/m/key.pem",
        "--outbound",
        "[relay.example.test]:587",
        "--no-auth-penalty",
    ]))
    .unwrap();
    assert_eq!(stack.tls_key, PathBuf::from("/etc/ssl/m/key.pem"));
    assert_eq!(
        stack.outbound,
        Outbound::Relay("[relay.example.test]:587".into())
    );
    assert!(!stack.auth_penalty);
}

#[test]
fn options_the_files_cannot_hold_are_refused() {
    let long = format!("/var/tmp/{}", "d".repeat(70));
    for (extra, option) in [
        (vec![], "--tls-cert"),
        (vec!["--self-signed", "--dir", long.as_str()], "--dir"),
        (vec!["--self-signed", "--dir", "/var/tmp/my stack"], "--dir"),
        (
            vec!["--self-signed", "--outbound", "smtp.example"],
            "--outbound",
        ),
        (vec!["--self-signed", "--policy", "127.0.0.1"], "--policy"),
        (
            vec!["--self-signed", "--mail-host", "localhost"],
            "--mail-host",
        ),
        (
            vec!["--self-signed", "--instance-name", "a b"],
            "--instance-name",
        ),
        (
            vec!["--self-signed", "--delay-warning-time", "4 hours"],
            "--delay-warning-time",
        ),
        (
            vec!["--self-signed", "--queue-lifetime", "d"],
            "--queue-lifetime",
        ),
    ] {
        match resolve(&args(&extra)) {
            Err(MailstackError::Invalid { option: got, .. }) => assert_eq!(got, option),
            other => panic!("{extra:?}: {other:?}"),
        }
    }
}

#[test]
fn system_users_are_read_from_etc_passwd() {
    assert_eq!(lookup_user("root"), Some((0, 0)));
    assert_eq!(lookup_group("root"), Some(0));
    assert_eq!(lookup_user("no-such-user-here"), None);
}
