//! Logging in, the access-token matrix, refresh rotation and reuse, logout, step-up,
//! enumeration parity and throttling.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use sea_orm::ConnectionTrait;

use crate::helpers::{spawn_app, spawn_app_with, Backend, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    login_returns_a_bearer_session_with_a_pinned_hs256_token,
    access_token_matrix_returns_401_for_every_bad_token,
    refresh_rotates_and_reusing_a_rotated_token_revokes_the_family,
    logout_stops_the_access_token_at_once,
    reauth_returns_a_token_with_a_fresh_auth_time,
    unknown_login_and_wrong_password_look_the_same,
    failed_logins_return_429_with_retry_after_per_login_and_per_address,
    parallel_wrong_passwords_never_pass_more_than_the_limit,
    wrong_passwords_from_elsewhere_never_lock_the_owner_out,
    failures_from_many_addresses_meet_the_ceiling_per_login,
    parallel_correct_logins_of_one_account_all_succeed,
    a_forged_forwarded_for_entry_does_not_escape_the_throttle,
    login_accepts_the_address_as_typed_at_sign_up,
    a_login_whose_writes_fail_keeps_none_of_them,
    the_in_flight_count_answers_the_read_sent_with_it_apart_from_its_windows,
);

/// The header and claims of an access token.
pub fn claims(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let claims = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&claims).unwrap(),
    )
}

async fn login_returns_a_bearer_session_with_a_pinned_hs256_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    let res = app.login(" Alice@Example.com ", PASSWORD).await;
    let body = res.assert_status(200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);
    let (header, claims) = claims(body["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].is_string());
    for claim in ["iss", "aud", "sub", "sid", "iat", "exp", "auth_time"] {
        assert!(!claims[claim].is_null(), "{claim} missing");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM sessions").await, 1);
    // The refresh token is stored as a hash only.
    let stored = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '{}'",
            body["refresh_token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(stored, 0);
}

async fn access_token_matrix_returns_401_for_every_bad_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    let (header, mut body) = claims(&user.token);
    let signature = user.token.rsplit('.').next().unwrap().to_string();
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());

    // Tampered claims, original signature.
    body["sub"] = json!(uuid::Uuid::now_v7());
    let tampered = format!("{}.{}.{}", encode(&header), encode(&body), signature);
    // alg: none, no signature.
    let none = format!(
        "{}.{}.",
        encode(&json!({ "alg": "none", "typ": "JWT" })),
        encode(&claims(&user.token).1)
    );
    // Signed with another secret.
    let wrong_secret = postier::auth::JwtKeys::new(&[9u8; 32], 900)
        .issue(
            user.account_id,
            uuid::Uuid::now_v7(),
            chrono::Utc::now(),
            chrono::Utc::now(),
        )
        .unwrap();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("not.a.jwt".into())),
        ("tampered", Some(tampered)),
        ("alg none", Some(none)),
        ("wrong secret", Some(wrong_secret)),
        (
            "refresh token as access token",
            Some(user.refresh_token.clone()),
        ),
    ];
    for (name, token) in cases {
        let res = match token {
            Some(t) => app.get("/v1/me", &t).await,
            None => {
                app.request(reqwest::Method::GET, "/v1/me", None, None)
                    .await
            }
        };
        assert_eq!(res.status.as_u16(), 401, "{name}: {}", res.text);
        res.assert_problem(401, "unauthenticated");
    }
    // Expired: the service clock moves past exp + leeway.
    app.clock.advance(Duration::from_secs(900 + 6));
    app.get("/v1/me", &user.token)
        .await
        .assert_problem(401, "unauthenticated");
}

