//! Password reset by e-mail: the same answer for any login (body, headers, and no work that
//! depends on the account before answering), the e-mailed link (an hour, single use), what
//! completing it does (every session ends, the unified addresses follow and are listed, the
//! login is proven), and the throttles per login and per client address.

use std::time::Duration;

use serde_json::json;

use crate::addresses::{create_for_me, premium, STRONG};
use crate::helpers::{latest_token, spawn_app_with, Backend, TestResponse, PASSWORD};
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    password_reset_answers_the_same_whether_or_not_the_login_exists,
    a_reset_link_sets_the_password_ends_every_session_and_lists_unified_addresses,
    reset_links_expire_after_an_hour_and_requests_are_throttled,
);

fn comparable(res: &TestResponse) -> (u16, Vec<(String, String)>, String) {
    let mut headers: Vec<(String, String)> = res
        .headers
        .iter()
        // Per-response by nature: the time, and the request's own id.
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    headers.sort();
    (res.status.as_u16(), headers, res.text.clone())
}

/// Timing, without timing anything: the answer must not wait for any work that depends on
/// whether the login exists. Both answers are compared byte for byte (status, headers but
/// `Date`, body), neither runs an argon2 verification, and on PostgreSQL the answer for a
/// known login comes back while the test holds a lock that the account's work (issuing its
/// link) needs: that work runs after the answer.
async fn password_reset_answers_the_same_whether_or_not_the_login_exists(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(smtp.url());
        c.public_url = Some("https://manager.example".into());
    })
    .await;
    app.user("alice@example.com").await;
    let verifications = app.state.passwords.verifications();
    let unknown = app
        .post_anon(
            "/v1/password-resets",
            json!({ "login": "nobody@example.com" }),
        )
        .await;
    let known = app
        .post_anon(
            "/v1/password-resets",
            json!({ "login": "Alice@Example.com" }),
        )
        .await;
    known.assert_status(202);
    assert_eq!(comparable(&known), comparable(&unknown));
    assert_eq!(known.text, "");
    assert_eq!(app.state.passwords.verifications(), verifications);
    // Only the known login gets a link.
    let link = latest_token(&smtp, "alice@example.com", "Subject: Reset your password").await;
    assert_eq!(link.len(), 43);
    assert!(
        smtp.matching("https://manager.example/password-reset?token=")
            .len()
            == 1
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM outbox WHERE recipient = 'nobody@example.com'")
            .await,
        0
    );
    // Invalid logins are refused by syntax only, the same for everyone.
    app.post_anon("/v1/password-resets", json!({ "login": "not a login" }))
        .await
        .assert_problem(422, "validation_failed");
    if let Some(pg) = &app.pg {
        use sea_orm::{ConnectionTrait, Database, Statement, TransactionTrait};
        let other = Database::connect(&pg.url).await.unwrap();
        let lock = other.begin().await.unwrap();
        lock.execute_raw(Statement::from_string(
            other.get_database_backend(),
            "LOCK TABLE account_tokens IN EXCLUSIVE MODE",
        ))
        .await
        .unwrap();
        let before = app
            .scalar_i64("SELECT COUNT(*) FROM account_tokens WHERE purpose = 'password_reset'")
            .await;
        // A deadlock guard, not a timing assertion: waiting for the lock would never end.
        let answer = tokio::time::timeout(
            Duration::from_secs(20),
            app.post_anon(
                "/v1/password-resets",
                json!({ "login": "alice@example.com" }),
            ),
        )
        .await
        .expect("the answer does not wait for the account's link");
        assert_eq!(comparable(&answer), comparable(&unknown));
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM account_tokens WHERE purpose = 'password_reset'")
                .await,
            before
        );
        lock.commit().await.unwrap();
        smtp.wait_for_matching("Subject: Reset your password", 2)
            .await;
    }
}

