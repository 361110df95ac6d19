//! Request rate limits of authenticated callers: the headers on every authenticated answer,
//! 429 `rate_limited` with `Retry-After` beyond the budget, separate budgets for sessions
//! and each API token, one budget across instances once synced, none on `/healthz`.
//! Windows are a day long so that no test straddles the start of a new one.

use reqwest::Method;
use serde_json::json;

use crate::api_tokens::token_with;
use crate::helpers::{into_test_response, spawn_app_with, Backend, TestApp, TestResponse};
use crate::on_both_backends;

on_both_backends!(
    the_request_beyond_the_budget_gets_429_with_retry_after_and_the_headers,
    an_api_token_has_a_budget_of_its_own,
    two_instances_share_one_budget_once_synced,
);

fn small(config: &mut postier::config::Config) {
    config.rate_limit = postier::config::RateLimitConfig {
        requests: 4,
        window_secs: 86_400,
        // Tests sync explicitly.
        sync_millis: 10_000,
    };
}

fn header<'a>(res: &'a TestResponse, name: &str) -> &'a str {
    res.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// `r` of a `RateLimit` header.
fn remaining(res: &TestResponse) -> u32 {
    let value = header(res, "ratelimit");
    value
        .split(';')
        .find_map(|p| p.strip_prefix("r="))
        .unwrap()
        .parse()
        .unwrap()
}

async fn on(app: &TestApp, port: u16, path: &str, token: &str) -> TestResponse {
    let res = app
        .client
        .request(Method::GET, format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    into_test_response(res).await
}

async fn the_request_beyond_the_budget_gets_429_with_retry_after_and_the_headers(backend: Backend) {
    let app = spawn_app_with(backend, small).await;
    // Signing up and logging in are not authenticated; `user` then lists organizations (1).
    let alice = app.user("alice@example.com").await;
    let first = app.get("/v1/me", &alice.token).await;
    first.assert_status(200);
    assert_eq!(
        header(&first, "ratelimit-policy"),
        "\"default\";q=4;w=86400"
    );
    assert_eq!(remaining(&first), 2);
    assert!(first.headers.get("retry-after").is_none());
    // Errors spend too, and carry the headers.
    let missing = app
        .get(
            &format!("/v1/organizations/{}", uuid::Uuid::now_v7()),
            &alice.token,
        )
        .await;
    missing.assert_problem(404, "not_found");
    assert_eq!(remaining(&missing), 1);
    let last = app
        .patch("/v1/me", &alice.token, json!({ "display_name": "A" }))
        .await;
    last.assert_status(200);
    assert_eq!(remaining(&last), 0);

    let refused = app.get("/v1/me", &alice.token).await;
    refused.assert_problem(429, "rate_limited");
    assert_eq!(remaining(&refused), 0);
    let retry: i64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    let t = header(&refused, "ratelimit");
    assert!(t.ends_with(&format!(";t={retry}")), "{t}");
    // The refused change did not happen.
    app.patch("/v1/me", &alice.token, json!({ "display_name": "B" }))
        .await
        .assert_problem(429, "rate_limited");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM accounts WHERE display_name = 'B'")
            .await,
        0
    );

    // Unauthenticated answers have no rate-limit headers.
    let health = app.request(Method::GET, "/healthz", None, None).await;
    health.assert_status(200);
    assert!(health.headers.get("ratelimit").is_none());
    assert!(health.headers.get("ratelimit-policy").is_none());
    let anonymous = app.request(Method::GET, "/v1/me", None, None).await;
    anonymous.assert_problem(401, "unauthenticated");
    assert!(anonymous.headers.get("ratelimit").is_none());
}

async fn an_api_token_has_a_budget_of_its_own(backend: Backend) {
    let app = spawn_app_with(backend, small).await;
    let alice = app.user("alice@example.com").await; // 1
    let token = token_with(&app, &alice, &["read"]).await; // 2
    for _ in 0..2 {
        app.get("/v1/me", &alice.token).await.assert_status(200);
    }
    app.get("/v1/me", &alice.token)
        .await
        .assert_problem(429, "rate_limited");
    // The token's own budget is untouched by the sessions' requests.
    let res = app.get("/v1/me", &token).await;
    res.assert_status(200);
    assert_eq!(remaining(&res), 3);
    for _ in 0..3 {
        app.get("/v1/me", &token).await.assert_status(200);
    }
    app.get("/v1/me", &token)
        .await
        .assert_problem(429, "rate_limited");
}

async fn two_instances_share_one_budget_once_synced(backend: Backend) {
    let app = spawn_app_with(backend, small).await;
    let other = app.spawn_instance(small).await;
    let alice = app.user("alice@example.com").await; // 1 here
    app.get("/v1/me", &alice.token).await.assert_status(200); // 2 here
    let there = on(&app, other.port, "/v1/me", &alice.token).await; // 1 there
    there.assert_status(200);
    // Before a sync each instance knows its own count only.
    assert_eq!(remaining(&there), 3);
    let now = app.clock.now();
    app.state.rate_limits.sync(app.db(), now).await.unwrap();
    other
        .state
        .rate_limits
        .sync(&other.state.db, now)
        .await
        .unwrap();
    app.state.rate_limits.sync(app.db(), now).await.unwrap();
    // Both now count the 3 requests: the 4th is the last.
    let there = on(&app, other.port, "/v1/me", &alice.token).await;
    there.assert_status(200);
    assert_eq!(remaining(&there), 0);
    other
        .state
        .rate_limits
        .sync(&other.state.db, now)
        .await
        .unwrap();
    app.state.rate_limits.sync(app.db(), now).await.unwrap();
    // This instance served only 2, yet the budget is spent.
    app.get("/v1/me", &alice.token)
        .await
        .assert_problem(429, "rate_limited");
    on(&app, other.port, "/v1/me", &alice.token)
        .await
        .assert_problem(429, "rate_limited");
    let stored = app
        .scalar_i64(
            "SELECT CAST(SUM(count) AS BIGINT) FROM counters WHERE key LIKE 'rate:account:%'",
        )
        .await;
    assert_eq!(stored, 4);
}