async fn refresh_rotates_and_reusing_a_rotated_token_revokes_the_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    let res = app
        .post_anon(
            "/v1/sessions/refresh",
            json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    let rotated = res.assert_status(200).clone();
    assert_ne!(rotated["refresh_token"], user.refresh_token);
    let new_access = rotated["access_token"].as_str().unwrap();
    app.get("/v1/me", new_access).await.assert_status(200);
    // Reuse of the first, already rotated, token, once the grace for two tabs refreshing at
    // once is over (within it, the same successor is answered: hardening.rs).
    app.clock.advance(Duration::from_secs(11));
    app.post_anon(
        "/v1/sessions/refresh",
        json!({ "refresh_token": user.refresh_token }),
    )
    .await
    .assert_problem(401, "refresh_token_invalid");
    // The whole family is gone: the newest refresh token and every access token.
    app.post_anon(
        "/v1/sessions/refresh",
        json!({ "refresh_token": rotated["refresh_token"] }),
    )
    .await
    .assert_problem(401, "refresh_token_invalid");
    app.get("/v1/me", new_access)
        .await
        .assert_problem(401, "unauthenticated");
    app.get("/v1/me", &user.token)
        .await
        .assert_problem(401, "unauthenticated");
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM sessions WHERE revoked_reason = 'refresh_token_reuse'"
        )
        .await,
        1
    );
    // The account sees it in its log, with no actor: whoever replayed the token is unknown.
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM events WHERE action = 'session.revoked' AND actor_account_id IS NULL"
        )
        .await,
        1
    );
    // Unknown and malformed refresh tokens.
    app.post_anon(
        "/v1/sessions/refresh",
        json!({ "refresh_token": postier::auth::token::generate() }),
    )
    .await
    .assert_problem(401, "refresh_token_invalid");
    app.post_anon("/v1/sessions/refresh", json!({ "refresh_token": "x" }))
        .await
        .assert_problem(401, "refresh_token_invalid");
}

async fn logout_stops_the_access_token_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    app.delete("/v1/sessions/current", &user.token)
        .await
        .assert_status(204);
    app.get("/v1/me", &user.token)
        .await
        .assert_problem(401, "unauthenticated");
    app.post_anon(
        "/v1/sessions/refresh",
        json!({ "refresh_token": user.refresh_token }),
    )
    .await
    .assert_problem(401, "refresh_token_invalid");
    // Logging in, stepping up and out are in the account's log (no token in it).
    let again = app.login("alice@example.com", PASSWORD).await;
    let token = again.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/v1/sessions/reauth",
        &token,
        json!({ "password": PASSWORD }),
    )
    .await
    .assert_status(200);
    let events = app
        .get(&format!("/v1/organizations/{}/events", user.org_id), &token)
        .await;
    let body = events.assert_status(200);
    let actions: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..4],
        [
            "session.reauthenticated",
            "session.created",
            "session.ended",
            "session.created"
        ],
        "{body}"
    );
    let text = body.to_string();
    assert!(!text.contains(&user.token) && !text.contains(&user.refresh_token));
}

async fn reauth_returns_a_token_with_a_fresh_auth_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    let before = claims(&user.token).1["auth_time"].as_i64().unwrap();
    app.clock.advance(Duration::from_secs(120));
    let res = app
        .post(
            "/v1/sessions/reauth",
            &user.token,
            json!({ "password": "wrong wrong wrong" }),
        )
        .await;
    res.assert_problem(403, "password_incorrect");
    let res = app
        .post(
            "/v1/sessions/reauth",
            &user.token,
            json!({ "password": PASSWORD }),
        )
        .await;
    let fresh = res.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let after = claims(&fresh).1["auth_time"].as_i64().unwrap();
    assert!(after >= before + 120, "{before} → {after}");
    assert_eq!(claims(&fresh).1["sid"], claims(&user.token).1["sid"]);
    app.get("/v1/me", &fresh).await.assert_status(200);
}

async fn unknown_login_and_wrong_password_look_the_same(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    let wrong = app
        .login("alice@example.com", "not the right password")
        .await;
    let unknown = app
        .login("nobody@example.com", "not the right password")
        .await;
    wrong.assert_problem(401, "invalid_credentials");
    unknown.assert_problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        wrong.headers.get("retry-after"),
        unknown.headers.get("retry-after")
    );
    // Same cost: each answer verified exactly one argon2 hash (a dummy one for the unknown
    // login), which is what makes their timing alike (measured in bench/, not asserted here).
    for login in ["alice@example.com", "nobody@example.com"] {
        let before = app.state.passwords.verifications();
        app.login(login, "not the right password").await;
        assert_eq!(app.state.passwords.verifications() - before, 1, "{login}");
    }
}

