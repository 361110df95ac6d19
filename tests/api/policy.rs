//! The Postfix policy service, spoken over TCP as Postfix speaks it: persistent connections,
//! per-pack recipient limits, the sliding 24 h budget, senders and aliases, generic
//! addresses, garbage, restarts and several instances, and the fail mode.

use std::time::Duration;

use chrono::{DateTime, Utc};
use postier::config::{PolicyCountStage, PolicyFailMode};
use postier::policy::cache::leaves_window_at;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::addresses::{create_for_me, STRONG};
use crate::helpers::{spawn_app_with, Backend, TestApp, TestUser};
use crate::mail_services::create_service;
use crate::on_both_backends;

on_both_backends!(
    a_persistent_connection_answers_many_requests_and_ignores_unknown_attributes,
    recipients_per_message_follow_the_pack_and_a_refused_message_stays_refused,
    mixed_case_recipients_logins_and_senders_are_normalised,
    the_24h_budget_defers_with_the_time_it_frees_up_and_slides,
    the_24h_budget_per_pack_counts_what_the_database_holds,
    the_sender_must_be_the_address_or_one_of_its_aliases,
    a_catchall_cannot_send_and_a_no_reply_address_can,
    garbage_closes_that_connection_only,
    a_restart_keeps_the_count_and_instances_share_it,
    counting_at_data_when_configured,
    when_the_database_is_down_the_fail_mode_closed_defers,
    when_the_database_is_down_the_fail_mode_open_lets_mail_through,
    stopping_closes_idle_connections_and_the_listener,
);

async fn policy_app(backend: Backend) -> TestApp {
    policy_app_with(backend, |_| {}).await
}

pub(crate) async fn policy_app_with(
    backend: Backend,
    customise: impl FnOnce(&mut postier::config::Config),
) -> TestApp {
    spawn_app_with(backend, |config| {
        config.policy_listen = Some("127.0.0.1:0".parse().unwrap());
        customise(config);
    })
    .await
}

// --- Fixtures: made through the API, as an organization owner would -----------------------

/// The account that owns every mail service of a test.
pub(crate) async fn new_owner(app: &TestApp) -> TestUser {
    app.user("owner@isp.test").await
}

/// A new mail service of `pack` on `domain` (the provider's free domain on the free pack).
async fn service(app: &TestApp, owner: &TestUser, pack: &str, domain: &str) -> String {
    let domain = (pack != "free").then_some(domain);
    create_service(app, owner, domain, pack).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn id_of(created: &Value) -> Uuid {
    created["id"].as_str().unwrap().parse().unwrap()
}

/// The personal address `address` on a new mail service of `pack`.
pub(crate) async fn sender_on(app: &TestApp, owner: &TestUser, pack: &str, address: &str) -> Uuid {
    let (local, domain) = address.split_once('@').unwrap();
    let service = service(app, owner, pack, domain).await;
    let created = create_for_me(app, owner, &service, local).await;
    assert_eq!(created["address"], address);
    id_of(&created)
}

/// A shared address (`for: several_users`) on `service`.
async fn shared_address(app: &TestApp, owner: &TestUser, service: &str, local: &str) -> Uuid {
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &owner.token,
            json!({ "local_part": local, "for": "several_users", "password": STRONG }),
        )
        .await;
    id_of(res.assert_status(201))
}

/// A generic address (`no_reply` or `catchall`) on `service`.
async fn generic_address(app: &TestApp, owner: &TestUser, service: &str, kind: &str) -> Uuid {
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses/generic"),
            &owner.token,
            json!({ "type": kind, "password": STRONG }),
        )
        .await;
    id_of(res.assert_status(201))
}

/// Recipients counted in the database for an address over all time.
pub(crate) async fn counted(app: &TestApp, address_id: Uuid) -> i64 {
    app.scalar_i64(&format!(
        "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM counters WHERE key = 'send:{address_id}'"
    ))
    .await
}

// --- A Postfix-like client ------------------------------------------------------------------

pub(crate) struct Policy {
    pub(crate) reader: BufReader<OwnedReadHalf>,
    pub(crate) writer: OwnedWriteHalf,
}

