//! Webhooks: endpoints and who manages them, safe targets, deliveries in the Standard
//! Webhooks format (checked by a Rust verifier and by the `standardwebhooks` reference
//! library), retries and every attempt, disabling and the owners' e-mail, pings,
//! redeliveries, secret rotation, redirects and answer limits, and a target re-checked at
//! delivery after DNS changed. The crash test with the real binary is in `webhook_crash`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::dns_server::{TestDns, ZoneRecord};
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestUser};
use crate::mail_services::{create_service, org_events};
use crate::on_both_backends;
use crate::sessions::claims;
use crate::smtp_server::TestSmtp;
use crate::webhook_receiver::{signed_by, verify_with_standardwebhooks, Answer, Receiver};

on_both_backends!(
    create_webhook_returns_201_with_the_secret_once_and_never_again,
    webhook_urls_are_refused_unless_https_and_public_or_allowed,
    only_owners_and_admins_manage_webhooks_and_strangers_get_404,
    changes_are_delivered_signed_in_the_standard_webhooks_format,
    failed_attempts_are_retried_and_every_attempt_is_listed,
    an_endpoint_failing_past_the_limit_is_disabled_and_its_owners_are_emailed,
    pings_and_redeliveries_resend_the_message_with_its_webhook_id,
    a_rotated_secret_signs_beside_the_new_one_for_its_grace_period,
    redirects_are_not_followed_and_long_answers_are_cut,
    a_target_is_checked_again_at_delivery_after_resolving_its_name,
    a_receiver_slower_than_the_time_limit_is_a_failed_attempt_then_retried,
    a_login_is_delivered_to_the_endpoints_of_its_personal_organization_that_subscribe,
);

pub async fn app_allowing_loopback(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| {
        c.webhook_allow_hosts = vec!["127.0.0.1".into()]
    })
    .await
}

pub async fn create_webhook(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let res = app
        .post(
            &format!("/v1/organizations/{}/webhooks", user.org_id),
            &user.token,
            body,
        )
        .await;
    let created = res.assert_status(201).clone();
    // Location names the endpoint, as every creation does (and an Idempotency-Key replays).
    let location = res.headers.get("location").and_then(|v| v.to_str().ok());
    let expected = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    assert_eq!(location, Some(expected.as_str()));
    created
}

pub async fn rename(app: &TestApp, user: &TestUser, name: &str) {
    app.patch(
        &format!("/v1/organizations/{}", user.org_id),
        &user.token,
        json!({ "name": name }),
    )
    .await
    .assert_status(200);
}

/// The user with a new access token (after the clock moved past the old one's expiry).
async fn fresh_token(app: &TestApp, user: TestUser) -> TestUser {
    let session = app.login(&user.login, &user.password).await;
    let token = session.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    TestUser { token, ..user }
}

async fn deliveries(app: &TestApp, user: &TestUser, webhook_id: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/v1/webhooks/{webhook_id}/deliveries"),
            &user.token,
        )
        .await;
    res.assert_status(200)["items"].as_array().unwrap().clone()
}

async fn webhook(app: &TestApp, user: &TestUser, webhook_id: &str) -> Value {
    let res = app
        .get(&format!("/v1/webhooks/{webhook_id}"), &user.token)
        .await;
    res.assert_status(200).clone()
}

