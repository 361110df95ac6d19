//! Deleting an account: a recent proof and the login as confirmation, refused while it is
//! the last owner of an organization holding a mail service; its organizations without a
//! service go, it leaves the others, its accesses and sessions go, its events stay with the
//! actor shown as deleted. Also leaving an organization, and the RFC 6750 challenges.

use std::time::Duration;

use serde_json::json;

use crate::addresses::{create_for_me, premium};
use crate::helpers::{spawn_app, spawn_app_with, Backend, PASSWORD};
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    delete_me_needs_a_recent_proof_and_the_login_as_confirmation,
    the_last_owner_of_an_organization_with_a_mail_service_cannot_delete_the_account,
    a_member_leaves_an_organization_but_not_as_its_last_owner,
    every_401_carries_a_bearer_challenge,
);

async fn delete_me_needs_a_recent_proof_and_the_login_as_confirmation(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    // Alice leaves traces in Bob's organization.
    app.add_member(&bob, &alice, "admin").await;
    app.patch(
        &format!("/v1/organizations/{}", bob.org_id),
        &alice.token,
        json!({ "name": "Renamed by Alice" }),
    )
    .await
    .assert_status(200);
    app.clock.advance(Duration::from_secs(601));
    app.delete("/v1/me?confirm=alice@example.com", &alice.token)
        .await
        .assert_problem(403, "reauthentication_required");
    let fresh = app.reauth(&alice).await;
    for path in ["/v1/me", "/v1/me?confirm=bob@example.com"] {
        let res = app.delete(path, &fresh).await;
        res.assert_problem(422, "confirmation_required");
        assert_eq!(res.error_fields(), vec!["confirm"]);
    }
    let other_session = app.login(&alice.login, PASSWORD).await;
    let other_session = other_session.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete("/v1/me?confirm=Alice@Example.com", &fresh)
        .await
        .assert_status(204);
    // Its sessions went: every token stops at once; the login is free again.
    for token in [&fresh, &other_session] {
        let res = app.get("/v1/me", token).await;
        res.assert_problem(401, "unauthenticated");
        assert_eq!(
            res.headers["www-authenticate"].to_str().unwrap(),
            "Bearer realm=\"postier\", error=\"invalid_token\""
        );
    }
    app.login(&alice.login, PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    // Only Bob's rows are left: his account, his session, his personal organization's
    // membership.
    for table in ["accounts", "sessions", "memberships"] {
        let left = app
            .scalar_i64(&format!("SELECT COUNT(*) FROM {table}"))
            .await;
        assert_eq!(left, 1, "{table}");
    }
    // Her personal organization, holding no mail service, went with her.
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations").await,
        1
    );
    // Bob's log keeps what she did, the actor shown as deleted, and her departure.
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", bob.org_id),
            &bob.token,
        )
        .await;
    let items = events.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items[0]["action"], "member.left");
    assert_eq!(items[0]["target"], "alice@example.com");
    let renamed = items
        .iter()
        .find(|e| e["action"] == "organization.renamed")
        .unwrap();
    assert_eq!(renamed["actor_account_id"], alice.account_id.to_string());
    assert_eq!(renamed["actor_deleted"], true);
    let bobs = items
        .iter()
        .find(|e| e["action"] == "member_invitation.created")
        .unwrap();
    assert_eq!(bobs["actor_deleted"], false);
    let deleted = app
        .scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'account.deleted'")
        .await;
    assert_eq!(deleted, 1);
    smtp.wait_for_matching("Subject: Your account was deleted", 1)
        .await;
    // The login can sign up again, as a new account.
    let again = app.user("alice@example.com").await;
    assert_ne!(again.account_id, alice.account_id);
}