async fn failed_logins_return_429_with_retry_after_per_login_and_per_address(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.throttle.failures_per_login_and_ip = 3;
        c.throttle.failures_per_ip = 5;
    })
    .await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    for _ in 0..3 {
        app.login("alice@example.com", "wrong password here")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    // Throttled now from this address, even with the right password (elsewhere the owner
    // still logs in: wrong_passwords_from_elsewhere_never_lock_the_owner_out).
    let res = app.login("alice@example.com", PASSWORD).await;
    res.assert_problem(429, "too_many_requests");
    let retry: i64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60 + 60).contains(&retry), "{retry}");
    // Per client address: other logins, same address.
    app.login("bob@example.com", "wrong password here")
        .await
        .assert_problem(401, "invalid_credentials");
    app.login("carol@example.com", "wrong password here")
        .await
        .assert_problem(401, "invalid_credentials");
    app.login("dave@example.com", "wrong password here")
        .await
        .assert_problem(429, "too_many_requests");
    // The window slides: after it, logins work again.
    app.clock.advance(Duration::from_secs(16 * 60));
    app.login("alice@example.com", PASSWORD)
        .await
        .assert_status(200);
}

async fn parallel_wrong_passwords_never_pass_more_than_the_limit(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle.failures_per_login_and_ip = 3).await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/v1/sessions");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({ "login": "alice@example.com", "password": "guess guess guess" }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    // Each attempt is counted before its verification: no more than 3 guesses get checked.
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 3, "{statuses:?}");
    assert_eq!(checked + statuses.iter().filter(|s| **s == 429).count(), 12);
    assert!(app.state.passwords.verifications() <= 3 + 1);
}

async fn login_accepts_the_address_as_typed_at_sign_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.sign_up("Jean@Bücher.Example.", PASSWORD).await;
    assert_eq!(
        account.assert_status(201)["login"],
        "jean@xn--bcher-kva.example"
    );
    // The same normalisation as sign-up: Unicode domain, trailing dot, case.
    for typed in [
        "Jean@Bücher.Example.",
        "jean@bücher.example",
        " JEAN@XN--BCHER-KVA.EXAMPLE ",
    ] {
        app.login(typed, PASSWORD).await.assert_status(200);
    }
    // Text that is no address at all is an unknown login, not a validation error.
    app.login("not an address", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
}