impl Policy {
    pub(crate) async fn connect(port: u16) -> Policy {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, writer) = stream.into_split();
        Policy {
            reader: BufReader::new(read),
            writer,
        }
    }

    pub(crate) async fn to(app: &TestApp) -> Policy {
        Policy::connect(app.policy_port.expect("the policy service is on")).await
    }

    /// Sends raw bytes and reads one reply: the action, without `action=`.
    pub(crate) async fn raw(&mut self, request: &[u8]) -> String {
        self.writer.write_all(request).await.unwrap();
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
            .await
            .expect("a reply in time")
            .unwrap();
        let action = line
            .strip_prefix("action=")
            .unwrap_or_else(|| panic!("not an action line: {line:?}"))
            .trim_end_matches('\n')
            .to_string();
        let mut empty = String::new();
        self.reader.read_line(&mut empty).await.unwrap();
        assert_eq!(empty, "\n", "a reply ends with an empty line");
        action
    }

    pub(crate) async fn ask(&mut self, attributes: &[(&str, String)]) -> String {
        let mut request = String::new();
        for (name, value) in attributes {
            request.push_str(&format!("{name}={value}\n"));
        }
        request.push('\n');
        self.raw(request.as_bytes()).await
    }

    /// Whether the server closed this connection (EOF or reset) within a few seconds.
    pub(crate) async fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(5), self.reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }
}

/// Every attribute Postfix 3.7 sends (MAILSTACK.md "Policy service: what Postfix sends").
pub(crate) fn postfix_request(
    stage: &str,
    login: &str,
    sender: &str,
    recipient: &str,
    recipient_count: usize,
    instance: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("request", "smtpd_access_policy".into()),
        ("protocol_state", stage.into()),
        ("protocol_name", "ESMTP".into()),
        ("client_address", "127.0.0.1".into()),
        ("client_name", "localhost".into()),
        ("reverse_client_name", "localhost".into()),
        ("client_port", "38736".into()),
        ("server_address", "127.0.0.1".into()),
        ("server_port", "10587".into()),
        ("helo_name", "e2e.test".into()),
        ("sender", sender.into()),
        ("recipient", recipient.into()),
        ("recipient_count", recipient_count.to_string()),
        ("queue_id", "96B23A1A00C".into()),
        ("instance", instance.into()),
        ("size", "201".into()),
        ("etrn_domain", String::new()),
        ("stress", String::new()),
        (
            "sasl_method",
            if login.is_empty() { "" } else { "PLAIN" }.into(),
        ),
        ("sasl_username", login.into()),
        ("sasl_sender", String::new()),
        ("ccert_subject", String::new()),
        ("ccert_issuer", String::new()),
        ("ccert_fingerprint", String::new()),
        ("ccert_pubkey_fingerprint", String::new()),
        ("encryption_protocol", "TLSv1.3".into()),
        ("encryption_cipher", "TLS_AES_256_GCM_SHA384".into()),
        ("encryption_keysize", "256".into()),
        ("policy_context", String::new()),
    ]
}

fn new_instance() -> String {
    format!("{}.0", Uuid::new_v4().simple())
}

#[derive(Debug)]
pub(crate) struct Outcome {
    rcpt: Vec<String>,
    data: Option<String>,
    end: Option<String>,
}

impl Outcome {
    pub(crate) fn delivered(&self) -> bool {
        self.end.as_deref() == Some("DUNNO")
    }
}

/// One message as Postfix runs it: RCPT per recipient, then DATA and END-OF-MESSAGE with the
/// number of accepted recipients, stopping where an SMTP server would.
pub(crate) async fn send(
    client: &mut Policy,
    login: &str,
    sender: &str,
    recipients: &[String],
) -> Outcome {
    let instance = new_instance();
    let mut rcpt = Vec::new();
    let mut accepted = 0;
    for recipient in recipients {
        let action = client
            .ask(&postfix_request(
                "RCPT", login, sender, recipient, 0, &instance,
            ))
            .await;
        if action == "DUNNO" {
            accepted += 1;
        }
        rcpt.push(action);
    }
    if accepted == 0 {
        return Outcome {
            rcpt,
            data: None,
            end: None,
        };
    }
    let data = client
        .ask(&postfix_request(
            "DATA", login, sender, "", accepted, &instance,
        ))
        .await;
    if data != "DUNNO" {
        return Outcome {
            rcpt,
            data: Some(data),
            end: None,
        };
    }
    let end = client
        .ask(&postfix_request(
            "END-OF-MESSAGE",
            login,
            sender,
            "",
            accepted,
            &instance,
        ))
        .await;
    Outcome {
        rcpt,
        data: Some(data),
        end: Some(end),
    }
}

