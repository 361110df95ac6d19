//! Joining an organization needs consent: member invitations (the same answer whether or
//! not an account has the login), the e-mailed link, the invitee's list once its login is
//! verified, accepting, declining, revoking, expiry, and the free pack's allowance counting
//! accepted members only.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{latest_token, spawn_app, spawn_app_with, Backend, TestApp, TestUser};
use crate::mail_services::create_service;
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    adding_a_member_answers_the_same_whether_or_not_an_account_has_the_login,
    an_unverified_login_answers_with_the_emailed_link_only,
    owners_and_admins_list_and_revoke_member_invitations,
    the_free_pack_allowance_counts_accepted_members_only,
);

async fn invite(app: &TestApp, owner: &TestUser, login: &str, role: &str) -> Value {
    let res = app
        .post(
            &format!("/v1/organizations/{}/members", owner.org_id),
            &owner.token,
            json!({ "login": login, "role": role }),
        )
        .await;
    res.assert_status(202).clone()
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

async fn members(app: &TestApp, owner: &TestUser) -> Vec<String> {
    let res = app
        .get(
            &format!("/v1/organizations/{}/members", owner.org_id),
            &owner.token,
        )
        .await;
    res.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["login"].as_str().unwrap(),
                m["role"].as_str().unwrap()
            )
        })
        .collect()
}

