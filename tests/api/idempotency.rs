//! `Idempotency-Key` on creating POSTs: replays, refusals, concurrency, accounts, expiry and
//! several instances.

use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::addresses::{premium, STRONG};
use crate::helpers::{into_test_response, spawn_app, Backend, TestApp, TestResponse, TestUser};
use crate::on_both_backends;

on_both_backends!(
    the_same_key_and_body_replay_the_first_answer_without_creating_twice,
    the_same_key_with_another_body_returns_422_idempotency_key_reused,
    concurrent_requests_with_one_key_create_once,
    a_key_of_another_account_does_not_replay,
    an_expired_key_does_the_work_again,
    a_second_instance_replays_the_first_instances_answer,
    an_invalid_key_returns_422_naming_the_header,
    a_refused_request_is_replayed_and_a_request_without_a_key_is_not,
);

async fn post_with_key(
    app_url: &str,
    client: &reqwest::Client,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> TestResponse {
    let res = client
        .post(format!("{app_url}{path}"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request");
    into_test_response(res).await
}

async fn create(
    app: &TestApp,
    user: &TestUser,
    service: &str,
    key: &str,
    local: &str,
) -> TestResponse {
    post_with_key(
        &app.address,
        &app.client,
        &format!("/v1/mail-services/{service}/addresses"),
        &user.token,
        key,
        &json!({ "local_part": local, "for": "me", "password": STRONG }),
    )
    .await
}

async fn addresses_named(app: &TestApp, local: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT COUNT(*) FROM addresses WHERE local_part = '{local}'"
    ))
    .await
}

fn header<'a>(res: &'a TestResponse, name: &str) -> Option<&'a str> {
    res.headers.get(name).and_then(|v| v.to_str().ok())
}

async fn the_same_key_and_body_replay_the_first_answer_without_creating_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let first = create(&app, &alice, &service, "key-1", "compta").await;
    first.assert_status(201);
    assert_eq!(header(&first, "idempotent-replayed"), None);
    let second = create(&app, &alice, &service, "key-1", "compta").await;
    second.assert_status(201);
    assert_eq!(header(&second, "idempotent-replayed"), Some("true"));
    assert_eq!(second.text, first.text);
    assert!(header(&first, "location").is_some());
    assert_eq!(header(&second, "location"), header(&first, "location"));
    assert_eq!(header(&second, "content-type"), Some("application/json"));
    assert_eq!(addresses_named(&app, "compta").await, 1);
    // The stored answer holds no readable copy of the key.
    let plain = app
        .scalar_i64("SELECT COUNT(*) FROM idempotency_keys WHERE key_hash = 'key-1' OR response LIKE '%compta%'")
        .await;
    assert_eq!(plain, 0);
}

async fn the_same_key_with_another_body_returns_422_idempotency_key_reused(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    create(&app, &alice, &service, "key-1", "compta")
        .await
        .assert_status(201);
    let other = create(&app, &alice, &service, "key-1", "ventes").await;
    other.assert_problem(422, "idempotency_key_reused");
    assert_eq!(addresses_named(&app, "ventes").await, 0);
    // Another path with the same key is another request too.
    let org = post_with_key(
        &app.address,
        &app.client,
        "/v1/organizations",
        &alice.token,
        "key-1",
        &json!({ "name": "Other" }),
    )
    .await;
    org.assert_problem(422, "idempotency_key_reused");
}

async fn concurrent_requests_with_one_key_create_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let (a, b) = tokio::join!(
        create(&app, &alice, &service, "key-1", "compta"),
        create(&app, &alice, &service, "key-1", "compta"),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert!(
        statuses == [201, 201] || statuses == [201, 409],
        "statuses: {statuses:?}, bodies: {} / {}",
        a.text,
        b.text
    );
    for res in [&a, &b] {
        if res.status.as_u16() == 409 {
            res.assert_problem(409, "idempotency_key_in_progress");
            assert_eq!(header(res, "retry-after"), Some("1"));
        }
    }
    assert_eq!(addresses_named(&app, "compta").await, 1);
    // Once the first is done, a retry replays it.
    let retry = create(&app, &alice, &service, "key-1", "compta").await;
    retry.assert_status(201);
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
}

async fn a_key_of_another_account_does_not_replay(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let body = json!({ "name": "Shared name" });
    let first = post_with_key(
        &app.address,
        &app.client,
        "/v1/organizations",
        &alice.token,
        "key-1",
        &body,
    )
    .await;
    first.assert_status(201);
    let second = post_with_key(
        &app.address,
        &app.client,
        "/v1/organizations",
        &bob.token,
        "key-1",
        &body,
    )
    .await;
    second.assert_status(201);
    assert_eq!(header(&second, "idempotent-replayed"), None);
    assert_ne!(first.body["id"], second.body["id"]);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations WHERE name = 'Shared name'")
            .await,
        2
    );
}

async fn an_expired_key_does_the_work_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let body = json!({ "name": "Yearly" });
    let first = post_with_key(
        &app.address,
        &app.client,
        "/v1/organizations",
        &alice.token,
        "key-1",
        &body,
    )
    .await;
    first.assert_status(201);
    // 24 hours later (the stored answer's expiry moved into the past).
    app.db()
        .execute_unprepared("UPDATE idempotency_keys SET expires_at = '2020-01-01T00:00:00+00:00'")
        .await
        .expect("expire the key");
    let second = post_with_key(
        &app.address,
        &app.client,
        "/v1/organizations",
        &alice.token,
        "key-1",
        &body,
    )
    .await;
    second.assert_status(201);
    assert_eq!(header(&second, "idempotent-replayed"), None);
    assert_ne!(first.body["id"], second.body["id"]);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM idempotency_keys")
            .await,
        1
    );
}

async fn a_second_instance_replays_the_first_instances_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let first = create(&app, &alice, &service, "key-1", "compta").await;
    first.assert_status(201);
    let other = app.spawn_instance(|_| {}).await;
    let second = post_with_key(
        &format!("http://127.0.0.1:{}", other.port),
        &app.client,
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        "key-1",
        &json!({ "local_part": "compta", "for": "me", "password": STRONG }),
    )
    .await;
    second.assert_status(201);
    assert_eq!(header(&second, "idempotent-replayed"), Some("true"));
    assert_eq!(second.text, first.text);
    assert_eq!(addresses_named(&app, "compta").await, 1);
}

async fn an_invalid_key_returns_422_naming_the_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let body = json!({ "name": "Nope" });
    for key in ["", "with space", &"k".repeat(256)] {
        let res = post_with_key(
            &app.address,
            &app.client,
            "/v1/organizations",
            &alice.token,
            key,
            &body,
        )
        .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["Idempotency-Key".to_string()]);
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations WHERE name = 'Nope'")
            .await,
        0
    );
}

async fn a_refused_request_is_replayed_and_a_request_without_a_key_is_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    create(&app, &alice, &service, "key-1", "compta")
        .await
        .assert_status(201);
    // A 409 is the request's answer: the same request with the same key gets it again.
    let refused = create(&app, &alice, &service, "key-2", "compta").await;
    refused.assert_problem(409, "address_already_exists");
    let again = create(&app, &alice, &service, "key-2", "compta").await;
    again.assert_problem(409, "address_already_exists");
    assert_eq!(header(&again, "idempotent-replayed"), Some("true"));
    // Without a key, nothing is stored or replayed.
    let plain = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "compta", "for": "me", "password": STRONG }),
        )
        .await;
    plain.assert_problem(409, "address_already_exists");
    assert_eq!(header(&plain, "idempotent-replayed"), None);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM idempotency_keys")
            .await,
        2
    );
}
