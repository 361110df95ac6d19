//! The notification outbox keeps no live token once a message is delivered or abandoned,
//! never lists a token that stands for a third party's consent, and forgets old messages.

use std::time::Duration;

use postier::entity::outbox;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::addresses::{create_for_me, premium};
use crate::helpers::{spawn_app, spawn_app_with, token_in, Backend, TestApp, TestUser};
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    a_delivered_invitation_keeps_its_text_but_not_its_token,
    an_owner_reads_a_pending_invitation_link_but_never_a_forward_confirmation_token,
    a_message_not_delivered_in_time_is_abandoned_without_its_token,
    a_message_the_relay_keeps_refusing_is_abandoned_without_its_token,
    delivered_and_abandoned_messages_older_than_the_retention_are_deleted,
);

/// Alice, her premium service and an address of hers (id).
async fn alice_with_address(app: &TestApp) -> (TestUser, String) {
    let alice = app.user("alice@example.com").await;
    let service = premium(app, &alice).await;
    let address = create_for_me(app, &alice, &service, "compta").await;
    (alice, address["id"].as_str().unwrap().to_string())
}

async fn invite(app: &TestApp, alice: &TestUser, address: &str, email: &str) {
    app.post(
        &format!("/v1/addresses/{address}/invitations"),
        &alice.token,
        json!({ "invitee": { "email": email }, "permissions": [] }),
    )
    .await
    .assert_status(201);
}

async fn message_to(app: &TestApp, recipient: &str) -> outbox::Model {
    outbox::Entity::find()
        .filter(outbox::Column::Recipient.eq(recipient))
        .one(app.db())
        .await
        .unwrap()
        .expect("a message")
}

async fn listed(app: &TestApp, alice: &TestUser, recipient: &str) -> Value {
    let res = app
        .get(
            &format!("/v1/organizations/{}/outbox", alice.org_id),
            &alice.token,
        )
        .await;
    res.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["recipient"] == recipient)
        .expect("a listed message")
        .clone()
}

/// Polls (at most 10 s) until `sql` counts one row.
async fn wait_for_one(app: &TestApp, sql: &str) {
    for _ in 0..200 {
        if app.scalar_i64(sql).await == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.scalar_i64(sql).await, 1, "{sql}");
}

async fn a_delivered_invitation_keeps_its_text_but_not_its_token(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let (alice, address) = alice_with_address(&app).await;
    invite(&app, &alice, &address, "paul@isp.example").await;
    let mails = smtp.wait_for_matching("invites you to use", 1).await;
    let token = token_in(&mails[0].data);
    assert_eq!(token.len(), 43);
    wait_for_one(
        &app,
        "SELECT COUNT(*) FROM outbox WHERE recipient = 'paul@isp.example' AND sent_at IS NOT NULL",
    )
    .await;
    // The stored message lost its links (accept and decline), and only them.
    let kept = format!("SELECT COUNT(*) FROM outbox WHERE body LIKE '%{token}%'");
    assert_eq!(app.scalar_i64(&kept).await, 0);
    let message = message_to(&app, "paul@isp.example").await;
    assert_eq!(message.secret, None);
    assert!(!message.body.contains("token="), "{}", message.body);
    assert_eq!(
        message
            .body
            .matches("[link removed after delivery]")
            .count(),
        2
    );
    assert!(message
        .body
        .contains("invites you to use the mail address compta@famille.example"));
    let item = listed(&app, &alice, "paul@isp.example").await;
    assert_eq!(item["status"], "sent");
    assert!(!item["body"].as_str().unwrap().contains(&token));
    // The e-mailed link still works: only its hash was ever needed.
    let paul = app.user("paul@elsewhere.example").await;
    app.post(
        "/v1/invitations/accept",
        &paul.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
}

async fn an_owner_reads_a_pending_invitation_link_but_never_a_forward_confirmation_token(
    backend: Backend,
) {
    // No relay: both wait in the outbox.
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    invite(&app, &alice, &address, "paul@isp.example").await;
    app.post(
        &format!("/v1/addresses/{address}/forwards"),
        &alice.token,
        json!({ "target": "julie@home.example", "keep_copy": true }),
    )
    .await
    .assert_status(201);
    let invitation = listed(&app, &alice, "paul@isp.example").await;
    assert_eq!(invitation["status"], "pending");
    let stored = message_to(&app, "paul@isp.example").await;
    let invitation_token = stored.secret.clone().expect("a pending token");
    assert!(invitation["body"]
        .as_str()
        .unwrap()
        .contains(&format!("/invitations/accept?token={invitation_token}")));
    let forward = listed(&app, &alice, "julie@home.example").await;
    assert_eq!(forward["status"], "pending");
    let consent = message_to(&app, "julie@home.example").await;
    assert!(consent.secret_private);
    let consent_token = consent.secret.clone().expect("a pending token");
    let body = forward["body"].as_str().unwrap();
    assert!(!body.contains(&consent_token), "{body}");
    assert!(
        body.contains("[link withheld: it is for the recipient only]"),
        "{body}"
    );
    let whole = app
        .get(
            &format!("/v1/organizations/{}/outbox", alice.org_id),
            &alice.token,
        )
        .await;
    assert!(!whole.text.contains(&consent_token));
}

async fn a_message_not_delivered_in_time_is_abandoned_without_its_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    // Sign-up queued a verification e-mail too (no relay: it waits as well).
    let before = u64::try_from(app.scalar_i64("SELECT COUNT(*) FROM outbox").await).unwrap();
    invite(&app, &alice, &address, "paul@isp.example").await;
    let token = message_to(&app, "paul@isp.example").await.secret.unwrap();
    // Within the 48 h, nothing is given up.
    app.clock.advance(Duration::from_secs(47 * 3600));
    let done = postier::mailer::maintain(&app.state).await.unwrap();
    assert_eq!(done.abandoned, 0);
    app.clock.advance(Duration::from_secs(2 * 3600));
    let done = postier::mailer::maintain(&app.state).await.unwrap();
    assert_eq!(done.abandoned, before + 1);
    let alice = app.relogin(&alice).await;
    let message = message_to(&app, "paul@isp.example").await;
    assert!(message.abandoned_at.is_some());
    assert_eq!(message.sent_at, None);
    assert_eq!(message.secret, None);
    assert!(!message.body.contains(&token), "{}", message.body);
    assert!(message
        .body
        .contains("[link removed: the message was not delivered]"));
    let kept = format!("SELECT COUNT(*) FROM outbox WHERE body LIKE '%{token}%'");
    assert_eq!(app.scalar_i64(&kept).await, 0);
    let item = listed(&app, &alice, "paul@isp.example").await;
    assert_eq!(item["status"], "abandoned");
    assert_eq!(item["last_error"], "not delivered within 48 hours");
    // Given up once: a second pass finds nothing.
    let done = postier::mailer::maintain(&app.state).await.unwrap();
    assert_eq!(done.abandoned, 0);
}