async fn adding_a_member_answers_the_same_whether_or_not_an_account_has_the_login(
    backend: Backend,
) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(smtp.url());
        c.public_url = Some("https://manager.example".into());
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let known = invite(&app, &alice, "bob@example.com", "admin").await;
    let unknown = invite(&app, &alice, "zoe@elsewhere.example", "user").await;
    assert_eq!(keys(&known), keys(&unknown));
    for (invitation, login) in [
        (&known, "bob@example.com"),
        (&unknown, "zoe@elsewhere.example"),
    ] {
        assert_eq!(invitation["login"], login);
        assert_eq!(invitation["status"], "pending");
        assert_eq!(invitation["organization_id"], alice.org_id.to_string());
        assert_eq!(invitation["created_by"], alice.account_id.to_string());
    }
    // Nobody joined yet.
    assert_eq!(members(&app, &alice).await, vec!["alice@example.com:owner"]);
    // Both are e-mailed a link; its token is stored as a hash only.
    let zoe_link = latest_token(&smtp, "zoe@elsewhere.example", "invites you to join").await;
    latest_token(&smtp, "bob@example.com", "invites you to join").await;
    assert_eq!(
        smtp.matching("https://manager.example/member-invitations/accept?token=")
            .len(),
        2
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM member_invitations WHERE token_hash = '{zoe_link}'"
        ))
        .await,
        0
    );
    // Bob, whose verified login it is, finds it among his and accepts it.
    let mine = app.get("/v1/me/member-invitations", &bob.token).await;
    let mine = mine.assert_status(200)["items"].clone();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], known["id"]);
    assert_eq!(mine[0]["organization_name"], "alice@example.com");
    let id = known["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/member-invitations/{id}/accept"),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(res.assert_status(200)["status"], "accepted");
    app.post(
        &format!("/v1/member-invitations/{id}/accept"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    // Zoe had no account: she signs up with another login and joins with the e-mailed link,
    // which proves she received it.
    let zoe = app.user("zoe.perso@example.com").await;
    let res = app
        .post(
            "/v1/member-invitations/accept",
            &zoe.token,
            json!({ "token": zoe_link }),
        )
        .await;
    assert_eq!(res.assert_status(200)["status"], "accepted");
    let mut all = members(&app, &alice).await;
    all.sort();
    assert_eq!(
        all,
        vec![
            "alice@example.com:owner",
            "bob@example.com:admin",
            "zoe.perso@example.com:user"
        ]
    );
    // Single use, and an unknown token is not found.
    let other = app.user("other@example.com").await;
    app.post(
        "/v1/member-invitations/accept",
        &other.token,
        json!({ "token": zoe_link }),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    app.post(
        "/v1/member-invitations/accept",
        &other.token,
        json!({ "token": postier::auth::token::generate() }),
    )
    .await
    .assert_problem(404, "not_found");
    // A member is not invited again.
    app.post(
        &format!("/v1/organizations/{}/members", alice.org_id),
        &alice.token,
        json!({ "login": "bob@example.com", "role": "user" }),
    )
    .await
    .assert_problem(409, "member_already_exists");
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    let text = events.assert_status(200).to_string();
    assert!(text.contains("member_invitation.accepted") && text.contains("member.added"));
    assert!(!text.contains(&zoe_link));
}

async fn an_unverified_login_answers_with_the_emailed_link_only(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.unverified_user("bob@example.com").await;
    let invitation = invite(&app, &alice, "bob@example.com", "user").await;
    let id = invitation["id"].as_str().unwrap();
    // Signing up with a login proves nothing: the invitation is not his yet.
    let mine = app.get("/v1/me/member-invitations", &bob.token).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    for verb in ["accept", "decline"] {
        app.post(
            &format!("/v1/member-invitations/{id}/{verb}"),
            &bob.token,
            json!({}),
        )
        .await
        .assert_problem(404, "not_found");
    }
    // Verified, it is; he declines.
    app.verify_by_email(&smtp, "bob@example.com").await;
    let mine = app.get("/v1/me/member-invitations", &bob.token).await;
    assert_eq!(mine.assert_status(200)["items"][0]["id"], id);
    app.post(
        &format!("/v1/member-invitations/{id}/decline"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_status(204);
    app.post(
        &format!("/v1/member-invitations/{id}/accept"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    let mine = app.get("/v1/me/member-invitations", &bob.token).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    let list = app
        .get(
            &format!("/v1/organizations/{}/member-invitations", alice.org_id),
            &alice.token,
        )
        .await;
    assert_eq!(list.assert_status(200)["items"][0]["status"], "declined");
    assert_eq!(members(&app, &alice).await, vec!["alice@example.com:owner"]);
}

async fn owners_and_admins_list_and_revoke_member_invitations(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let admin = app.user("admin@example.com").await;
    let user = app.user("user@example.com").await;
    let stranger = app.user("stranger@example.com").await;
    app.add_member(&alice, &admin, "admin").await;
    app.add_member(&alice, &user, "user").await;
    // Only owners invite owners; users invite nobody; strangers see nothing.
    app.post(
        &format!("/v1/organizations/{}/members", alice.org_id),
        &admin.token,
        json!({ "login": "new@example.com", "role": "owner" }),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post(
        &format!("/v1/organizations/{}/members", alice.org_id),
        &user.token,
        json!({ "login": "new@example.com", "role": "user" }),
    )
    .await
    .assert_problem(403, "forbidden");
    let pending = invite(&app, &alice, "new@example.com", "user").await;
    let pending_id = pending["id"].as_str().unwrap().to_string();
    // One pending invitation per login.
    app.post(
        &format!("/v1/organizations/{}/members", alice.org_id),
        &admin.token,
        json!({ "login": "New@Example.com", "role": "admin" }),
    )
    .await
    .assert_problem(409, "invitation_already_pending");
    let path = format!("/v1/organizations/{}/member-invitations", alice.org_id);
    let list = app.get(&path, &admin.token).await;
    let items = list.assert_status(200)["items"].as_array().unwrap().clone();
    // The two accepted ones of the setup, then the pending one.
    assert_eq!(items.len(), 3);
    assert_eq!(items[2]["id"], pending["id"]);
    app.get(&path, &user.token)
        .await
        .assert_problem(403, "forbidden");
    app.get(&path, &stranger.token)
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("/v1/member-invitations/{pending_id}"), &user.token)
        .await
        .assert_problem(403, "forbidden");
    app.delete(
        &format!("/v1/member-invitations/{pending_id}"),
        &stranger.token,
    )
    .await
    .assert_problem(404, "not_found");
    let link = latest_token(&smtp, "new@example.com", "invites you to join").await;
    app.delete(
        &format!("/v1/member-invitations/{pending_id}"),
        &admin.token,
    )
    .await
    .assert_status(204);
    app.delete(
        &format!("/v1/member-invitations/{pending_id}"),
        &admin.token,
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    let newcomer = app.user("new@example.com").await;
    app.post(
        "/v1/member-invitations/accept",
        &newcomer.token,
        json!({ "token": link }),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    // A revoked invitation frees the login for a new one, which expires after seven days.
    let again = invite(&app, &alice, "new@example.com", "user").await;
    app.clock.advance(Duration::from_secs(7 * 24 * 3600 + 1));
    let (newcomer, alice) = (app.relogin(&newcomer).await, app.relogin(&alice).await);
    let id = again["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/member-invitations/{id}/accept"),
            &newcomer.token,
            json!({}),
        )
        .await;
    res.assert_problem(410, "invitation_expired");
    let list = app.get(&path, &alice.token).await;
    let statuses: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["accepted", "accepted", "revoked", "expired"]);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'member_invitation.revoked'")
            .await,
        1
    );
}

async fn the_free_pack_allowance_counts_accepted_members_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let free = create_service(&app, &alice, None, "free").await;
    let free = free["id"].as_str().unwrap().to_string();
    let create = |who: &'static str, local: &'static str| {
        let (app, free) = (&app, free.clone());
        let token = if who == "alice" {
            alice.token.clone()
        } else {
            bob.token.clone()
        };
        async move {
            app.post(
                &format!("/v1/mail-services/{free}/addresses"),
                &token,
                json!({ "local_part": local, "for": "me", "password": crate::addresses::STRONG }),
            )
            .await
        }
    };
    create("alice", "alice.first").await.assert_status(201);
    let invitation = invite(&app, &alice, "bob@example.com", "admin").await;
    let id = invitation["id"].as_str().unwrap();
    app.post(
        &format!("/v1/member-invitations/{id}/accept"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_status(200);
    // Bob's membership makes room for Bob's address, not for a second one of Alice's: the
    // free allowance is per account (issue 19; before, Alice could take Bob's place).
    create("alice", "alice.second")
        .await
        .assert_problem(409, "address_limit_reached");
    create("bob", "bob.first").await.assert_status(201);
}
