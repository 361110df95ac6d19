//! Sign-up, the password policy, `GET/PATCH /v1/me` and changing the account password.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Backend, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    sign_up_returns_201_and_creates_the_personal_organization,
    sign_up_returns_409_when_the_login_is_taken,
    sign_up_returns_422_naming_login_when_it_is_not_an_address,
    sign_up_returns_422_naming_password_when_weak_short_or_containing_the_login,
    sign_up_stores_an_argon2id_hash_never_the_password,
    sign_up_returns_429_when_one_address_signs_up_too_often,
    me_returns_the_account_and_patch_changes_the_display_name,
    change_password_returns_200_and_ends_every_other_session,
    change_password_returns_403_when_the_current_password_is_wrong,
);

async fn sign_up_returns_201_and_creates_the_personal_organization(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .post_anon(
            "/v1/accounts",
            json!({ "login": "  Famille.Munster@La-Fibre.XYZ ", "password": PASSWORD, "display_name": "Famille Munster" }),
        )
        .await;
    let body = res.assert_status(201);
    assert_eq!(body["login"], "famille.munster@la-fibre.xyz");
    assert_eq!(body["display_name"], "Famille Munster");
    let user_token = app
        .login("famille.munster@la-fibre.xyz", PASSWORD)
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let orgs = app.get("/v1/organizations", &user_token).await;
    let orgs = orgs.assert_status(200);
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1);
    assert_eq!(orgs["items"][0]["personal"], true);
    assert_eq!(orgs["items"][0]["role"], "owner");
    assert_eq!(orgs["items"][0]["name"], "Famille Munster");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM memberships WHERE role = 'owner'")
            .await,
        1
    );
}

async fn sign_up_returns_409_when_the_login_is_taken(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    app.sign_up("ALICE@example.com", PASSWORD)
        .await
        .assert_problem(409, "account_already_exists");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM accounts").await, 1);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations").await,
        1
    );
}

async fn sign_up_returns_422_naming_login_when_it_is_not_an_address(backend: Backend) {
    let app = spawn_app(backend).await;
    for login in ["no-at-sign", "a b@example.com", "a@localhost", ""] {
        let res = app.sign_up(login, PASSWORD).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["login"], "{login}");
    }
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM accounts").await, 0);
}

async fn sign_up_returns_422_naming_password_when_weak_short_or_containing_the_login(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let cases = [
        ("short", "at least 12"),
        ("passwordpassword", "guess"),
        ("alice.wonderland@example.com-2026", "login"),
    ];
    for (password, why) in cases {
        let res = app.sign_up("alice.wonderland@example.com", password).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["password"]);
        assert!(
            res.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(why),
            "{}",
            res.text
        );
    }
    let long = "x".repeat(129);
    let res = app.sign_up("alice@example.com", &long).await;
    assert!(res.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("at most 128"));
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM accounts").await, 0);
}

async fn sign_up_stores_an_argon2id_hash_never_the_password(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up("alice@example.com", PASSWORD)
        .await
        .assert_status(201);
    let account = postier::repo::accounts::find_by_login(app.db(), "alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(account.password_hash.starts_with("$argon2id$v=19$"));
    assert!(!account.password_hash.contains(PASSWORD));
    let events = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM events WHERE CAST(details AS TEXT) LIKE '%{}%' OR target LIKE '%{}%'",
            "horse", "horse"
        ))
        .await;
    assert_eq!(events, 0);
}

async fn sign_up_returns_429_when_one_address_signs_up_too_often(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle.signups_per_ip = 3).await;
    for i in 0..3 {
        app.sign_up(&format!("user{i}@example.com"), PASSWORD)
            .await
            .assert_status(201);
    }
    let res = app.sign_up("user9@example.com", PASSWORD).await;
    res.assert_problem(429, "too_many_requests");
    let retry: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 3600 + 60, "{retry}");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM accounts").await, 3);
}

async fn me_returns_the_account_and_patch_changes_the_display_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    let me = app.get("/v1/me", &user.token).await;
    assert_eq!(me.assert_status(200)["login"], "alice@example.com");
    assert_eq!(me.body["id"], user.account_id.to_string());
    let res = app
        .patch("/v1/me", &user.token, json!({ "display_name": "Alice" }))
        .await;
    assert_eq!(res.assert_status(200)["display_name"], "Alice");
    let res = app
        .patch("/v1/me", &user.token, json!({ "display_name": null }))
        .await;
    assert!(res.assert_status(200)["display_name"].is_null());
    let res = app
        .patch(
            "/v1/me",
            &user.token,
            json!({ "display_name": "x".repeat(101) }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["display_name"]);
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", user.org_id),
            &user.token,
        )
        .await;
    assert_eq!(
        events.assert_status(200)["items"][0]["action"],
        "account.updated"
    );
}

async fn change_password_returns_200_and_ends_every_other_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    let other = app.login(&user.login, PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let new_password = "violet umbrella marching north";
    let res = app
        .put(
            "/v1/me/password",
            &user.token,
            json!({ "current_password": PASSWORD, "new_password": new_password }),
        )
        .await;
    assert_eq!(res.assert_status(200), &json!({ "unified_addresses": [] }));
    app.get("/v1/me", &user.token).await.assert_status(200);
    app.get("/v1/me", &other)
        .await
        .assert_problem(401, "unauthenticated");
    app.login(&user.login, PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    app.login(&user.login, new_password)
        .await
        .assert_status(200);
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", user.org_id),
            &user.token,
        )
        .await;
    let text = events.text.clone();
    assert!(text.contains("account.password_changed"));
    assert!(!text.contains(new_password) && !text.contains("argon2"));
}

async fn change_password_returns_403_when_the_current_password_is_wrong(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    let res = app
        .put(
            "/v1/me/password",
            &user.token,
            json!({ "current_password": "not the password at all", "new_password": "violet umbrella marching north" }),
        )
        .await;
    res.assert_problem(403, "password_incorrect");
    let res = app
        .put(
            "/v1/me/password",
            &user.token,
            json!({ "current_password": PASSWORD, "new_password": "short" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["new_password"]);
    app.login(&user.login, PASSWORD).await.assert_status(200);
}