async fn a_message_the_relay_keeps_refusing_is_abandoned_without_its_token(backend: Backend) {
    let smtp = TestSmtp::start().await;
    smtp.set_failing(true);
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let (alice, address) = alice_with_address(&app).await;
    app.post(
        &format!("/v1/addresses/{address}/forwards"),
        &alice.token,
        json!({ "target": "julie@home.example", "keep_copy": true }),
    )
    .await
    .assert_status(201);
    wait_for_one(
        &app,
        "SELECT COUNT(*) FROM outbox WHERE recipient = 'julie@home.example' AND attempts >= 1",
    )
    .await;
    // Past the limit, the next failed attempt (due at once on the moved clock) gives up.
    app.clock.advance(Duration::from_secs(49 * 3600));
    app.state.outbox_wake.notify_one();
    wait_for_one(
        &app,
        "SELECT COUNT(*) FROM outbox WHERE recipient = 'julie@home.example' AND abandoned_at IS NOT NULL",
    )
    .await;
    let alice = app.relogin(&alice).await;
    let message = message_to(&app, "julie@home.example").await;
    assert_eq!(message.secret, None);
    assert!(!message.body.contains("token="), "{}", message.body);
    assert!(message.last_error.unwrap().contains("451"));
    let item = listed(&app, &alice, "julie@home.example").await;
    assert_eq!(item["status"], "abandoned");
    assert!(!item["body"].as_str().unwrap().contains("token="));
}

async fn delivered_and_abandoned_messages_older_than_the_retention_are_deleted(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.outbox_retention_days = 3).await;
    let (alice, address) = alice_with_address(&app).await;
    let before = app.scalar_i64("SELECT COUNT(*) FROM outbox").await;
    invite(&app, &alice, &address, "old@isp.example").await;
    app.clock.advance(Duration::from_secs(49 * 3600));
    let done = postier::mailer::maintain(&app.state).await.unwrap();
    // The invitation, and whatever sign-up queued (verification), are given up on.
    assert_eq!(done.abandoned, u64::try_from(before).unwrap() + 1);
    assert_eq!(done.deleted, 0);
    // A newer one, marked delivered.
    let alice = app.relogin(&alice).await;
    invite(&app, &alice, &address, "new@isp.example").await;
    app.db()
        .execute_unprepared(
            "UPDATE outbox SET sent_at = created_at, secret = NULL WHERE recipient = 'new@isp.example'",
        )
        .await
        .unwrap();
    // 73 h after the first: it is past the 3 days, the newer one is not.
    app.clock.advance(Duration::from_secs(24 * 3600));
    let done = postier::mailer::maintain(&app.state).await.unwrap();
    assert_eq!(done.deleted, u64::try_from(before).unwrap() + 1);
    let left = "SELECT COUNT(*) FROM outbox WHERE recipient = 'old@isp.example'";
    assert_eq!(app.scalar_i64(left).await, 0);
    let left = "SELECT COUNT(*) FROM outbox WHERE recipient = 'new@isp.example'";
    assert_eq!(app.scalar_i64(left).await, 1);
    // Three more days: the delivered one goes too.
    app.clock.advance(Duration::from_secs(3 * 24 * 3600));
    let done = postier::mailer::maintain(&app.state).await.unwrap();
    assert_eq!(done.deleted, 1);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM outbox").await, 0);
}