pub(crate) fn recipients(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("r{i}@elsewhere.test")).collect()
}

#[track_caller]
fn assert_too_many(action: &str, limit: u32) {
    assert!(action.starts_with("REJECT 5.5.3 "), "{action}");
    assert!(
        action.contains(&format!("at most {limit} recipients")),
        "{action}"
    );
    assert!(action.contains("newsletter tool"), "{action}");
}

/// The RFC 3339 time in a budget deferral.
#[track_caller]
fn retry_after(action: &str) -> DateTime<Utc> {
    assert!(action.starts_with("DEFER 4.7.1 "), "{action}");
    let at = action
        .split("retry after ")
        .nth(1)
        .unwrap_or_else(|| panic!("no retry time in {action}"));
    DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&Utc)
}

async fn oldest_bucket(app: &TestApp, address_id: Uuid) -> i64 {
    app.scalar_i64(&format!(
        "SELECT MIN(bucket) FROM counters WHERE key = 'send:{address_id}'"
    ))
    .await
}

/// Moves the test clock to `at` (forward only).
fn advance_to(app: &TestApp, at: DateTime<Utc>) {
    let by = (at - app.clock.now()).to_std().unwrap_or_default();
    app.clock.advance(by);
}

// --- Tests ----------------------------------------------------------------------------------

async fn a_persistent_connection_answers_many_requests_and_ignores_unknown_attributes(
    backend: Backend,
) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    let alice = sender_on(&app, &owner, "premium", "alice@example.test").await;
    let mut client = Policy::to(&app).await;

    // 100 messages of 3 recipients on one connection: 500 requests, all accepted.
    for _ in 0..100 {
        let outcome = send(
            &mut client,
            "alice@example.test",
            "alice@example.test",
            &recipients(3),
        )
        .await;
        assert!(outcome.delivered(), "{outcome:?}");
    }
    assert_eq!(counted(&app, alice).await, 300);

    // Attributes this version does not know, in another order, are ignored.
    let mut request = postfix_request(
        "RCPT",
        "alice@example.test",
        "alice@example.test",
        "bob@elsewhere.test",
        0,
        &new_instance(),
    );
    request.reverse();
    request.push(("compatibility_level", "3.6".into()));
    request.push(("some_future_attribute", "x=y=z".into()));
    assert_eq!(client.ask(&request).await, "DUNNO");

    // Not authenticated (port 25), not hosted here, or a stage we do not judge: no opinion.
    for (stage, login) in [
        ("RCPT", ""),
        ("RCPT", "stranger@elsewhere.test"),
        ("CONNECT", "alice@example.test"),
        ("VRFY", "alice@example.test"),
    ] {
        let request = postfix_request(
            stage,
            login,
            "someone@elsewhere.test",
            "bob@example.test",
            0,
            &new_instance(),
        );
        assert_eq!(client.ask(&request).await, "DUNNO", "{stage} {login}");
    }
    // The minimal request Postfix could send.
    assert_eq!(
        client.raw(b"request=smtpd_access_policy\n\n").await,
        "DUNNO"
    );
    assert_eq!(counted(&app, alice).await, 300);
}

async fn recipients_per_message_follow_the_pack_and_a_refused_message_stays_refused(
    backend: Backend,
) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    let mut client = Policy::to(&app).await;
    for (pack, address, limit) in [
        ("free", "f@free.example", 10),
        ("starter", "s@starter.test", 100),
        ("premium", "p@premium.test", 100),
    ] {
        let id = sender_on(&app, &owner, pack, address).await;
        // Exactly the limit: delivered.
        let outcome = send(&mut client, address, address, &recipients(limit)).await;
        assert!(outcome.delivered(), "{pack}: {outcome:?}");
        assert_eq!(counted(&app, id).await, limit as i64);

        // One more: the extra recipient is refused, then DATA too, so nobody gets it.
        let instance = new_instance();
        for (i, recipient) in recipients(limit + 2).iter().enumerate() {
            let action = client
                .ask(&postfix_request(
                    "RCPT", address, address, recipient, 0, &instance,
                ))
                .await;
            if i < limit {
                assert_eq!(action, "DUNNO", "{pack} recipient {i}");
            } else {
                assert_too_many(&action, limit as u32);
            }
        }
        for stage in ["DATA", "END-OF-MESSAGE"] {
            let action = client
                .ask(&postfix_request(
                    stage, address, address, "", limit, &instance,
                ))
                .await;
            assert_too_many(&action, limit as u32);
        }
        assert_eq!(counted(&app, id).await, limit as i64, "{pack}");

        // DATA is checked with Postfix's own count too (a transaction this instance did not
        // see, e.g. after a restart).
        let action = client
            .ask(&postfix_request(
                "DATA",
                address,
                address,
                "",
                limit + 1,
                &new_instance(),
            ))
            .await;
        assert_too_many(&action, limit as u32);
    }
}

