//! Verified logins: the link e-mailed at sign-up (read from the test SMTP server), sending it
//! again (throttled), what an unverified login is not (the account of an address for
//! sharing, unification and `this_address` invitations), and changing the login.

use std::time::Duration;

use serde_json::json;

use crate::addresses::{create_for_me, premium, STRONG};
use crate::helpers::{latest_token, spawn_app_with, token_in, Backend, PASSWORD};
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    sign_up_emails_a_link_that_verifies_the_login_once,
    resend_verification_returns_202_supersedes_the_old_link_and_is_throttled,
    an_unverified_login_is_not_the_account_of_the_address,
    change_login_needs_a_recent_proof_and_takes_effect_once_the_new_login_is_verified,
);

async fn sign_up_emails_a_link_that_verifies_the_login_once(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(smtp.url());
        c.public_url = Some("https://manager.example".into());
    })
    .await;
    let res = app.sign_up("Alice@Example.com", PASSWORD).await;
    assert_eq!(res.assert_status(201)["login_verified"], false);
    let alice = app.login("alice@example.com", PASSWORD).await;
    let token = alice.body["access_token"].as_str().unwrap().to_string();
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.assert_status(200)["login_verified"], false);
    assert!(me.body["pending_login"].is_null());
    assert_eq!(me.body["two_factor_enabled"], false);
    let mails = smtp
        .wait_for_matching("Subject: Confirm your login", 1)
        .await;
    assert_eq!(mails[0].to, vec!["alice@example.com"]);
    assert!(mails[0]
        .data
        .contains("https://manager.example/accounts/verify?token="));
    let link = token_in(&mails[0].data);
    assert_eq!(link.len(), 43);
    // Stored as its hash only.
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM account_tokens WHERE token_hash = '{link}'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM account_tokens WHERE token_hash = '{}'",
            postier::auth::token::hash(&link)
        ))
        .await,
        1
    );
    // No authentication needed: the link is the proof.
    let res = app
        .post_anon("/v1/accounts/verify", json!({ "token": link }))
        .await;
    let body = res.assert_status(200);
    assert_eq!(body["login"], "alice@example.com");
    assert_eq!(body["login_verified"], true);
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.assert_status(200)["login_verified"], true);
    // Single use; a made-up or malformed token is refused the same way.
    for token in [link.clone(), postier::auth::token::generate(), "x".into()] {
        app.post_anon("/v1/accounts/verify", json!({ "token": token }))
            .await
            .assert_problem(400, "token_invalid");
    }
    // The account's own log says so, and holds no token.
    let orgs = app.get("/v1/organizations", &token).await;
    let org = orgs.body["items"][0]["id"].as_str().unwrap().to_string();
    let events = app
        .get(&format!("/v1/organizations/{org}/events"), &token)
        .await;
    assert_eq!(
        events.assert_status(200)["items"][0]["action"],
        "account.login_verified"
    );
    assert!(!events.text.contains(&link));
    // Once delivered, the message no longer holds the link.
    let scrubbed = "SELECT COUNT(*) FROM outbox WHERE recipient = 'alice@example.com' AND sent_at IS NOT NULL AND body NOT LIKE '%token=%'";
    for _ in 0..100 {
        if app.scalar_i64(scrubbed).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.scalar_i64(scrubbed).await, 1);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM outbox WHERE body LIKE '%token=%'")
            .await,
        0
    );
}

async fn resend_verification_returns_202_supersedes_the_old_link_and_is_throttled(
    backend: Backend,
) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(smtp.url());
        c.throttle.account_mails_per_login = 2;
    })
    .await;
    let bob = app.unverified_user("bob@example.com").await;
    let first = latest_token(&smtp, "bob@example.com", "Confirm your login").await;
    let res = app
        .request(
            reqwest::Method::POST,
            "/v1/me/verification",
            Some(&bob.token),
            None,
        )
        .await;
    res.assert_status(202);
    assert_eq!(res.text, "");
    let mails = smtp.wait_for_matching("Confirm your login", 2).await;
    let second = token_in(&mails[1].data);
    assert_ne!(first, second);
    // The newer link supersedes the older one.
    app.post_anon("/v1/accounts/verify", json!({ "token": first }))
        .await
        .assert_problem(400, "token_invalid");
    app.post("/v1/me/verification", &bob.token, json!({}))
        .await
        .assert_status(202);
    let res = app.post("/v1/me/verification", &bob.token, json!({})).await;
    res.assert_problem(429, "too_many_requests");
    let retry: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 3600 + 60, "{retry}");
    let mails = smtp.wait_for_matching("Confirm your login", 3).await;
    let latest = token_in(&mails[2].data);
    app.post_anon("/v1/accounts/verify", json!({ "token": latest }))
        .await
        .assert_status(200);
    app.post("/v1/me/verification", &bob.token, json!({}))
        .await
        .assert_problem(409, "login_already_verified");
    let sent = app
        .scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'account.verification_sent'")
        .await;
    assert_eq!(sent, 2);
}

