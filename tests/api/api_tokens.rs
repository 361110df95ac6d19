//! Personal API tokens: created with a session (the secret once), used as a bearer token,
//! listed without their secret, scopes enforced on every operation, organization-limited
//! tokens, revocation at once and on another instance, refusals.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::addresses::{create_for_me, premium};
use crate::helpers::{into_test_response, spawn_app, Backend, TestApp, TestResponse, TestUser};
use crate::on_both_backends;

on_both_backends!(
    a_token_is_shown_once_works_as_a_bearer_and_is_listed_with_its_last_use_but_no_secret,
    a_read_token_gets_403_token_scope_insufficient_on_a_change,
    a_write_token_cannot_delete_an_address_without_the_dangerous_scope,
    an_organization_limited_token_gets_404_on_another_organization,
    a_revoked_token_gets_401_at_once_here_and_within_a_second_on_another_instance,
    a_token_cannot_manage_tokens_step_up_or_log_out,
    creating_a_token_refuses_a_lifetime_out_of_range_naming_the_field,
);

/// The documented bound: `session_cache_millis` (1000 by default) and a margin.
const CACHE_BOUND: Duration = Duration::from_millis(1100);

pub async fn create_token(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let res = app.post("/v1/me/tokens", &user.token, body).await;
    res.assert_status(201).clone()
}

pub async fn token_with(app: &TestApp, user: &TestUser, scopes: &[&str]) -> String {
    let created = create_token(app, user, json!({ "name": "script", "scopes": scopes })).await;
    created["token"].as_str().unwrap().to_string()
}

async fn on(app: &TestApp, port: u16, method: Method, path: &str, token: &str) -> TestResponse {
    let res = app
        .client
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    into_test_response(res).await
}

async fn a_token_is_shown_once_works_as_a_bearer_and_is_listed_with_its_last_use_but_no_secret(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let created = create_token(
        &app,
        &alice,
        json!({ "name": "nightly export", "scopes": ["read"] }),
    )
    .await;
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("postier_pat_"), "{token}");
    assert_eq!(created["scopes"], json!(["read"]));
    assert!(created["last_used_at"].is_null());
    let expires = chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap())
        .unwrap()
        - chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires.num_days(), 90);
    // Stored as its SHA-256 only.
    let hash = postier::auth::api_token::hash(&token);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{hash}'"
        ))
        .await,
        1
    );

    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.assert_status(200)["login"], "alice@example.com");

    let list = app.get("/v1/me/tokens", &alice.token).await;
    let body = list.assert_status(200);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "nightly export");
    assert_eq!(items[0]["scopes"], json!(["read"]));
    assert!(items[0]["last_used_at"].is_string(), "{body}");
    assert!(items[0]["organization_id"].is_null());
    assert!(items[0]["hint"]
        .as_str()
        .unwrap()
        .starts_with("postier_pat_"));
    assert!(items[0].get("token").is_none());
    assert!(!list.text.contains(&token[12..]), "{}", list.text);
    // The audit log names the token, never its secret.
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    let text = &events.text;
    assert!(text.contains("api_token.created"), "{text}");
    assert!(!text.contains(&token[12..]), "{text}");
}

async fn a_read_token_gets_403_token_scope_insufficient_on_a_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let read = token_with(&app, &alice, &["read"]).await;
    app.get("/v1/organizations", &read).await.assert_status(200);
    app.post("/v1/organizations", &read, json!({ "name": "Nope" }))
        .await
        .assert_problem(403, "token_scope_insufficient");
    app.patch("/v1/me", &read, json!({ "display_name": "Nope" }))
        .await
        .assert_problem(403, "token_scope_insufficient");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations").await,
        1
    );
    let write = token_with(&app, &alice, &["write"]).await;
    app.post("/v1/organizations", &write, json!({ "name": "Oui" }))
        .await
        .assert_status(201);
}

async fn a_write_token_cannot_delete_an_address_without_the_dangerous_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap();
    let path = format!("/v1/addresses/{id}?confirm=compta@famille.example");

    let write = token_with(&app, &alice, &["read", "write"]).await;
    app.delete(&path, &write)
        .await
        .assert_problem(403, "token_scope_insufficient");
    // Password changes are dangerous too.
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &write,
        json!({ "new_password": "another violet umbrella" }),
    )
    .await
    .assert_problem(403, "token_scope_insufficient");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 1);

    let dangerous = token_with(&app, &alice, &["dangerous"]).await;
    // The scope never skips the typed confirmation.
    app.delete(&format!("/v1/addresses/{id}"), &dangerous)
        .await
        .assert_problem(422, "confirmation_required");
    // It stands for a recent password proof: no step-up needed (and none possible).
    app.delete(&path, &dangerous).await.assert_status(204);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 0);
}