async fn the_last_owner_of_an_organization_with_a_mail_service_cannot_delete_the_account(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "alice").await;
    let address_id = address["id"].as_str().unwrap().to_string();
    let res = app
        .delete("/v1/me?confirm=alice@example.com", &alice.token)
        .await;
    res.assert_problem(409, "organization_last_owner");
    assert!(res.body["detail"]
        .as_str()
        .unwrap()
        .contains("alice@example.com"));
    // Nothing changed.
    app.get("/v1/me", &alice.token).await.assert_status(200);
    // With another owner, she may go; the organization stays with its service and address.
    app.add_member(&alice, &bob, "owner").await;
    app.delete("/v1/me?confirm=alice@example.com", &alice.token)
        .await
        .assert_status(204);
    let service = app
        .get(&format!("/v1/mail-services/{service}"), &bob.token)
        .await;
    assert_eq!(service.assert_status(200)["address_count"], 1);
    // Her access went, and the address's history says so.
    let users = app
        .get(&format!("/v1/addresses/{address_id}/users"), &bob.token)
        .await;
    assert_eq!(users.assert_status(200)["items"], json!([]));
    let events = app
        .get(&format!("/v1/addresses/{address_id}/events"), &bob.token)
        .await;
    let latest = events.assert_status(200)["items"][0].clone();
    assert_eq!(latest["action"], "access.removed");
    assert_eq!(latest["actor_deleted"], true);
    let members = app
        .get(
            &format!("/v1/organizations/{}/members", alice.org_id),
            &bob.token,
        )
        .await;
    let members = members.assert_status(200)["items"].clone();
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["login"], "bob@example.com");
}

async fn a_member_leaves_an_organization_but_not_as_its_last_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.add_member(&alice, &bob, "owner").await;
    let leave = |org: uuid::Uuid, who: &crate::helpers::TestUser| {
        let path = format!("/v1/organizations/{org}/members/{}", who.account_id);
        let (app, token) = (&app, who.token.clone());
        async move { app.delete(&path, &token).await }
    };
    // Bob's own personal organization keeps him: he is its last owner.
    leave(bob.org_id, &bob)
        .await
        .assert_problem(409, "organization_last_owner");
    leave(alice.org_id, &bob).await.assert_status(204);
    app.get(&format!("/v1/organizations/{}", alice.org_id), &bob.token)
        .await
        .assert_problem(404, "not_found");
    leave(alice.org_id, &alice)
        .await
        .assert_problem(409, "organization_last_owner");
}

async fn every_401_carries_a_bearer_challenge(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let challenge = |res: &crate::helpers::TestResponse| {
        res.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let plain = Some("Bearer realm=\"postier\"".to_string());
    let refused = Some("Bearer realm=\"postier\", error=\"invalid_token\"".to_string());
    // No token: a bare challenge.
    let res = app
        .request(reqwest::Method::GET, "/v1/me", None, None)
        .await;
    res.assert_problem(401, "unauthenticated");
    assert_eq!(challenge(&res), plain);
    // A token that was sent and refused.
    for token in ["not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"] {
        let res = app.get("/v1/me", token).await;
        res.assert_problem(401, "unauthenticated");
        assert_eq!(challenge(&res), refused, "{token}");
    }
    app.post(
        "/v1/sessions/refresh",
        &alice.token,
        json!({ "refresh_token": "x" }),
    )
    .await
    .assert_problem(401, "refresh_token_invalid");
    let res = app
        .post_anon("/v1/sessions/refresh", json!({ "refresh_token": "x" }))
        .await;
    assert_eq!(challenge(&res), plain);
    let res = app.login(&alice.login, "not the password at all").await;
    res.assert_problem(401, "invalid_credentials");
    assert_eq!(challenge(&res), plain);
    // An expired one, and a logged-out one.
    app.clock.advance(Duration::from_secs(15 * 60 + 10));
    let res = app.get("/v1/me", &alice.token).await;
    assert_eq!(challenge(&res), refused);
    let alice = app.relogin(&alice).await;
    app.delete("/v1/sessions/current", &alice.token)
        .await
        .assert_status(204);
    let res = app.get("/v1/me", &alice.token).await;
    assert_eq!(challenge(&res), refused);
    // Other errors carry none.
    let res = app.get("/v1/nowhere", "x").await;
    assert!(challenge(&res).is_none());
}