/// Waits until the endpoint's state satisfies `done` (the worker runs beside the test).
async fn wait_for_webhook(
    app: &TestApp,
    user: &TestUser,
    webhook_id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..300 {
        let current = webhook(app, user, webhook_id).await;
        if done(&current) {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the webhook never reached the expected state");
}

/// Waits until the deliveries satisfy `done`.
async fn wait_for_deliveries(
    app: &TestApp,
    user: &TestUser,
    webhook_id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..300 {
        let current = deliveries(app, user, webhook_id).await;
        if done(&current) {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the deliveries never reached the expected state: {:#}",
        json!(deliveries(app, user, webhook_id).await)
    );
}

async fn create_webhook_returns_201_with_the_secret_once_and_never_again(backend: Backend) {
    let app = app_allowing_loopback(backend).await;
    let alice = app.user("alice@example.com").await;
    let created = create_webhook(
        &app,
        &alice,
        json!({ "url": "http://127.0.0.1:9/hook", "description": "billing" }),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["event_types"], Value::Null);
    assert_eq!(created["description"], "billing");
    let id = created["id"].as_str().unwrap();

    let one = app.get(&format!("/v1/webhooks/{id}"), &alice.token).await;
    assert!(one.assert_status(200).get("secret").is_none());
    assert!(!one.text.contains(&secret));
    let list = app
        .get(
            &format!("/v1/organizations/{}/webhooks", alice.org_id),
            &alice.token,
        )
        .await;
    assert_eq!(list.assert_status(200)["items"][0]["id"], id);
    assert!(!list.text.contains(&secret));
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    assert_eq!(
        events.assert_status(200)["items"][0]["action"],
        "webhook.created"
    );
    assert!(!events.text.contains(&secret));
    assert!(!events.text.contains(&secret["whsec_".len()..]));
    // Its own creation is not its first message.
    assert!(deliveries(&app, &alice, id).await.is_empty());
}

async fn webhook_urls_are_refused_unless_https_and_public_or_allowed(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let path = format!("/v1/organizations/{}/webhooks", alice.org_id);
    for (url, why) in [
        ("http://93.184.215.14/hook", "https"),
        ("https://127.0.0.1/hook", "127.0.0.1"),
        ("https://10.0.0.1/hook", "10.0.0.1"),
        (
            "https://169.254.169.254/latest/meta-data",
            "169.254.169.254",
        ),
        ("https://[::1]:8443/hook", "::1"),
        ("https://[::ffff:192.168.0.1]/hook", "192.168.0.1"),
        ("https://localhost:8443/hook", "loopback"),
        ("https://user:secret@93.184.215.14/hook", "credentials"),
        ("ftp://93.184.215.14/hook", "https"),
    ] {
        let res = app.post(&path, &alice.token, json!({ "url": url })).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["url"], "{url}");
        assert!(res.text.contains(why), "{url}: {}", res.text);
    }
    let res = app
        .post(
            &path,
            &alice.token,
            json!({ "url": "https://93.184.215.14/hook", "event_types": ["address.created", "address.flew"] }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["event_types[1]"]);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM webhooks").await, 0);

    // Allowed by the configuration: plain http to the named address.
    let allowed = app_allowing_loopback(backend).await;
    let bob = allowed.user("bob@example.com").await;
    create_webhook(&allowed, &bob, json!({ "url": "http://127.0.0.1:9/hook" })).await;
    let res = allowed
        .post(
            &format!("/v1/organizations/{}/webhooks", bob.org_id),
            &bob.token,
            json!({ "url": "http://127.0.0.2:9/hook" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
}

async fn only_owners_and_admins_manage_webhooks_and_strangers_get_404(backend: Backend) {
    let app = app_allowing_loopback(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let created = create_webhook(&app, &alice, json!({ "url": "http://127.0.0.1:9/hook" })).await;
    let id = created["id"].as_str().unwrap();
    let list = format!("/v1/organizations/{}/webhooks", alice.org_id);
    let one = format!("/v1/webhooks/{id}");
    let ping = format!("/v1/webhooks/{id}/ping");
    let rotate = format!("/v1/webhooks/{id}/rotate-secret");
    let log = format!("/v1/webhooks/{id}/deliveries");
    let body = json!({ "url": "http://127.0.0.1:9/other" });
    app.get(&list, &bob.token)
        .await
        .assert_problem(404, "not_found");
    app.post(&list, &bob.token, body.clone())
        .await
        .assert_problem(404, "not_found");
    app.get(&one, &bob.token)
        .await
        .assert_problem(404, "not_found");
    app.patch(&one, &bob.token, json!({ "enabled": false }))
        .await
        .assert_problem(404, "not_found");
    app.delete(&one, &bob.token)
        .await
        .assert_problem(404, "not_found");
    app.post(&ping, &bob.token, json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(&rotate, &bob.token, json!({}))
        .await
        .assert_problem(404, "not_found");
    app.get(&log, &bob.token)
        .await
        .assert_problem(404, "not_found");

    app.add_member(&alice, &bob, "user").await;
    app.get(&list, &bob.token)
        .await
        .assert_problem(403, "forbidden");
    app.get(&one, &bob.token)
        .await
        .assert_problem(403, "forbidden");
    app.delete(&one, &bob.token)
        .await
        .assert_problem(403, "forbidden");
    app.post(&rotate, &bob.token, json!({}))
        .await
        .assert_problem(403, "forbidden");

    app.patch(
        &format!(
            "/v1/organizations/{}/members/{}",
            alice.org_id, bob.account_id
        ),
        &alice.token,
        json!({ "role": "admin" }),
    )
    .await
    .assert_status(200);
    let res = app
        .patch(
            &one,
            &bob.token,
            json!({ "event_types": ["member.*"], "description": null }),
        )
        .await;
    assert_eq!(res.assert_status(200)["event_types"], json!(["member.*"]));
    app.delete(&one, &bob.token).await.assert_status(204);
    app.get(&one, &alice.token)
        .await
        .assert_problem(404, "not_found");
}

async fn changes_are_delivered_signed_in_the_standard_webhooks_format(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = app_allowing_loopback(backend).await;
    let alice = app.user("alice@example.com").await;
    let all = create_webhook(&app, &alice, json!({ "url": receiver.url("/all") })).await;
    let secret = all["secret"].as_str().unwrap().to_string();
    create_webhook(
        &app,
        &alice,
        json!({ "url": receiver.url("/members"), "event_types": ["member.*"] }),
    )
    .await;

    rename(&app, &alice, "Famille").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let service_id = service["id"].as_str().unwrap();
    let address_password = "violet umbrella marching north";
    let address = app
        .post(
            &format!("/v1/mail-services/{service_id}/addresses"),
            &alice.token,
            json!({ "local_part": "julie", "for": "me", "password": address_password }),
        )
        .await;
    let address_id = address.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let link = app
        .post(
            &format!("/v1/addresses/{address_id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let link_token = link.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let new_password = "seven copper kettles humming";
    app.put(
        &format!("/v1/addresses/{address_id}/password"),
        &alice.token,
        json!({ "new_password": new_password }),
    )
    .await
    .assert_status(200);

    let expected = [
        "organization.renamed",
        "mail_service.created",
        "address.created",
        "share_link.created",
        "address.password_changed",
    ];
    let got = receiver
        .wait_until("/all", 30, |got| {
            expected
                .iter()
                .all(|t| got.iter().any(|r| r.json()["type"] == *t))
        })
        .await;
    let log = org_events(&app, &alice).await;
    for message in &got {
        let body = message.json();
        assert_eq!(message.header("content-type"), "application/json");
        assert!(signed_by(&secret, message), "{}", message.body);
        let id = message.header("webhook-id");
        assert_eq!(body["data"]["id"], id);
        let timestamp: i64 = message.header("webhook-timestamp").parse().unwrap();
        assert!((timestamp - chrono::Utc::now().timestamp()).abs() < 300);
        assert!(body["timestamp"].is_string());
        assert_eq!(body["data"]["organization_id"], alice.org_id.to_string());
        // Each message is an event of the organization's log, with its action as `type`.
        let event = log
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no event {id} in the log"));
        assert_eq!(body["type"], event["action"]);
        assert_eq!(body["data"]["target"], event["target"]);
        assert_eq!(body["data"]["details"], event["details"]);
        for secret_text in [
            address_password,
            new_password,
            link_token.as_str(),
            &alice.token,
        ] {
            assert!(!message.body.contains(secret_text), "{}", message.body);
        }
    }
    let created = got
        .iter()
        .find(|r| r.json()["type"] == "address.created")
        .unwrap()
        .json();
    assert_eq!(created["data"]["target"], "julie@famille.example");
    assert_eq!(created["data"]["address_id"], address_id);
    assert_eq!(created["data"]["mail_service_id"], service_id);
    assert_eq!(created["data"]["details"]["kind"], "personal");

    // The reference library accepts every message, and refuses one altered.
    let cases: Vec<_> = got.iter().map(|m| (secret.as_str(), m)).collect();
    for (result, message) in verify_with_standardwebhooks(&cases).into_iter().zip(&got) {
        assert_eq!(result, Ok(()), "{}", message.body);
    }
    let mut altered = got[0].clone();
    altered.body = altered.body.replace("\"type\"", "\"tipe\"");
    let verdict = verify_with_standardwebhooks(&[(secret.as_str(), &altered)]);
    assert!(verdict[0].is_err(), "{verdict:?}");

    // The member-only endpoint got nothing until a member change.
    assert!(receiver.received_at("/members").is_empty());
    let bob = app.user("bob@example.com").await;
    app.add_member(&alice, &bob, "user").await;
    let members = receiver.wait_for("/members", 1).await;
    assert_eq!(members[0].json()["type"], "member.added");
    assert!(
        !signed_by(&secret, &members[0]),
        "each endpoint has its own secret"
    );
}

async fn failed_attempts_are_retried_and_every_attempt_is_listed(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer_next(vec![
        Answer::Body(500, "temporarily broken".into()),
        Answer::Status(503),
    ]);
    let app = app_allowing_loopback(backend).await;
    let alice = app.user("alice@example.com").await;
    let created = create_webhook(&app, &alice, json!({ "url": receiver.url("/hook") })).await;
    let id = created["id"].as_str().unwrap();
    rename(&app, &alice, "Retried").await;
    for attempt in 1..=3 {
        receiver.wait_for("/hook", attempt).await;
        if attempt < 3 {
            wait_for_deliveries(&app, &alice, id, |d| {
                d[0]["attempts"].as_array().unwrap().len() == attempt
            })
            .await;
            let failing = webhook(&app, &alice, id).await;
            assert!(failing["failing_since"].is_string());
            // The next attempt is due within seconds (exponential backoff with jitter).
            app.clock.advance(Duration::from_secs(60));
        }
    }
    let done = wait_for_deliveries(&app, &alice, id, |d| d[0]["status"] == "delivered").await;
    let attempts = done[0]["attempts"].as_array().unwrap();
    let codes: Vec<_> = attempts.iter().map(|a| a["status_code"].clone()).collect();
    assert_eq!(codes, [json!(500), json!(503), json!(200)]);
    assert_eq!(attempts[0]["response_excerpt"], "temporarily broken");
    assert_eq!(attempts[0]["error"], "answered 500");
    assert_eq!(attempts[2]["error"], Value::Null);
    for a in attempts {
        assert!(a["duration_ms"].as_i64().unwrap() >= 0);
        assert!(a["attempted_at"].is_string());
    }
    assert_eq!(done[0]["type"], "organization.renamed");
    assert_eq!(done[0]["last_status_code"], 200);
    let ids: Vec<_> = receiver
        .received_at("/hook")
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one message id across retries"
    );
    // A success ends the failing streak.
    let healthy = webhook(&app, &alice, id).await;
    assert_eq!(healthy["failing_since"], Value::Null);
}

async fn an_endpoint_failing_past_the_limit_is_disabled_and_its_owners_are_emailed(
    backend: Backend,
) {
    let smtp = TestSmtp::start().await;
    let receiver = Receiver::start().await;
    receiver.answer_by_default(Answer::Status(500));
    let app = spawn_app_with(backend, |c| {
        c.webhook_allow_hosts = vec!["127.0.0.1".into()];
        c.smtp_url = Some(smtp.url());
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let created = create_webhook(&app, &alice, json!({ "url": receiver.url("/hook") })).await;
    let secret = created["secret"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap();
    rename(&app, &alice, "Failing").await;
    wait_for_webhook(&app, &alice, id, |w| w["failing_since"].is_string()).await;
    // Three days later the retry fails again: the endpoint is turned off.
    app.clock.advance(Duration::from_secs(73 * 3600));
    let alice = fresh_token(&app, alice).await;
    let disabled = wait_for_webhook(&app, &alice, id, |w| w["enabled"] == false).await;
    assert_eq!(disabled["disabled_reason"], "failing");
    // Past its 24 h of retries, the delivery is given up.
    wait_for_deliveries(&app, &alice, id, |d| {
        d.iter()
            .any(|x| x["type"] == "organization.renamed" && x["status"] == "failed")
    })
    .await;
    let mail = smtp.wait_for_notifications(1).await;
    assert_eq!(mail[0].to, vec![alice.login.clone()]);
    assert!(
        mail[0].data.contains("Webhook disabled"),
        "{}",
        mail[0].data
    );
    assert!(mail[0].data.contains(&receiver.url("/hook")));
    assert!(!mail[0].data.contains(&secret["whsec_".len()..]));
    let log = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    assert!(log.text.contains("webhook.disabled"), "{}", log.text);

    // While disabled, changes are not queued for it; a ping still goes (to try it).
    let queued = deliveries(&app, &alice, id).await.len();
    rename(&app, &alice, "Quiet").await;
    assert_eq!(deliveries(&app, &alice, id).await.len(), queued);
    receiver.answer_by_default(Answer::Status(204));
    let before = receiver.received_at("/hook").len();
    app.post(&format!("/v1/webhooks/{id}/ping"), &alice.token, json!({}))
        .await
        .assert_status(202);
    receiver.wait_for("/hook", before + 1).await;
    let res = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            &alice.token,
            json!({ "enabled": true }),
        )
        .await;
    let enabled = res.assert_status(200);
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_reason"], Value::Null);
    assert_eq!(enabled["failing_since"], Value::Null);
    rename(&app, &alice, "Back").await;
    receiver
        .wait_until("/hook", 30, |got| {
            got.iter()
                .any(|r| r.json()["data"]["details"]["name"] == "Back")
        })
        .await;
}

async fn pings_and_redeliveries_resend_the_message_with_its_webhook_id(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = app_allowing_loopback(backend).await;
    let alice = app.user("alice@example.com").await;
    let created = create_webhook(&app, &alice, json!({ "url": receiver.url("/hook") })).await;
    let secret = created["secret"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let res = app
        .post(&format!("/v1/webhooks/{id}/ping"), &alice.token, json!({}))
        .await;
    let ping = res.assert_status(202).clone();
    assert_eq!(ping["type"], "webhook.ping");
    assert_eq!(ping["status"], "pending");
    let got = receiver.wait_for("/hook", 1).await;
    let body = got[0].json();
    assert_eq!(body["type"], "webhook.ping");
    assert_eq!(body["data"]["webhook_id"], id);
    assert!(signed_by(secret, &got[0]));
    wait_for_deliveries(&app, &alice, id, |d| d[0]["status"] == "delivered").await;

    let delivery = ping["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/webhooks/{id}/deliveries/{delivery}/redeliver"),
            &alice.token,
            json!({}),
        )
        .await;
    let again = res.assert_status(202).clone();
    assert_eq!(again["redelivery_of"], delivery);
    assert_eq!(again["message_id"], ping["message_id"]);
    let got = receiver.wait_for("/hook", 2).await;
    assert_eq!(got[1].header("webhook-id"), got[0].header("webhook-id"));
    assert_eq!(got[1].body, got[0].body);
    assert!(signed_by(secret, &got[1]));
    let listed = wait_for_deliveries(&app, &alice, id, |d| {
        d.len() == 2 && d.iter().all(|x| x["status"] == "delivered")
    })
    .await;
    assert_eq!(listed[0]["id"], again["id"], "newest first");
    app.post(
        &format!("/v1/webhooks/{id}/deliveries/0190a0a0-0000-7000-8000-000000000000/redeliver"),
        &alice.token,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn a_rotated_secret_signs_beside_the_new_one_for_its_grace_period(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = app_allowing_loopback(backend).await;
    let alice = app.user("alice@example.com").await;
    let created = create_webhook(&app, &alice, json!({ "url": receiver.url("/hook") })).await;
    let old = created["secret"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &alice.token,
            json!({}),
        )
        .await;
    let rotated = res.assert_status(200).clone();
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let until: chrono::DateTime<chrono::Utc> = rotated["previous_secret_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hours = (until - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.1).contains(&hours), "{hours}");
    assert!(!app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token
        )
        .await
        .text
        .contains(&new["whsec_".len()..]));

    app.post(&format!("/v1/webhooks/{id}/ping"), &alice.token, json!({}))
        .await
        .assert_status(202);
    let got = receiver.wait_for("/hook", 1).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(signed_by(&old, &got[0]) && signed_by(&new, &got[0]));
    let verdicts =
        verify_with_standardwebhooks(&[(old.as_str(), &got[0]), (new.as_str(), &got[0])]);
    assert_eq!(verdicts, vec![Ok(()), Ok(())]);
    wait_for_deliveries(&app, &alice, id, |d| d[0]["status"] == "delivered").await;

    // After the grace period only the new secret signs.
    app.clock.advance(Duration::from_secs(25 * 3600));
    let alice = fresh_token(&app, alice).await;
    let res = app
        .post(&format!("/v1/webhooks/{id}/ping"), &alice.token, json!({}))
        .await;
    let message_id = res.assert_status(202)["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let got = receiver
        .wait_until("/hook", 30, |got| {
            got.iter().any(|r| r.header("webhook-id") == message_id)
        })
        .await;
    let late = got
        .iter()
        .find(|r| r.header("webhook-id") == message_id)
        .unwrap();
    assert_eq!(late.header("webhook-signature").split(' ').count(), 1);
    assert!(signed_by(&new, late));
    assert!(!signed_by(&old, late));
}

async fn redirects_are_not_followed_and_long_answers_are_cut(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer_next(vec![
        Answer::Redirect(receiver.url("/elsewhere")),
        Answer::Body(200, "x".repeat(300 * 1024)),
    ]);
    let app = app_allowing_loopback(backend).await;
    let alice = app.user("alice@example.com").await;
    let created = create_webhook(&app, &alice, json!({ "url": receiver.url("/hook") })).await;
    let id = created["id"].as_str().unwrap();
    let ping = format!("/v1/webhooks/{id}/ping");
    app.post(&ping, &alice.token, json!({}))
        .await
        .assert_status(202);
    let first = wait_for_deliveries(&app, &alice, id, |d| {
        !d.is_empty() && !d[0]["attempts"].as_array().unwrap().is_empty()
    })
    .await;
    let attempt = &first[0]["attempts"][0];
    assert_eq!(attempt["status_code"], 302);
    assert!(
        attempt["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{attempt}"
    );
    assert_eq!(first[0]["status"], "pending", "retried later");
    app.post(&ping, &alice.token, json!({}))
        .await
        .assert_status(202);
    let done = wait_for_deliveries(&app, &alice, id, |d| d[0]["status"] == "delivered").await;
    let excerpt = done[0]["attempts"][0]["response_excerpt"].as_str().unwrap();
    assert_eq!(excerpt.len(), 1024);
    assert!(receiver.received_at("/elsewhere").is_empty());
}

async fn a_target_is_checked_again_at_delivery_after_resolving_its_name(backend: Backend) {
    let receiver = Receiver::start().await;
    let dns = TestDns::start(
        "rebind.test",
        &[ZoneRecord::raw("hook.rebind.test", "A", "127.0.0.1")],
    )
    .await;
    let app = spawn_app_with(backend, |c| {
        c.webhook_allow_hosts = vec!["127.0.0.1".into()];
        c.dns_server = Some(dns.addr);
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let path = format!("/v1/organizations/{}/webhooks", alice.org_id);
    let url = format!("https://hook.rebind.test:{}/hook", receiver.port);
    // Resolves to an allowed address now.
    let created = create_webhook(&app, &alice, json!({ "url": url })).await;
    let id = created["id"].as_str().unwrap();
    // A name resolving to a private address is refused when saved…
    dns.publish(&[ZoneRecord::raw("inner.rebind.test", "A", "10.0.0.1")])
        .await;
    let res = app
        .post(
            &path,
            &alice.token,
            json!({ "url": "https://inner.rebind.test/hook" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert!(res.text.contains("10.0.0.1"), "{}", res.text);
    // …and when its name changes its answer after the endpoint was saved (DNS rebinding),
    // the delivery does not connect.
    dns.publish(&[ZoneRecord::raw("hook.rebind.test", "A", "10.0.0.1")])
        .await;
    app.post(&format!("/v1/webhooks/{id}/ping"), &alice.token, json!({}))
        .await
        .assert_status(202);
    let listed = wait_for_deliveries(&app, &alice, id, |d| {
        !d.is_empty() && !d[0]["attempts"].as_array().unwrap().is_empty()
    })
    .await;
    let attempt = &listed[0]["attempts"][0];
    assert_eq!(attempt["status_code"], Value::Null);
    assert!(
        attempt["error"].as_str().unwrap().contains("10.0.0.1"),
        "{attempt}"
    );
    assert!(receiver.received().is_empty());
}

async fn a_receiver_slower_than_the_time_limit_is_a_failed_attempt_then_retried(backend: Backend) {
    let receiver = Receiver::start().await;
    // The first request is held for 4 s; the time limit is 1 s.
    receiver.answer_next(vec![Answer::Slow(Duration::from_secs(4))]);
    let app = spawn_app_with(backend, |c| {
        c.webhook_allow_hosts = vec!["127.0.0.1".into()];
        c.webhook_timeout_secs = 1;
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let created = create_webhook(&app, &alice, json!({ "url": receiver.url("/hook") })).await;
    let id = created["id"].as_str().unwrap();
    rename(&app, &alice, "Slow").await;
    let failed = wait_for_deliveries(&app, &alice, id, |d| {
        d[0]["attempts"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let attempt = &failed[0]["attempts"][0];
    assert_eq!(attempt["status_code"], Value::Null, "{attempt}");
    assert!(
        attempt["error"].as_str().unwrap().contains("timed out"),
        "{attempt}"
    );
    assert_eq!(failed[0]["status"], "pending");
    // The retry is answered at once and delivers the same message.
    app.clock.advance(Duration::from_secs(60));
    let done = wait_for_deliveries(&app, &alice, id, |d| d[0]["status"] == "delivered").await;
    assert_eq!(done[0]["attempts"].as_array().unwrap().len(), 2);
    let ids: Vec<_> = receiver
        .received_at("/hook")
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

/// PostgreSQL only (SQLite has one writer): the worker records a failed attempt (the
/// delivery, then the endpoint's failing streak) while the endpoint is being deleted (its
/// row, then the cascade to its deliveries). Both take the endpoint's row first, so the
/// deletion answers 204 and PostgreSQL detects no deadlock. The test holds the endpoint's
/// row so that the deletion waits first and the worker's attempt after it, then lets go.
#[tokio::test]
async fn an_endpoint_deleted_while_its_attempt_is_recorded_is_deleted_without_a_deadlock() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: POSTIER_TEST_POSTGRES_URL is not set");
        return;
    }
    let app = app_allowing_loopback(Backend::Postgres).await;
    let alice = app.user("alice@example.com").await;
    // Subscribed to nothing that happens here: the ping below is its only delivery.
    let created = create_webhook(
        &app,
        &alice,
        json!({ "url": "http://127.0.0.1:9/refused", "event_types": ["member.*"] }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let one = format!("/v1/webhooks/{id}");
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let deadlocks = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()";
    let before = app.scalar_i64(deadlocks).await;
    let hold = app.db().begin().await.unwrap();
    hold.execute_unprepared(&format!(
        "SELECT 1 FROM webhooks WHERE id = '{id}' FOR NO KEY UPDATE"
    ))
    .await
    .unwrap();
    let (deleted, ()) = tokio::join!(app.delete(&one, &alice.token), async {
        wait_until(|| async { app.scalar_i64(waiting).await >= 1 }).await;
        // A delivery only needs the endpoint's key: it is queued past the held row.
        app.post(&format!("{one}/ping"), &alice.token, json!({}))
            .await
            .assert_status(202);
        wait_until(|| async { app.scalar_i64(waiting).await >= 2 }).await;
        hold.commit().await.unwrap();
    });
    deleted.assert_status(204);
    app.get(&one, &alice.token)
        .await
        .assert_problem(404, "not_found");
    // A deadlock is detected after deadlock_timeout (1 s) and counted once its backend
    // reports its statistics, which an idle backend does within 10 s (PostgreSQL 15's idle
    // interval): watch the count past both. (With the old order PostgreSQL may abort the
    // worker's transaction rather than the deletion, so the 204 alone proves nothing.)
    for _ in 0..46 {
        assert_eq!(
            app.scalar_i64(deadlocks).await,
            before,
            "a deadlock was detected"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM webhook_deliveries")
            .await,
        0,
        "deliveries outlived their endpoint"
    );
}

async fn wait_until<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the condition did not hold within 5 s");
}

/// A login records `session.created` in the account's personal organization with the
/// writes of one batch; the endpoints of that organization are looked up only when it has
/// some enabled, and only those subscribing to the event get it, signed.
async fn a_login_is_delivered_to_the_endpoints_of_its_personal_organization_that_subscribe(
    backend: Backend,
) {
    let receiver = Receiver::start().await;
    let app = app_allowing_loopback(backend).await;
    let alice = app.user("alice@example.com").await;
    let sessions = create_webhook(
        &app,
        &alice,
        json!({ "url": receiver.url("/sessions"), "event_types": ["session.*"] }),
    )
    .await;
    let secret = sessions["secret"].as_str().unwrap();
    create_webhook(
        &app,
        &alice,
        json!({ "url": receiver.url("/members"), "event_types": ["member.*"] }),
    )
    .await;
    let off = create_webhook(&app, &alice, json!({ "url": receiver.url("/off") })).await;
    app.patch(
        &format!("/v1/webhooks/{}", off["id"].as_str().unwrap()),
        &alice.token,
        json!({ "enabled": false }),
    )
    .await
    .assert_status(200);

    let session = app.login(&alice.login, &alice.password).await;
    let refresh = session.assert_status(200)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let got = receiver.wait_for("/sessions", 1).await;
    let body = got[0].json();
    assert_eq!(body["type"], "session.created");
    assert!(signed_by(secret, &got[0]), "{}", got[0].body);
    assert_eq!(body["data"]["organization_id"], alice.org_id.to_string());
    assert_eq!(
        body["data"]["actor_account_id"],
        alice.account_id.to_string()
    );
    assert!(!got[0].body.contains(&refresh));
    // The message is the event the login recorded, about the session it opened.
    let (_, claims) = claims(session.body["access_token"].as_str().unwrap());
    assert_eq!(body["data"]["target"], claims["sid"]);
    let log = org_events(&app, &alice).await;
    let event = log
        .iter()
        .find(|e| e["id"] == body["data"]["id"])
        .expect("the delivered event in the log");
    assert_eq!(event["action"], "session.created");
    assert_eq!(event["target"], claims["sid"]);
    let queued = "SELECT COUNT(*) FROM webhook_deliveries WHERE event_type = 'session.created'";
    assert_eq!(app.scalar_i64(queued).await, 1);
    assert!(receiver.received_at("/members").is_empty());
    // The disabled endpoint may have had the changes made before it was disabled, not this.
    assert!(receiver
        .received_at("/off")
        .iter()
        .all(|r| r.json()["type"] != "session.created"));
}
