//! Several instances, overload and faults: the session cache's bound across instances and
//! read-your-writes on one, the hashing queue's 503, the database's 503 while it refuses
//! connections, and concurrent writers never answering "database is locked".

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    into_test_response, spawn_app, spawn_app_with, Backend, TestApp, TestResponse,
};
use crate::on_both_backends;

on_both_backends!(
    a_logout_takes_effect_at_once_here_and_within_a_second_on_another_instance,
    a_password_change_ends_the_other_sessions_at_once_on_every_instance_it_reaches,
    a_profile_change_is_read_back_at_once_on_the_same_instance,
    a_reused_refresh_token_stops_the_access_token_at_once,
    password_checks_beyond_the_hashing_queue_answer_503_with_retry_after_and_count_nothing,
    concurrent_writers_never_answer_database_is_locked,
);

/// The documented bound (README "Several instances"): `session_cache_millis`, 1000 by
/// default, plus a margin for the request itself.
const CACHE_BOUND: Duration = Duration::from_millis(1100);

async fn get_on(app: &TestApp, port: u16, path: &str, token: &str) -> TestResponse {
    let res = app
        .client
        .request(Method::GET, format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    into_test_response(res).await
}

async fn a_logout_takes_effect_at_once_here_and_within_a_second_on_another_instance(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let other = app.spawn_instance(|_| {}).await;
    let user = app.user("alice@example.com").await;
    // Both instances have read (and cached) the session.
    app.get("/v1/me", &user.token).await.assert_status(200);
    get_on(&app, other.port, "/v1/me", &user.token)
        .await
        .assert_status(200);
    app.delete("/v1/sessions/current", &user.token)
        .await
        .assert_status(204);
    // At once on the instance that logged out.
    app.get("/v1/me", &user.token)
        .await
        .assert_problem(401, "unauthenticated");
    // Within the cache's lifetime on the other one, for every route.
    tokio::time::sleep(CACHE_BOUND).await;
    for path in ["/v1/me", "/v1/organizations"] {
        get_on(&app, other.port, path, &user.token)
            .await
            .assert_problem(401, "unauthenticated");
    }
}

async fn a_password_change_ends_the_other_sessions_at_once_on_every_instance_it_reaches(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let other = app.spawn_instance(|_| {}).await;
    let user = app.user("alice@example.com").await;
    let second = app.login(&user.login, &user.password).await;
    let second = second.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.get("/v1/me", &second).await.assert_status(200);
    get_on(&app, other.port, "/v1/me", &second)
        .await
        .assert_status(200);
    app.put(
        "/v1/me/password",
        &user.token,
        json!({"current_password": user.password, "new_password": "a brand new passphrase 42"}),
    )
    .await
    .assert_status(200);
    app.get("/v1/me", &second)
        .await
        .assert_problem(401, "unauthenticated");
    // The session that changed it goes on.
    app.get("/v1/me", &user.token).await.assert_status(200);
    tokio::time::sleep(CACHE_BOUND).await;
    get_on(&app, other.port, "/v1/me", &second)
        .await
        .assert_problem(401, "unauthenticated");
    get_on(&app, other.port, "/v1/me", &user.token)
        .await
        .assert_status(200);
}

async fn a_profile_change_is_read_back_at_once_on_the_same_instance(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.spawn_instance(|_| {}).await;
    let user = app.user("alice@example.com").await;
    app.get("/v1/me", &user.token).await.assert_status(200);
    for name in ["Alice", "Alice B.", "Alice C."] {
        app.patch("/v1/me", &user.token, json!({"display_name": name}))
            .await
            .assert_status(200);
        let me = app.get("/v1/me", &user.token).await;
        assert_eq!(me.assert_status(200)["display_name"], name);
    }
    // Another instance shows it within the bound.
    tokio::time::sleep(CACHE_BOUND).await;
    let me = get_on(&app, other.port, "/v1/me", &user.token).await;
    assert_eq!(me.assert_status(200)["display_name"], "Alice C.");
}

async fn a_reused_refresh_token_stops_the_access_token_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    app.get("/v1/me", &user.token).await.assert_status(200);
    let body = json!({"refresh_token": user.refresh_token});
    app.post_anon("/v1/sessions/refresh", body.clone())
        .await
        .assert_status(200);
    // Past the grace for two tabs refreshing at once, the reuse is a theft.
    app.clock.advance(std::time::Duration::from_secs(11));
    app.post_anon("/v1/sessions/refresh", body)
        .await
        .assert_problem(401, "refresh_token_invalid");
    app.get("/v1/me", &user.token)
        .await
        .assert_problem(401, "unauthenticated");
}