async fn a_reset_link_sets_the_password_ends_every_session_and_lists_unified_addresses(
    backend: Backend,
) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@famille.example").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "alice").await;
    let address_id = address["id"].as_str().unwrap().to_string();
    app.put(
        &format!("/v1/addresses/{address_id}/password"),
        &alice.token,
        json!({ "new_password": STRONG, "unify": true, "current_password": PASSWORD }),
    )
    .await
    .assert_status(200);
    let other = app.login(&alice.login, STRONG).await;
    let other = other.assert_status(200).clone();
    app.post_anon("/v1/password-resets", json!({ "login": alice.login }))
        .await
        .assert_status(202);
    let link = latest_token(&smtp, &alice.login, "Subject: Reset your password").await;
    // The password policy applies.
    let res = app
        .post_anon(
            "/v1/password-resets/complete",
            json!({ "token": link, "new_password": "short" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["new_password"]);
    let new_password = "purple giraffe dancing slowly";
    let res = app
        .post_anon(
            "/v1/password-resets/complete",
            json!({ "token": link, "new_password": new_password }),
        )
        .await;
    assert_eq!(
        res.assert_status(200),
        &json!({ "unified_addresses": ["alice@famille.example"] })
    );
    // Every session ended, refresh tokens included.
    for token in [&alice.token, other["access_token"].as_str().unwrap()] {
        let res = app.get("/v1/me", token).await;
        res.assert_problem(401, "unauthenticated");
    }
    app.post_anon(
        "/v1/sessions/refresh",
        json!({ "refresh_token": other["refresh_token"] }),
    )
    .await
    .assert_problem(401, "refresh_token_invalid");
    app.login(&alice.login, STRONG)
        .await
        .assert_problem(401, "invalid_credentials");
    let session = app.login(&alice.login, new_password).await;
    let token = session.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The unified address follows the new password.
    let same = app
        .scalar_i64("SELECT COUNT(*) FROM addresses a JOIN accounts c ON c.login = a.address WHERE a.password_hash = c.password_hash")
        .await;
    assert_eq!(same, 1);
    // Single use.
    app.post_anon(
        "/v1/password-resets/complete",
        json!({ "token": link, "new_password": "another fine long passphrase" }),
    )
    .await
    .assert_problem(400, "token_invalid");
    smtp.wait_for_matching("Subject: Your password was changed", 1)
        .await;
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &token,
        )
        .await;
    let events = events.assert_status(200).clone();
    let changed = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "account.password_changed")
        .unwrap()
        .clone();
    assert_eq!(changed["details"]["via"], "password_reset");
    assert_eq!(changed["details"]["unified_addresses_updated"], 1);
    assert!(events["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "account.password_reset_requested"));
    let text = events.to_string();
    assert!(!text.contains(&link) && !text.contains(new_password));
}

async fn reset_links_expire_after_an_hour_and_requests_are_throttled(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(smtp.url());
        c.throttle.account_mails_per_login = 1;
        c.throttle.account_mails_per_ip = 2;
    })
    .await;
    let bob = app.unverified_user("bob@example.com").await;
    let ask = |login: &'static str| {
        let app = &app;
        async move {
            app.post_anon("/v1/password-resets", json!({ "login": login }))
                .await
        }
    };
    ask("bob@example.com").await.assert_status(202);
    let first = latest_token(&smtp, "bob@example.com", "Subject: Reset your password").await;
    // An hour later the link no longer works.
    app.clock.advance(Duration::from_secs(3601));
    app.post_anon(
        "/v1/password-resets/complete",
        json!({ "token": first, "new_password": "purple giraffe dancing slowly" }),
    )
    .await
    .assert_problem(400, "token_invalid");
    // One request per login and two per client address in the window (the first one slid
    // out of it with the hour).
    ask("bob@example.com").await.assert_status(202);
    let throttled = ask("bob@example.com").await;
    throttled.assert_problem(429, "too_many_requests");
    assert!(throttled.headers.contains_key("retry-after"));
    // Per login, a login no account has counts the same.
    ask("nobody@example.com").await.assert_status(202);
    // Per client address: the third request of the window from here.
    let throttled = ask("nobody2@example.com").await;
    throttled.assert_problem(429, "too_many_requests");
    let second = smtp
        .wait_for_matching("Subject: Reset your password", 2)
        .await;
    let second = crate::helpers::token_in(&second[1].data);
    // Following a link proves the login, as a verification link would.
    app.post_anon(
        "/v1/password-resets/complete",
        json!({ "token": second, "new_password": "purple giraffe dancing slowly" }),
    )
    .await
    .assert_status(200);
    let session = app.login(&bob.login, "purple giraffe dancing slowly").await;
    let token = session.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.assert_status(200)["login_verified"], true);
}