/// A login through a reverse proxy (the test client's loopback address is a trusted proxy
/// by default) that received the request from `forwarded` (the `X-Forwarded-For` value).
async fn login_from(
    app: &crate::helpers::TestApp,
    login: &str,
    password: &str,
    forwarded: &str,
) -> u16 {
    app.client
        .post(app.url("/v1/sessions"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn wrong_passwords_from_elsewhere_never_lock_the_owner_out(backend: Backend) {
    // The defaults: 10 failures per (login, address), 100 per login, 50 per address.
    let app = spawn_app_with(backend, |c| c.trust_forwarded_for = true).await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    let attacker = "198.51.100.66";
    for _ in 0..10 {
        assert_eq!(
            login_from(&app, "alice@example.com", "guess guess guess", attacker).await,
            401
        );
    }
    assert_eq!(
        login_from(&app, "alice@example.com", "guess guess guess", attacker).await,
        429
    );
    // Even the right password is refused to the guesser's address…
    assert_eq!(
        login_from(&app, "alice@example.com", PASSWORD, attacker).await,
        429
    );
    // …but the owner, elsewhere, logs in: the attacker cannot keep her out.
    assert_eq!(
        login_from(&app, "alice@example.com", PASSWORD, "203.0.113.5").await,
        200
    );
    // Her success does not give the guesser more tries.
    assert_eq!(
        login_from(&app, "alice@example.com", "guess guess guess", attacker).await,
        429
    );
}

async fn failures_from_many_addresses_meet_the_ceiling_per_login(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.trust_forwarded_for = true;
        c.throttle.failures_per_login_and_ip = 3;
        c.throttle.failures_per_login = 12;
    })
    .await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    // A success starts the count again: only consecutive failures meet the ceiling.
    for i in 0..3 {
        let from = format!("198.51.100.{i}");
        assert_eq!(
            login_from(&app, "alice@example.com", "guess guess guess", &from).await,
            401
        );
    }
    assert_eq!(
        login_from(&app, "alice@example.com", PASSWORD, "203.0.113.5").await,
        200
    );
    let mut answers = Vec::new();
    for i in 0..8 {
        for _ in 0..2 {
            let from = format!("198.51.100.{i}");
            answers.push(login_from(&app, "alice@example.com", "guess guess guess", &from).await);
        }
    }
    // 12 wrong passwords from 6 addresses, then the login is closed to every address.
    assert_eq!(
        answers.iter().filter(|s| **s == 401).count(),
        12,
        "{answers:?}"
    );
    assert!(answers[12..].iter().all(|s| *s == 429), "{answers:?}");
    assert_eq!(
        login_from(&app, "alice@example.com", PASSWORD, "203.0.113.77").await,
        429
    );
}

async fn parallel_correct_logins_of_one_account_all_succeed(backend: Backend) {
    // Sixteen tabs at once from one address: with the default limits (10 per login and
    // address), and with a limit far below the number in flight (which then wait).
    for limit in [10, 2] {
        let app = spawn_app_with(backend, |c| c.throttle.failures_per_login_and_ip = limit).await;
        app.sign_up("alice@example.com", PASSWORD)
            .await
            .assert_status(201);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let client = app.client.clone();
                let url = app.url("/v1/sessions");
                tokio::spawn(async move {
                    client
                        .post(url)
                        .json(&json!({ "login": "alice@example.com", "password": PASSWORD }))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert!(statuses.iter().all(|s| *s == 200), "{limit}: {statuses:?}");
        // Nothing was counted as a failure, nothing stays in flight.
        let counted = app
            .scalar_i64("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM counters WHERE key LIKE 'fail:%' OR key LIKE 'pending:%'")
            .await;
        assert_eq!(counted, 0);
    }
}

async fn a_forged_forwarded_for_entry_does_not_escape_the_throttle(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.trust_forwarded_for = true;
        c.throttle.failures_per_login_and_ip = 3;
        c.throttle.failures_per_ip = 5;
    })
    .await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    // The client writes a new left-most entry each time; the proxy appends the real one.
    let mut answers = Vec::new();
    for i in 0..12 {
        let forged = format!("10.{i}.{i}.{i}, 198.51.100.7");
        answers.push(login_from(&app, "alice@example.com", "guess guess guess", &forged).await);
    }
    assert_eq!(
        answers.iter().filter(|s| **s == 401).count(),
        3,
        "{answers:?}"
    );
    // Other logins from the same real address: the per-address limit (5 in all).
    let mut others = Vec::new();
    for i in 0..6 {
        let forged = format!("10.9.9.{i}, 198.51.100.7");
        others.push(
            login_from(
                &app,
                &format!("u{i}@example.com"),
                "guess guess guess",
                &forged,
            )
            .await,
        );
    }
    assert_eq!(
        others.iter().filter(|s| **s == 401).count(),
        2,
        "{others:?}"
    );
    // A peer that is not a trusted proxy is taken at its address, whatever it forwards.
    let app = spawn_app_with(backend, |c| {
        c.trust_forwarded_for = true;
        c.trusted_proxies = vec!["10.0.0.0/8".into()];
        c.throttle.failures_per_login_and_ip = 3;
    })
    .await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    let mut answers = Vec::new();
    for i in 0..6 {
        let forged = format!("198.51.100.{i}");
        answers.push(login_from(&app, "alice@example.com", "guess guess guess", &forged).await);
    }
    assert_eq!(
        answers.iter().filter(|s| **s == 401).count(),
        3,
        "{answers:?}"
    );
}

/// The writes of a login (the session, its refresh token, its event, the settled throttle
/// counts) are sent as one batch (one statement on PostgreSQL): when one of them is refused,
/// none is kept, and the login answers a problem instead of a session.
async fn a_login_whose_writes_fail_keeps_none_of_them(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    // Refusing the event must undo the session and the settlement written with it (on
    // PostgreSQL all three are one statement; on SQLite the event comes last).
    let refuse = match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse_session_event BEFORE INSERT ON events \
             WHEN NEW.action = 'session.created' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        }
        Backend::Postgres => {
            "CREATE FUNCTION refuse_session_event() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.action = 'session.created' THEN RAISE EXCEPTION 'refused by the test'; \
             END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse_session_event BEFORE INSERT ON events \
             FOR EACH ROW EXECUTE FUNCTION refuse_session_event()"
        }
    };
    app.db()
        .execute_unprepared(refuse)
        .await
        .expect("install the trigger");
    let settled = "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM counters \
                   WHERE key LIKE 'pending:login:%'";
    let in_flight_before = app.scalar_i64(settled).await;

    let refused = app.login("alice@example.com", PASSWORD).await;
    refused.assert_problem(500, "internal_error");
    assert!(!refused.text.contains("access_token"));
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM refresh_tokens").await,
        0
    );
    let events = "SELECT COUNT(*) FROM events WHERE action = 'session.created'";
    assert_eq!(app.scalar_i64(events).await, 0);
    // The settlement of the in-flight count was one of the writes undone; the proof was then
    // taken out of flight on its own, so that it does not hold later proofs back.
    assert_eq!(app.scalar_i64(settled).await, in_flight_before);

    let drop = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_session_event",
        Backend::Postgres => "DROP TRIGGER refuse_session_event ON events",
    };
    app.db().execute_unprepared(drop).await.expect("drop it");
    let body = app.login("alice@example.com", PASSWORD).await;
    let body = body.assert_status(200);
    let (_, claims) = claims(body["access_token"].as_str().unwrap());
    let sid = claims["sid"].as_str().unwrap();
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM sessions").await, 1);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM refresh_tokens").await,
        1
    );
    assert_eq!(app.scalar_i64(events).await, 1);
    let recorded = format!(
        "SELECT COUNT(*) FROM events WHERE action = 'session.created' AND target = '{sid}'"
    );
    assert_eq!(app.scalar_i64(&recorded).await, 1);
    // Nothing of either login is left in flight.
    assert_eq!(app.scalar_i64(settled).await, in_flight_before);
}