async fn mixed_case_recipients_logins_and_senders_are_normalised(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    let id = sender_on(&app, &owner, "free", "alice@free.example").await;
    let mut client = Policy::to(&app).await;

    // Ten recipients, one of them twice in another case: still ten recipients.
    let mut to = recipients(10);
    to.push("R1@ElseWhere.TEST".into());
    let outcome = send(&mut client, "Alice@Free.Example", "ALICE@free.example", &to).await;
    assert!(outcome.rcpt.iter().all(|a| a == "DUNNO"), "{outcome:?}");
    assert!(outcome.delivered(), "{outcome:?}");
    // Postfix reported 11 accepted RCPTs; the distinct recipients are what counts.
    assert_eq!(counted(&app, id).await, 10);

    // Eleven distinct ones are too many, whatever their case.
    let mut to = recipients(10);
    to.push("New.Person@ElseWhere.TEST".into());
    let outcome = send(&mut client, "alice@free.example", "alice@free.example", &to).await;
    assert_too_many(&outcome.rcpt[10], 10);
    assert_too_many(outcome.data.as_deref().unwrap(), 10);
    assert_eq!(counted(&app, id).await, 10);
}

async fn the_24h_budget_defers_with_the_time_it_frees_up_and_slides(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    let id = sender_on(&app, &owner, "free", "budget@free.example").await;
    let login = "budget@free.example";
    let mut client = Policy::to(&app).await;

    // 250 recipients now, 250 more an hour later: the whole free budget of 500.
    for _ in 0..25 {
        assert!(send(&mut client, login, login, &recipients(10))
            .await
            .delivered());
    }
    app.clock.advance(Duration::from_secs(3600));
    for _ in 0..24 {
        assert!(send(&mut client, login, login, &recipients(10))
            .await
            .delivered());
    }
    assert!(send(&mut client, login, login, &recipients(5))
        .await
        .delivered());
    // 495 sent: within one message, the 496th to 500th recipients fit, the 501st does not.
    let outcome = send(&mut client, login, login, &recipients(10)).await;
    assert!(
        outcome.rcpt[..5].iter().all(|a| a == "DUNNO"),
        "{outcome:?}"
    );
    assert!(
        outcome.rcpt[5..]
            .iter()
            .all(|a| a.starts_with("DEFER 4.7.1 ")),
        "{outcome:?}"
    );
    assert!(
        outcome.delivered(),
        "the five accepted are sent: {outcome:?}"
    );
    assert_eq!(counted(&app, id).await, 500);

    // Over budget: deferred (not rejected) with the moment the oldest minute leaves the window.
    let outcome = send(&mut client, login, login, &recipients(1)).await;
    let retry = retry_after(&outcome.rcpt[0]);
    let oldest = oldest_bucket(&app, id).await;
    assert_eq!(Some(retry), leaves_window_at(oldest));
    assert!(outcome.rcpt[0].contains("at most 500 recipients per 24 hours"));
    let mail = client
        .ask(&postfix_request(
            "MAIL",
            login,
            login,
            "",
            0,
            &new_instance(),
        ))
        .await;
    assert_eq!(retry_after(&mail), retry, "MAIL is deferred too");

    let usage = postier::policy::usage(app.db(), id, app.clock.now())
        .await
        .unwrap();
    assert_eq!(usage.pack, postier::domain::Pack::Free);
    assert_eq!(
        (usage.recipients_per_message, usage.messages_per_24h),
        (10, 500)
    );
    assert_eq!((usage.sent_last_24h, usage.remaining), (500, 0));
    assert_eq!(usage.frees_at, Some(retry));
    assert!(usage.can_send);
    // The same figures through the API, for whoever sees the address; 404 for a stranger.
    let token = app.login(&owner.login, &owner.password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .get(&format!("/v1/addresses/{id}/sending"), &token)
        .await;
    let body = res.assert_status(200);
    assert_eq!(body["pack"], "free");
    assert_eq!(body["recipients_per_message"], 10);
    assert_eq!(body["messages_per_24h"], 500);
    assert_eq!(body["sent_last_24h"], 500);
    assert_eq!(body["remaining"], 0);
    assert_eq!(
        body["frees_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        retry
    );
    let stranger = app.user("stranger@isp.test").await;
    app.get(&format!("/v1/addresses/{id}/sending"), &stranger.token)
        .await
        .assert_problem(404, "not_found");

    // A second before: still deferred. At that moment: the oldest recipients have left.
    advance_to(&app, retry - chrono::Duration::seconds(1));
    let outcome = send(&mut client, login, login, &recipients(1)).await;
    assert!(outcome.rcpt[0].starts_with("DEFER 4.7.1 "), "{outcome:?}");
    advance_to(&app, retry + chrono::Duration::milliseconds(10));
    let outcome = send(&mut client, login, login, &recipients(10)).await;
    assert!(outcome.delivered(), "{outcome:?}");
    let usage = postier::policy::usage(app.db(), id, app.clock.now())
        .await
        .unwrap();
    assert!(usage.sent_last_24h <= 500 && usage.sent_last_24h > 250);
}

async fn the_24h_budget_per_pack_counts_what_the_database_holds(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    let mut client = Policy::to(&app).await;
    for (pack, address, budget) in [
        ("free", "a@free.example", 500),
        ("starter", "b@starter.test", 500),
        ("premium", "c@premium.test", 1440),
    ] {
        let id = sender_on(&app, &owner, pack, address).await;
        // Counted an hour ago by another instance: 5 short of the budget.
        let earlier = app.clock.now() - chrono::Duration::hours(1);
        postier::repo::counters::add(app.db(), &format!("send:{id}"), earlier, budget - 5)
            .await
            .unwrap();
        let outcome = send(&mut client, address, address, &recipients(6)).await;
        assert!(
            outcome.rcpt[..5].iter().all(|a| a == "DUNNO"),
            "{pack}: {outcome:?}"
        );
        assert!(
            outcome.rcpt[5].starts_with("DEFER 4.7.1 "),
            "{pack}: {outcome:?}"
        );
        assert!(outcome.rcpt[5].contains(&format!("at most {budget} recipients")));
        assert!(outcome.delivered(), "{pack}: {outcome:?}");
        assert_eq!(counted(&app, id).await, budget);
        let outcome = send(&mut client, address, address, &recipients(1)).await;
        assert!(
            outcome.rcpt[0].starts_with("DEFER 4.7.1 "),
            "{pack}: {outcome:?}"
        );
    }
}

async fn the_sender_must_be_the_address_or_one_of_its_aliases(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    let service = service(&app, &owner, "premium", "example.test").await;
    let alice = id_of(&create_for_me(&app, &owner, &service, "alice").await);
    shared_address(&app, &owner, &service, "team").await;
    app.post(
        &format!("/v1/addresses/{alice}/aliases"),
        &owner.token,
        json!({ "local_part": "info" }),
    )
    .await
    .assert_status(201);
    let mut client = Policy::to(&app).await;
    let login = "alice@example.test";

    for sender in ["alice@example.test", "Info@Example.TEST", ""] {
        let outcome = send(&mut client, login, sender, &recipients(2)).await;
        assert!(outcome.delivered(), "{sender:?}: {outcome:?}");
    }
    // `+` is an ordinary character of local parts: alice+news@ is another address.
    for sender in [
        "team@example.test",
        "alice+news@example.test",
        "alice@elsewhere.test",
        "ceo@bank.test",
    ] {
        let instance = new_instance();
        for stage in ["RCPT", "DATA", "END-OF-MESSAGE"] {
            let action = client
                .ask(&postfix_request(
                    stage,
                    login,
                    sender,
                    "bob@elsewhere.test",
                    1,
                    &instance,
                ))
                .await;
            assert!(
                action.starts_with("REJECT 5.7.1 "),
                "{sender} {stage}: {action}"
            );
        }
    }
    // The shared address sends as itself.
    let outcome = send(
        &mut client,
        "team@example.test",
        "team@example.test",
        &recipients(1),
    )
    .await;
    assert!(outcome.delivered());

    // Removing the alias takes effect once the cache entry expires (5 s).
    app.delete(
        &format!("/v1/addresses/{alice}/aliases/info@example.test"),
        &owner.token,
    )
    .await
    .assert_status(204);
    app.clock.advance(Duration::from_secs(6));
    let outcome = send(&mut client, login, "info@example.test", &recipients(1)).await;
    assert!(outcome.rcpt[0].starts_with("REJECT 5.7.1 "), "{outcome:?}");
}

async fn a_catchall_cannot_send_and_a_no_reply_address_can(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    let service = service(&app, &owner, "premium", "shop.test").await;
    let catchall = generic_address(&app, &owner, &service, "catchall").await;
    let no_reply = generic_address(&app, &owner, &service, "no_reply").await;
    let mut client = Policy::to(&app).await;

    let outcome = send(
        &mut client,
        "catchall@shop.test",
        "catchall@shop.test",
        &recipients(1),
    )
    .await;
    assert!(
        outcome.rcpt[0].starts_with("REJECT 5.7.1 ") && outcome.rcpt[0].contains("catchall"),
        "{outcome:?}"
    );
    assert_eq!(counted(&app, catchall).await, 0);
    let usage = postier::policy::usage(app.db(), catchall, app.clock.now())
        .await
        .unwrap();
    assert!(!usage.can_send);

    let outcome = send(
        &mut client,
        "no-reply@shop.test",
        "no-reply@shop.test",
        &recipients(3),
    )
    .await;
    assert!(outcome.delivered(), "{outcome:?}");
    assert_eq!(counted(&app, no_reply).await, 3);
}

async fn garbage_closes_that_connection_only(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    sender_on(&app, &owner, "premium", "alice@example.test").await;
    let login = "alice@example.test";
    let mut good = Policy::to(&app).await;
    assert!(send(&mut good, login, login, &recipients(1))
        .await
        .delivered());

    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"request=smtpd_access_policy\nsender=\xff\xfe@x\n\n".to_vec(),
        format!(
            "request=smtpd_access_policy\nsender={}\n\n",
            "a".repeat(10_000)
        )
        .into_bytes(),
        "x=y\n".repeat(1000).into_bytes(),
        b"protocol_state=RCPT\nsasl_username=alice@example.test\n\n".to_vec(),
    ];
    for bytes in garbage {
        let mut bad = Policy::to(&app).await;
        // The server may close before reading everything: a write error is fine.
        let _ = bad.writer.write_all(&bytes).await;
        assert!(
            bad.closed_by_server().await,
            "closed after {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        );
    }

    // The well-behaved connection and new ones are unaffected.
    assert!(send(&mut good, login, login, &recipients(2))
        .await
        .delivered());
    let mut fresh = Policy::to(&app).await;
    assert!(send(&mut fresh, login, login, &recipients(2))
        .await
        .delivered());
}

async fn a_restart_keeps_the_count_and_instances_share_it(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    let id = sender_on(&app, &owner, "free", "daily@free.example").await;
    let login = "daily@free.example";
    let mut client = Policy::to(&app).await;
    for _ in 0..20 {
        assert!(send(&mut client, login, login, &recipients(10))
            .await
            .delivered());
    }
    app.clock.advance(Duration::from_secs(6 * 3600));
    for _ in 0..10 {
        assert!(send(&mut client, login, login, &recipients(10))
            .await
            .delivered());
    }
    assert_eq!(counted(&app, id).await, 300);

    // A new process in the middle of the day: nothing in memory, the count comes back.
    app.clock.advance(Duration::from_secs(2 * 3600));
    let restarted = app
        .spawn_instance(|config| config.policy_listen = Some("127.0.0.1:0".parse().unwrap()))
        .await;
    let mut after = Policy::connect(restarted.policy_port.unwrap()).await;
    for i in 0..20 {
        let outcome = send(&mut after, login, login, &recipients(10)).await;
        assert!(outcome.delivered(), "message {i}: {outcome:?}");
    }
    let outcome = send(&mut after, login, login, &recipients(1)).await;
    assert!(outcome.rcpt[0].starts_with("DEFER 4.7.1 "), "{outcome:?}");
    assert_eq!(counted(&app, id).await, 500);
    let usage = postier::policy::usage(&restarted.state.db, id, app.clock.now())
        .await
        .unwrap();
    assert_eq!(usage.sent_last_24h, 500);

    // The first instance, still running, sees the other's count once its cache (2 s) expires.
    app.clock.advance(Duration::from_secs(3));
    let outcome = send(&mut client, login, login, &recipients(1)).await;
    assert!(outcome.rcpt[0].starts_with("DEFER 4.7.1 "), "{outcome:?}");
}

async fn counting_at_data_when_configured(backend: Backend) {
    let app = policy_app_with(backend, |config| {
        config.policy_count_at = PolicyCountStage::Data;
    })
    .await;
    let owner = new_owner(&app).await;
    let id = sender_on(&app, &owner, "starter", "data@starter.test").await;
    let login = "data@starter.test";
    let mut client = Policy::to(&app).await;
    let instance = new_instance();
    for recipient in recipients(3) {
        let action = client
            .ask(&postfix_request(
                "RCPT", login, login, &recipient, 0, &instance,
            ))
            .await;
        assert_eq!(action, "DUNNO");
    }
    let data = client
        .ask(&postfix_request("DATA", login, login, "", 3, &instance))
        .await;
    assert_eq!(data, "DUNNO");
    assert_eq!(counted(&app, id).await, 3, "counted at DATA");
    let end = client
        .ask(&postfix_request(
            "END-OF-MESSAGE",
            login,
            login,
            "",
            3,
            &instance,
        ))
        .await;
    assert_eq!(end, "DUNNO");
    assert_eq!(counted(&app, id).await, 3, "not counted twice");
}

async fn when_the_database_is_down_the_fail_mode_closed_defers(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    assert_eq!(app.state.config.policy_fail_mode, PolicyFailMode::Closed);
    sender_on(&app, &owner, "premium", "alice@example.test").await;
    let login = "alice@example.test";
    let mut client = Policy::to(&app).await;
    assert!(send(&mut client, login, login, &recipients(2))
        .await
        .delivered());

    app.db().clone().close().await.unwrap();
    // Past every cache lifetime: each decision needs the database.
    app.clock.advance(Duration::from_secs(10));
    let outcome = send(&mut client, login, login, &recipients(1)).await;
    assert!(outcome.rcpt[0].starts_with("DEFER 4.3.0 "), "{outcome:?}");
    let end = client
        .ask(&postfix_request(
            "END-OF-MESSAGE",
            login,
            login,
            "",
            1,
            &new_instance(),
        ))
        .await;
    assert!(end.starts_with("DEFER 4.3.0 "), "{end}");
    // What needs no database is still answered.
    let inbound = client
        .ask(&postfix_request(
            "RCPT",
            "",
            "someone@elsewhere.test",
            "alice@example.test",
            0,
            &new_instance(),
        ))
        .await;
    assert_eq!(inbound, "DUNNO");
}

async fn when_the_database_is_down_the_fail_mode_open_lets_mail_through(backend: Backend) {
    let app = policy_app_with(backend, |config| {
        config.policy_fail_mode = PolicyFailMode::Open;
    })
    .await;
    let owner = new_owner(&app).await;
    sender_on(&app, &owner, "free", "alice@free.example").await;
    let login = "alice@free.example";
    let mut client = Policy::to(&app).await;
    assert!(send(&mut client, login, login, &recipients(2))
        .await
        .delivered());

    app.db().clone().close().await.unwrap();
    app.clock.advance(Duration::from_secs(10));
    let outcome = send(&mut client, login, login, &recipients(3)).await;
    assert!(outcome.delivered(), "{outcome:?}");
    assert!(outcome.rcpt.iter().all(|a| a == "DUNNO"), "{outcome:?}");
}

async fn stopping_closes_idle_connections_and_the_listener(backend: Backend) {
    let app = policy_app(backend).await;
    let owner = new_owner(&app).await;
    sender_on(&app, &owner, "starter", "alice@example.test").await;
    let engine = std::sync::Arc::new(postier::policy::Engine::new(
        app.db().clone(),
        app.clock.clone(),
        &app.state.config,
    ));
    let limits = postier::policy::server::Limits::from_config(&app.state.config);
    let server =
        postier::policy::PolicyServer::start("127.0.0.1:0".parse().unwrap(), engine, limits)
            .await
            .unwrap();
    let port = server.local_addr().port();
    let mut client = Policy::connect(port).await;
    let login = "alice@example.test";
    assert!(send(&mut client, login, login, &recipients(2))
        .await
        .delivered());

    server.stop(Duration::from_secs(5)).await;
    assert!(client.closed_by_server().await);
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}