/// Julie signs up with an address of Alice's organization as her login. Until she proves it
/// by the e-mailed link, she is not "the account whose login the address is": the address
/// stays shareable with others, cannot be unified with her account, and a `this_address`
/// invitation is not hers to accept.
async fn an_unverified_login_is_not_the_account_of_the_address(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let created = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "julie", "for": "other_user", "invitee": { "email": "julie@home.example" }, "account_binding": "this_address", "password": STRONG, "permissions": ["change_password", "send_email"] }),
        )
        .await;
    let id = created.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let invitation = latest_token(&smtp, "julie@home.example", "invites you to use").await;
    let julie = app.unverified_user("julie@famille.example").await;
    let res = app
        .post(
            "/v1/invitations/accept",
            &julie.token,
            json!({ "token": invitation }),
        )
        .await;
    res.assert_problem(403, "invitation_binding_mismatch");
    assert!(res.body["detail"].as_str().unwrap().contains("verified"));
    // Julie gets in with a share link meanwhile: unification is still not offered.
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["change_password"], "max_uses": 2 }),
        )
        .await;
    let link = link.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/v1/share-links/redeem",
        &julie.token,
        json!({ "token": link }),
    )
    .await
    .assert_status(200);
    let address = app.get(&format!("/v1/addresses/{id}"), &julie.token).await;
    let unification = address.assert_status(200)["password_unification"].clone();
    assert_eq!(unification["eligible"], false, "{unification}");
    assert!(unification["reason"]
        .as_str()
        .unwrap()
        .contains("verified login"));
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &julie.token,
        json!({ "new_password": "shared horse battery staple", "unify": true, "current_password": PASSWORD }),
    )
    .await
    .assert_problem(409, "unification_not_eligible");
    // Nor is the address hers alone: Alice may still share it.
    let carol = app.user("carol@example.com").await;
    app.post(
        "/v1/share-links/redeem",
        &carol.token,
        json!({ "token": link }),
    )
    .await
    .assert_status(200);
    app.delete(
        &format!("/v1/addresses/{id}/users/{}", carol.account_id),
        &alice.token,
    )
    .await
    .assert_status(204);
    // Verified, she is that account: unification is offered, sharing with others refused,
    // and the `this_address` invitation hers (it adds nothing to the access she has).
    app.verify_by_email(&smtp, "julie@famille.example").await;
    let address = app.get(&format!("/v1/addresses/{id}"), &julie.token).await;
    assert_eq!(
        address.assert_status(200)["password_unification"]["eligible"],
        true
    );
    app.post(
        &format!("/v1/addresses/{id}/share-links"),
        &alice.token,
        json!({ "permissions": ["send_email"] }),
    )
    .await
    .assert_problem(409, "address_is_account_login");
    app.post(
        "/v1/invitations/accept",
        &julie.token,
        json!({ "token": invitation }),
    )
    .await
    .assert_problem(409, "access_already_exists");
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &julie.token,
        json!({ "new_password": "shared horse battery staple", "unify": true, "current_password": PASSWORD }),
    )
    .await
    .assert_status(200);
}

async fn change_login_needs_a_recent_proof_and_takes_effect_once_the_new_login_is_verified(
    backend: Backend,
) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@famille.example").await;
    app.user("taken@example.com").await;
    // Alice's login is also an address of hers, unified with her account.
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
    let alice = crate::helpers::TestUser {
        password: STRONG.to_string(),
        ..alice
    };
    // An old proof is not enough.
    app.clock.advance(Duration::from_secs(601));
    app.put(
        "/v1/me/login",
        &alice.token,
        json!({ "login": "alice@nouvelle-box.example" }),
    )
    .await
    .assert_problem(403, "reauthentication_required");
    let fresh = app.reauth(&alice).await;
    app.put("/v1/me/login", &fresh, json!({ "login": "not a login" }))
        .await
        .assert_problem(422, "validation_failed");
    app.put(
        "/v1/me/login",
        &fresh,
        json!({ "login": "taken@example.com" }),
    )
    .await
    .assert_problem(409, "account_already_exists");
    let res = app
        .put(
            "/v1/me/login",
            &fresh,
            json!({ "login": "Alice@Nouvelle-Box.example" }),
        )
        .await;
    let body = res.assert_status(202);
    assert_eq!(body["login"], "alice@famille.example");
    assert_eq!(body["pending_login"], "alice@nouvelle-box.example");
    // Nothing changes before the new login is verified.
    app.login("alice@famille.example", STRONG)
        .await
        .assert_status(200);
    app.login("alice@nouvelle-box.example", STRONG)
        .await
        .assert_problem(401, "invalid_credentials");
    let link = latest_token(
        &smtp,
        "alice@nouvelle-box.example",
        "Confirm your new login",
    )
    .await;
    let res = app
        .post_anon("/v1/accounts/verify", json!({ "token": link }))
        .await;
    assert_eq!(
        res.assert_status(200)["login"],
        "alice@nouvelle-box.example"
    );
    let me = app.get("/v1/me", &fresh).await;
    let me = me.assert_status(200);
    assert_eq!(me["login"], "alice@nouvelle-box.example");
    assert_eq!(me["login_verified"], true);
    assert!(me["pending_login"].is_null());
    app.login("alice@famille.example", STRONG)
        .await
        .assert_problem(401, "invalid_credentials");
    app.login("alice@nouvelle-box.example", STRONG)
        .await
        .assert_status(200);
    // The old login is told, and the address that was the old login is no longer unified.
    smtp.wait_for_matching("Subject: Your login changed", 1)
        .await;
    let address = app
        .get(&format!("/v1/addresses/{address_id}"), &fresh)
        .await;
    assert_eq!(
        address.assert_status(200)["password_unification"]["unified"],
        false
    );
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &fresh,
        )
        .await;
    let changed = events.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "account.login_changed")
        .unwrap()
        .clone();
    assert_eq!(changed["details"]["from"], "alice@famille.example");
    assert_eq!(changed["details"]["to"], "alice@nouvelle-box.example");
    assert_eq!(
        changed["details"]["unification_ended"],
        json!(["alice@famille.example"])
    );
    assert!(!events.text.contains(&link));
}