/// On SQLite a login's account is read in the call that counts its proof in flight (one
/// script, rows of two statements in one list): the count answers that read's rows apart from
/// its windows, even rows shaped like a window's, none when the read finds nothing. On
/// PostgreSQL the read is not sent with the count (the caller sends it prepared once the
/// proof is admitted). Either way the count is written.
async fn the_in_flight_count_answers_the_read_sent_with_it_apart_from_its_windows(
    backend: Backend,
) {
    use postier::repo::counters;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let app = spawn_app(backend).await;
    let now = chrono::Utc::now();
    let bucket = counters::bucket_of(now);
    let rows = vec![
        ("pending:test:a".to_string(), bucket, 2),
        ("pending:test:b".to_string(), bucket, 1),
    ];
    let keys: Vec<String> = ["pending:test:a", "pending:test:b", "fail:test:a"]
        .map(String::from)
        .to_vec();
    let like_a_window = Query::select()
        .expr_as(Expr::val("not a window"), Alias::new("key"))
        .expr_as(Expr::val(7), Alias::new("total"))
        .to_owned();
    let (windows, read) =
        counters::add_then_windows(app.db(), &rows, &keys, now, 3600, Some(&like_a_window))
            .await
            .expect("count and read");
    assert_eq!(windows.len(), 2, "{windows:?}");
    assert_eq!(windows["pending:test:a"].total, 2);
    assert_eq!(windows["pending:test:b"].total, 1);
    assert_eq!(windows["pending:test:a"].oldest_bucket, Some(bucket));
    match backend {
        Backend::Sqlite => {
            let read = read.expect("sent with the count");
            assert_eq!(read.len(), 1);
            assert_eq!(
                read[0].try_get::<String>("", "key").unwrap(),
                "not a window"
            );
        }
        Backend::Postgres => assert!(read.is_none(), "sent by the caller once admitted"),
    }
    let counted = "SELECT CAST(SUM(count) AS BIGINT) FROM counters WHERE key LIKE 'pending:test:%'";
    assert_eq!(app.scalar_i64(counted).await, 3);

    let finds_nothing = Query::select()
        .expr(Expr::val(1))
        .from(Alias::new("accounts"))
        .and_where(Expr::col(Alias::new("login")).eq("nobody@example.com"))
        .to_owned();
    let (windows, read) =
        counters::add_then_windows(app.db(), &rows[..1], &keys, now, 3600, Some(&finds_nothing))
            .await
            .expect("count and read");
    assert_eq!(windows["pending:test:a"].total, 4);
    assert_eq!(windows["pending:test:b"].total, 1);
    match backend {
        Backend::Sqlite => assert_eq!(read.map(|rows| rows.len()), Some(0)),
        Backend::Postgres => assert!(read.is_none()),
    }
    assert_eq!(app.scalar_i64(counted).await, 5);
}