async fn an_organization_limited_token_gets_404_on_another_organization(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let other = app
        .post(
            "/v1/organizations",
            &alice.token,
            json!({ "name": "Autre" }),
        )
        .await;
    let other = other.assert_status(201)["id"].as_str().unwrap().to_string();
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let address_id = address["id"].as_str().unwrap();
    let token = token_with_org(&app, &alice, &other).await;

    // Its own organization works…
    app.get(&format!("/v1/organizations/{other}"), &token)
        .await
        .assert_status(200);
    // …anything of another one is invisible, as for a stranger.
    app.get(&format!("/v1/organizations/{}", alice.org_id), &token)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/mail-services/{service}"), &token)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/addresses/{address_id}"), &token)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/v1/organizations/{}/mail-services", alice.org_id),
        &token,
        json!({ "pack": "free" }),
    )
    .await
    .assert_problem(404, "not_found");
    // Lists show only its organization.
    let orgs = app.get("/v1/organizations", &token).await;
    let items = orgs.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], other.as_str());
    let services = app.get("/v1/mail-services", &token).await;
    assert_eq!(services.assert_status(200)["items"], json!([]));
    let mine = app.get("/v1/me/addresses", &token).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    // A session still sees both.
    let orgs = app.get("/v1/organizations", &alice.token).await;
    assert_eq!(
        orgs.assert_status(200)["items"].as_array().unwrap().len(),
        2
    );
}

async fn token_with_org(app: &TestApp, user: &TestUser, org: &str) -> String {
    let created = create_token(
        app,
        user,
        json!({ "name": "one org", "scopes": ["write"], "organization_id": org }),
    )
    .await;
    assert_eq!(created["organization_id"], org);
    created["token"].as_str().unwrap().to_string()
}

async fn a_revoked_token_gets_401_at_once_here_and_within_a_second_on_another_instance(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let other = app.spawn_instance(|_| {}).await;
    let alice = app.user("alice@example.com").await;
    let created = create_token(&app, &alice, json!({ "name": "s", "scopes": ["read"] })).await;
    let token = created["token"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    // Both instances have read (and cached) it.
    app.get("/v1/me", token).await.assert_status(200);
    on(&app, other.port, Method::GET, "/v1/me", token)
        .await
        .assert_status(200);

    app.delete(&format!("/v1/me/tokens/{id}"), &alice.token)
        .await
        .assert_status(204);
    let refused = app.get("/v1/me", token).await;
    refused.assert_problem(401, "unauthenticated");
    assert!(refused.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    tokio::time::sleep(CACHE_BOUND).await;
    on(&app, other.port, Method::GET, "/v1/me", token)
        .await
        .assert_problem(401, "unauthenticated");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM api_tokens").await, 0);
    app.delete(&format!("/v1/me/tokens/{id}"), &alice.token)
        .await
        .assert_problem(404, "not_found");
}

async fn a_token_cannot_manage_tokens_step_up_or_log_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let created = create_token(
        &app,
        &alice,
        json!({ "name": "all", "scopes": ["read", "write", "dangerous"] }),
    )
    .await;
    let token = created["token"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    app.get("/v1/me/tokens", token)
        .await
        .assert_problem(403, "session_required");
    app.post(
        "/v1/me/tokens",
        token,
        json!({ "name": "x", "scopes": ["read"] }),
    )
    .await
    .assert_problem(403, "session_required");
    app.delete(&format!("/v1/me/tokens/{id}"), token)
        .await
        .assert_problem(403, "session_required");
    app.post(
        "/v1/sessions/reauth",
        token,
        json!({ "password": alice.password }),
    )
    .await
    .assert_problem(403, "session_required");
    app.delete("/v1/sessions/current", token)
        .await
        .assert_problem(403, "session_required");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM api_tokens").await, 1);
}

async fn creating_a_token_refuses_a_lifetime_out_of_range_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    for days in [0, 366] {
        let res = app
            .post(
                "/v1/me/tokens",
                &alice.token,
                json!({ "name": "s", "scopes": ["read"], "expires_in_days": days }),
            )
            .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["expires_in_days"], "{}", res.text);
    }
    let res = app
        .post(
            "/v1/me/tokens",
            &alice.token,
            json!({ "name": "s", "scopes": [] }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["scopes"]);
    let created = create_token(
        &app,
        &alice,
        json!({ "name": "year", "scopes": ["read"], "expires_in_days": 365 }),
    )
    .await;
    assert!(created["token"].is_string());
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM api_tokens").await, 1);
}