async fn password_checks_beyond_the_hashing_queue_answer_503_with_retry_after_and_count_nothing(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |c| {
        c.argon2.max_concurrent = 1;
        c.argon2.max_queued = 2;
    })
    .await;
    let user = app.user("alice@example.com").await;
    let counters = "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM counters";
    let before = app.scalar_i64(counters).await;
    // Every place of the queue is taken (as by three logins under way).
    let held: Vec<_> = (0..3)
        .map(|_| app.state.passwords.reserve().unwrap())
        .collect();
    for res in [
        app.login(&user.login, &user.password).await,
        app.sign_up("bob@example.com", &user.password).await,
        app.post(
            "/v1/sessions/reauth",
            &user.token,
            json!({"password": user.password}),
        )
        .await,
    ] {
        res.assert_problem(503, "service_unavailable");
        assert_eq!(res.headers["retry-after"], "1");
    }
    // Requests that hash nothing are served meanwhile.
    app.get("/v1/me", &user.token).await.assert_status(200);
    app.request(Method::GET, "/healthz", None, None)
        .await
        .assert_status(200);
    assert_eq!(app.scalar_i64(counters).await, before);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM accounts WHERE login = 'bob@example.com'")
            .await,
        0
    );
    drop(held);
    app.login(&user.login, &user.password)
        .await
        .assert_status(200);
}

async fn concurrent_writers_never_answer_database_is_locked(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.database_max_connections = 8).await;
    let user = app.user("alice@example.com").await;
    let org = app
        .post(
            &format!("/v1/organizations/{}/mail-services", user.org_id),
            &user.token,
            json!({"domain": "writers.example", "pack": "premium"}),
        )
        .await;
    let service = org.assert_status(201)["id"].as_str().unwrap().to_string();
    // Profile updates, address creations and logins at once, 38 writes in all (logins are
    // 6: attempts under way count against the login's 10 allowed failures).
    let mut writes = Vec::new();
    for i in 0..16 {
        let (app, user, service) = (&app, &user, &service);
        writes.push(Box::pin(async move {
            app.patch(
                "/v1/me",
                &user.token,
                json!({"display_name": format!("name {i}")}),
            )
            .await
        })
            as std::pin::Pin<
                Box<dyn std::future::Future<Output = TestResponse>>,
            >);
        writes.push(Box::pin(async move {
            app.post(
                &format!("/v1/mail-services/{service}/addresses"),
                &user.token,
                json!({"local_part": format!("w{i}"), "for": "several_users", "password": "correct horse battery staple"}),
            )
            .await
        }));
        if i < 6 {
            writes.push(Box::pin(async move {
                app.login(&user.login, &user.password).await
            }));
        }
    }
    let answers = futures_util::future::join_all(writes).await;
    for res in &answers {
        assert!(res.status.is_success(), "{} {}", res.status, res.text);
    }
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 16);
}

/// While PostgreSQL refuses connections, requests that need it answer 503 problem+json with
/// `Retry-After` within the acquire timeout, never a 500 and never a hang; once it accepts
/// them again, Postier serves by itself.
#[tokio::test]
async fn requests_answer_503_while_the_database_refuses_connections_and_recover() {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let Some(admin_url) = crate::helpers::postgres_url() else {
        eprintln!("skipped: POSTIER_TEST_POSTGRES_URL is not set");
        return;
    };
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.database_acquire_timeout_secs = 1;
    })
    .await;
    let user = app.user("alice@example.com").await;
    let name = app.pg.as_ref().unwrap().name.clone();
    let admin = Database::connect(&admin_url).await.unwrap();
    let run = |sql: String| {
        let admin = &admin;
        async move {
            admin
                .execute_raw(Statement::from_string(admin.get_database_backend(), sql))
                .await
                .unwrap();
        }
    };
    run(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await;
    run(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    // Past the session cache's lifetime, every authenticated request needs the database.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut answers = vec![
        app.login(&user.login, &user.password).await,
        app.get("/v1/me", &user.token).await,
        app.get("/v1/organizations", &user.token).await,
        app.patch("/v1/me", &user.token, json!({"display_name": "x"}))
            .await,
    ];
    for _ in 0..3 {
        answers.push(app.get("/v1/organizations", &user.token).await);
    }
    for res in &answers {
        res.assert_problem(503, "service_unavailable");
        assert_eq!(res.headers["retry-after"], "2", "{}", res.text);
    }
    run(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;
    let mut recovered = false;
    for _ in 0..50 {
        if app
            .get("/v1/organizations", &user.token)
            .await
            .status
            .as_u16()
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "Postier never served again");
    app.patch("/v1/me", &user.token, json!({"display_name": "back"}))
        .await
        .assert_status(200);
    admin.close().await.ok();
}
