//! Users of an address: permissions, invitations by login and by e-mail (through a real SMTP
//! listener), share links, the seed's rules, the address history, the outbox, isolation.

use std::time::Duration;

use serde_json::{json, Value};

use crate::addresses::{create_for_me, premium, STRONG};
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestUser};
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    unknown_permission_flags_are_refused_with_422,
    users_are_listed_changed_and_removed_taking_effect_at_once,
    a_member_is_invited_by_login_and_accepts_or_declines,
    an_external_user_invited_with_any_binding_accepts_with_any_account,
    an_external_user_with_this_address_binding_must_sign_up_with_the_address,
    share_links_are_shown_once_and_redeemed_up_to_their_uses,
    expired_revoked_and_used_invitations_give_clear_problems,
    an_invitee_who_never_accepts_cannot_change_the_password,
    address_events_need_access_logs_and_hold_no_secret,
    the_outbox_retries_when_the_relay_fails,
    a_stranger_gets_404_on_every_sharing_endpoint,
    an_invitation_never_restores_permissions_taken_away,
    an_inviter_who_lost_the_admin_role_can_no_longer_revoke,
    signing_up_with_an_address_as_login_does_not_block_its_sharing,
    a_revoked_emailed_invitation_cannot_be_accepted_with_its_token,
    an_emailed_invitation_expires_after_seven_days,
    the_recipient_of_an_emailed_invitation_answers_it_by_id_once_its_login_is_verified,
    an_emailed_invitation_is_declined_with_its_token_without_an_account,
    resending_an_invitation_replaces_its_link_and_is_limited,
);

async fn shared_address(app: &TestApp, owner: &TestUser) -> String {
    let service = premium(app, owner).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &owner.token,
            json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
        )
        .await;
    res.assert_status(201)["id"].as_str().unwrap().to_string()
}

async fn add_member(app: &TestApp, owner: &TestUser, member: &TestUser, role: &str) {
    app.add_member(owner, member, role).await
}

fn token_in(text: &str) -> String {
    text.split("token=")
        .nth(1)
        .unwrap()
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()
        .unwrap()
        .to_string()
}

async fn unknown_permission_flags_are_refused_with_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email", "launch_rockets"] }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["permissions[1]"]);
    let res = app
        .post(
            &format!("/v1/addresses/{id}/invitations"),
            &alice.token,
            json!({ "invitee": { "email": "x@y.example" }, "permissions": ["root"] }),
        )
        .await;
    assert_eq!(res.error_fields(), vec!["permissions[0]"]);
}

async fn users_are_listed_changed_and_removed_taking_effect_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let id = shared_address(&app, &alice).await;
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let token = link.body["token"].as_str().unwrap().to_string();
    app.post(
        "/v1/share-links/redeem",
        &bob.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
    let users = app
        .get(&format!("/v1/addresses/{id}/users"), &alice.token)
        .await;
    let users = users.assert_status(200).clone();
    assert_eq!(users["items"][0]["login"], "bob@example.com");
    assert_eq!(users["items"][0]["origin"], "share_link");
    assert_eq!(users["items"][0]["permissions"], json!(["send_email"]));
    // Bob, a user of the address, sees its users but may not change them.
    app.get(&format!("/v1/addresses/{id}/users"), &bob.token)
        .await
        .assert_status(200);
    app.patch(
        &format!("/v1/addresses/{id}/users/{}", bob.account_id),
        &bob.token,
        json!({ "permissions": ["access_logs"] }),
    )
    .await
    .assert_problem(403, "forbidden");
    let res = app
        .patch(
            &format!("/v1/addresses/{id}/users/{}", bob.account_id),
            &alice.token,
            json!({ "permissions": ["access_logs", "send_email"] }),
        )
        .await;
    assert_eq!(
        res.assert_status(200)["permissions"],
        json!(["access_logs", "send_email"])
    );
    // Takes effect on Bob's next request.
    app.get(&format!("/v1/addresses/{id}/events"), &bob.token)
        .await
        .assert_status(200);
    app.delete(
        &format!("/v1/addresses/{id}/users/{}", bob.account_id),
        &alice.token,
    )
    .await
    .assert_status(204);
    app.get(&format!("/v1/addresses/{id}"), &bob.token)
        .await
        .assert_problem(404, "not_found");
    let mine = app.get("/v1/me/addresses", &bob.token).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    app.patch(
        &format!("/v1/addresses/{id}/users/{}", bob.account_id),
        &alice.token,
        json!({ "permissions": [] }),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn a_member_is_invited_by_login_and_accepts_or_declines(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    add_member(&app, &alice, &bob, "user").await;
    add_member(&app, &alice, &carol, "user").await;
    let id = shared_address(&app, &alice).await;
    let res = app
        .post(&format!("/v1/addresses/{id}/invitations"), &alice.token, json!({ "invitee": { "login": "bob@example.com" }, "permissions": ["send_email", "manage_signatures"] }))
        .await;
    let invitation = res.assert_status(201).clone();
    assert_eq!(invitation["status"], "pending");
    // The member is told by e-mail, without any token (he answers from his account).
    let mails = smtp.wait_for_matching("invites you to use", 1).await;
    assert_eq!(mails[0].to, vec!["bob@example.com"]);
    assert!(mails[0].data.contains("info@famille.example"));
    assert!(!mails[0].data.contains("token="));
    let waiting = app.get("/v1/me/invitations", &bob.token).await;
    let waiting = waiting.assert_status(200).clone();
    assert_eq!(waiting["items"][0]["id"], invitation["id"]);
    let inv_id = invitation["id"].as_str().unwrap();
    // Only the invitee answers.
    app.post(
        &format!("/v1/invitations/{inv_id}/accept"),
        &carol.token,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    let res = app
        .post(
            &format!("/v1/invitations/{inv_id}/accept"),
            &bob.token,
            json!({}),
        )
        .await;
    let body = res.assert_status(200);
    assert_eq!(body["address"], "info@famille.example");
    assert_eq!(body["origin"], "invitation");
    assert_eq!(
        body["permissions"],
        json!(["manage_signatures", "send_email"])
    );
    app.post(
        &format!("/v1/invitations/{inv_id}/accept"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    assert_eq!(
        app.get("/v1/me/invitations", &bob.token).await.body["items"],
        json!([])
    );
    // Carol declines hers.
    let res = app
        .post(
            &format!("/v1/addresses/{id}/invitations"),
            &alice.token,
            json!({ "invitee": { "login": "carol@example.com" } }),
        )
        .await;
    let carol_inv = res.assert_status(201)["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/invitations/{carol_inv}/decline"),
        &carol.token,
        json!({}),
    )
    .await
    .assert_status(204);
    app.post(
        &format!("/v1/invitations/{carol_inv}/accept"),
        &carol.token,
        json!({}),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    app.get(&format!("/v1/addresses/{id}"), &carol.token)
        .await
        .assert_status(200);
    assert!(
        app.get(&format!("/v1/addresses/{id}"), &carol.token)
            .await
            .body["permissions"]
            == json!([])
    );
    // A member with an access already is not invited twice.
    app.post(
        &format!("/v1/addresses/{id}/invitations"),
        &alice.token,
        json!({ "invitee": { "login": "bob@example.com" } }),
    )
    .await
    .assert_problem(409, "access_already_exists");
    let list = app
        .get(&format!("/v1/addresses/{id}/invitations"), &alice.token)
        .await;
    let statuses: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, vec!["accepted", "declined"]);
}

async fn an_external_user_invited_with_any_binding_accepts_with_any_account(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(smtp.url());
        c.public_url = Some("https://manager.example".into());
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "paul", "for": "other_user", "invitee": { "email": "paul@isp.example" }, "account_binding": "any", "permissions": ["send_email"] }),
        )
        .await;
    let address_id = res.assert_status(201)["id"].as_str().unwrap().to_string();
    let mails = smtp.wait_for_matching("invites you to use", 1).await;
    assert_eq!(mails[0].to, vec!["paul@isp.example"]);
    assert!(mails[0]
        .data
        .contains("https://manager.example/invitations/accept?token="));
    let token = token_in(&mails[0].data);
    assert_eq!(token.len(), 43);
    // The token is stored only as a hash.
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM invitations WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    // The relay has the message; the outbox records it right after (a separate statement).
    let sent =
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND recipient = 'paul@isp.example'";
    let mut outbox_sent = 0;
    for _ in 0..100 {
        outbox_sent = app.scalar_i64(sent).await;
        if outbox_sent > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(outbox_sent, 1);
    let paul = app.user("paul.perso@elsewhere.example").await;
    let res = app
        .post(
            "/v1/invitations/accept",
            &paul.token,
            json!({ "token": token }),
        )
        .await;
    assert_eq!(res.assert_status(200)["id"], address_id);
    // Single use.
    let other = app.user("other@example.com").await;
    app.post(
        "/v1/invitations/accept",
        &other.token,
        json!({ "token": token }),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    app.post(
        "/v1/invitations/accept",
        &other.token,
        json!({ "token": postier::auth::token::generate() }),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn an_external_user_with_this_address_binding_must_sign_up_with_the_address(
    backend: Backend,
) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "julie", "for": "other_user", "invitee": { "email": "julie@home.example" }, "account_binding": "this_address" }),
        )
        .await;
    let address_id = res.assert_status(201)["id"].as_str().unwrap().to_string();
    let token = token_in(&smtp.wait_for_matching("invites you to use", 1).await[0].data);
    let wrong = app.user("julie@home.example").await;
    app.post(
        "/v1/invitations/accept",
        &wrong.token,
        json!({ "token": token }),
    )
    .await
    .assert_problem(403, "invitation_binding_mismatch");
    let julie = app.user("julie@famille.example").await;
    app.post(
        "/v1/invitations/accept",
        &julie.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
    // Now the address is an account's login: it cannot be shared with anyone else.
    app.post(
        &format!("/v1/addresses/{address_id}/share-links"),
        &alice.token,
        json!({ "permissions": ["send_email"] }),
    )
    .await
    .assert_problem(409, "address_is_account_login");
    app.post(
        &format!("/v1/addresses/{address_id}/invitations"),
        &alice.token,
        json!({ "invitee": { "email": "someone@else.example" } }),
    )
    .await
    .assert_problem(409, "address_is_account_login");
}

async fn share_links_are_shown_once_and_redeemed_up_to_their_uses(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"], "max_uses": 2, "expires_in_hours": 5 }),
        )
        .await;
    let link = res.assert_status(201).clone();
    let token = link["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 43);
    assert!(link["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("?token={token}")));
    assert_eq!(link["max_uses"], 2);
    let listed = app
        .get(&format!("/v1/addresses/{id}/share-links"), &alice.token)
        .await;
    assert!(!listed.text.contains(&token));
    assert_eq!(listed.body["items"][0]["uses"], 0);
    assert!(listed.body["items"][0].get("token").is_none());
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM share_links WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let dave = app.user("dave@example.com").await;
    app.post(
        "/v1/share-links/redeem",
        &bob.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
    app.post(
        "/v1/share-links/redeem",
        &bob.token,
        json!({ "token": token }),
    )
    .await
    .assert_problem(409, "access_already_exists");
    app.post(
        "/v1/share-links/redeem",
        &carol.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
    app.post(
        "/v1/share-links/redeem",
        &dave.token,
        json!({ "token": token }),
    )
    .await
    .assert_problem(410, "share_link_used_up");
    // Expiry and revocation.
    let res = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": [], "expires_in_hours": 1 }),
        )
        .await;
    let short = res.body["token"].as_str().unwrap().to_string();
    let res = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": [] }),
        )
        .await;
    let revoked = res.body["token"].as_str().unwrap().to_string();
    let revoked_id = res.body["id"].as_str().unwrap().to_string();
    app.delete(&format!("/v1/share-links/{revoked_id}"), &alice.token)
        .await
        .assert_status(204);
    app.post(
        "/v1/share-links/redeem",
        &dave.token,
        json!({ "token": revoked }),
    )
    .await
    .assert_problem(410, "share_link_revoked");
    app.clock.advance(Duration::from_secs(3601));
    let dave = app.login(&dave.login, &dave.password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let alice_token = app.login(&alice.login, &alice.password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post("/v1/share-links/redeem", &dave, json!({ "token": short }))
        .await
        .assert_problem(410, "share_link_expired");
    app.post(
        &format!("/v1/addresses/{id}/share-links"),
        &alice_token,
        json!({ "permissions": [], "expires_in_hours": 721 }),
    )
    .await
    .assert_problem(422, "validation_failed");
    let events = app
        .scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'share_link.redeemed'")
        .await;
    assert_eq!(events, 2);
}

async fn expired_revoked_and_used_invitations_give_clear_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    add_member(&app, &alice, &bob, "user").await;
    let id = shared_address(&app, &alice).await;
    let inv = app
        .post(
            &format!("/v1/addresses/{id}/invitations"),
            &alice.token,
            json!({ "invitee": { "login": "bob@example.com" } }),
        )
        .await;
    let inv = inv.body["id"].as_str().unwrap().to_string();
    app.delete(&format!("/v1/invitations/{inv}"), &bob.token)
        .await
        .assert_problem(403, "forbidden");
    app.delete(&format!("/v1/invitations/{inv}"), &alice.token)
        .await
        .assert_status(204);
    app.post(
        &format!("/v1/invitations/{inv}/accept"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    app.delete(&format!("/v1/invitations/{inv}"), &alice.token)
        .await
        .assert_problem(409, "invitation_not_pending");
    let inv = app
        .post(
            &format!("/v1/addresses/{id}/invitations"),
            &alice.token,
            json!({ "invitee": { "login": "bob@example.com" } }),
        )
        .await;
    let inv = inv.body["id"].as_str().unwrap().to_string();
    app.clock.advance(Duration::from_secs(7 * 24 * 3600 + 1));
    let fresh_bob = app.login(&bob.login, &bob.password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/invitations/{inv}/accept"),
        &fresh_bob,
        json!({}),
    )
    .await
    .assert_problem(410, "invitation_expired");
    let fresh_alice = app.login(&alice.login, &alice.password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let list = app
        .get(&format!("/v1/addresses/{id}/invitations"), &fresh_alice)
        .await;
    assert_eq!(list.body["items"][1]["status"], "expired");
    assert_eq!(
        app.get("/v1/me/invitations", &fresh_bob).await.body["items"],
        json!([])
    );
}

async fn an_invitee_who_never_accepts_cannot_change_the_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    add_member(&app, &alice, &bob, "user").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "bob", "for": "other_user", "invitee": { "login": "bob@example.com" }, "permissions": ["change_password"] }),
        )
        .await;
    let id = res.assert_status(201)["id"].as_str().unwrap().to_string();
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &bob.token,
        json!({ "new_password": STRONG }),
    )
    .await
    .assert_problem(403, "permission_denied");
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &alice.token,
        json!({ "new_password": STRONG }),
    )
    .await
    .assert_status(200);
    let inv = app.get("/v1/me/invitations", &bob.token).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/invitations/{inv}/accept"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_status(200);
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &bob.token,
        json!({ "new_password": "orange kettle singing loudly" }),
    )
    .await
    .assert_status(200);
}

async fn address_events_need_access_logs_and_hold_no_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let id = shared_address(&app, &alice).await;
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let token = link.body["token"].as_str().unwrap().to_string();
    app.post(
        "/v1/share-links/redeem",
        &bob.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
    app.get(&format!("/v1/addresses/{id}/events"), &bob.token)
        .await
        .assert_problem(403, "permission_denied");
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &alice.token,
        json!({ "new_password": "orange kettle singing loudly" }),
    )
    .await
    .assert_status(200);
    let events = app
        .get(&format!("/v1/addresses/{id}/events"), &alice.token)
        .await;
    let events = events.assert_status(200).clone();
    let actions: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "address.password_changed",
            "share_link.redeemed",
            "share_link.created",
            "address.created"
        ]
    );
    let text = events.to_string();
    assert!(!text.contains(&token));
    assert!(!text.contains("orange kettle") && !text.contains(STRONG) && !text.contains("argon2"));
}

async fn the_outbox_retries_when_the_relay_fails(backend: Backend) {
    let smtp = TestSmtp::start().await;
    smtp.set_failing(true);
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    app.post(
        &format!("/v1/addresses/{id}/invitations"),
        &alice.token,
        json!({ "invitee": { "email": "zoe@isp.example" } }),
    )
    .await
    .assert_status(201);
    // Only the invitation's row: the sign-up verification e-mail fails on the same relay
    // and may be attempted first.
    let tried = "SELECT CAST(COALESCE(MAX(attempts), 0) AS BIGINT) FROM outbox \
                 WHERE recipient = 'zoe@isp.example'";
    let mut attempts = 0;
    for _ in 0..100 {
        attempts = app.scalar_i64(tried).await;
        if attempts > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts, 1);
    let outbox = app
        .get(
            &format!("/v1/organizations/{}/outbox", alice.org_id),
            &alice.token,
        )
        .await;
    let message = outbox.body["items"][0].clone();
    assert!(message["sent_at"].is_null());
    assert!(message["last_error"].as_str().unwrap().contains("451"));
    // The relay recovers; once the backoff has passed, the message goes out once.
    smtp.set_failing(false);
    app.clock.advance(Duration::from_secs(31));
    app.state.outbox_wake.notify_one();
    let mails = smtp.wait_for_notifications(1).await;
    assert_eq!(mails[0].to, vec!["zoe@isp.example"]);
    let sent =
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND recipient = 'zoe@isp.example'";
    for _ in 0..100 {
        if app.scalar_i64(sent).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.scalar_i64(sent).await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.notifications().len(), 1);
    // Admins do not read the outbox; owners do.
    let bob = app.user("bob@example.com").await;
    add_member(&app, &alice, &bob, "admin").await;
    app.get(
        &format!("/v1/organizations/{}/outbox", alice.org_id),
        &bob.token,
    )
    .await
    .assert_problem(403, "forbidden");
}

async fn a_stranger_gets_404_on_every_sharing_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    add_member(&app, &alice, &bob, "user").await;
    let id = shared_address(&app, &alice).await;
    let service = app
        .get(&format!("/v1/addresses/{id}"), &alice.token)
        .await
        .body["mail_service_id"]
        .as_str()
        .unwrap()
        .to_string();
    create_for_me(&app, &alice, &service, "compta").await;
    let inv = app
        .post(
            &format!("/v1/addresses/{id}/invitations"),
            &alice.token,
            json!({ "invitee": { "login": "bob@example.com" } }),
        )
        .await;
    let inv = inv.body["id"].as_str().unwrap().to_string();
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": [] }),
        )
        .await;
    let link_id = link.body["id"].as_str().unwrap().to_string();
    let mallory = app.user("mallory@example.com").await;
    let t = &mallory.token;
    let checks: Vec<(&str, crate::helpers::TestResponse)> = vec![
        (
            "users",
            app.get(&format!("/v1/addresses/{id}/users"), t).await,
        ),
        (
            "patch user",
            app.patch(
                &format!("/v1/addresses/{id}/users/{}", alice.account_id),
                t,
                json!({ "permissions": [] }),
            )
            .await,
        ),
        (
            "delete user",
            app.delete(&format!("/v1/addresses/{id}/users/{}", alice.account_id), t)
                .await,
        ),
        (
            "invitations",
            app.get(&format!("/v1/addresses/{id}/invitations"), t).await,
        ),
        (
            "invite",
            app.post(
                &format!("/v1/addresses/{id}/invitations"),
                t,
                json!({ "invitee": { "email": "m@x.example" } }),
            )
            .await,
        ),
        (
            "revoke",
            app.delete(&format!("/v1/invitations/{inv}"), t).await,
        ),
        (
            "accept",
            app.post(&format!("/v1/invitations/{inv}/accept"), t, json!({}))
                .await,
        ),
        (
            "decline",
            app.post(&format!("/v1/invitations/{inv}/decline"), t, json!({}))
                .await,
        ),
        (
            "links",
            app.get(&format!("/v1/addresses/{id}/share-links"), t).await,
        ),
        (
            "link",
            app.post(
                &format!("/v1/addresses/{id}/share-links"),
                t,
                json!({ "permissions": [] }),
            )
            .await,
        ),
        (
            "revoke link",
            app.delete(&format!("/v1/share-links/{link_id}"), t).await,
        ),
        (
            "outbox",
            app.get(&format!("/v1/organizations/{}/outbox", alice.org_id), t)
                .await,
        ),
    ];
    for (name, res) in &checks {
        assert_eq!(res.status.as_u16(), 404, "{name}: {}", res.text);
        res.assert_problem(404, "not_found");
    }
    assert_eq!(
        app.get("/v1/me/invitations", t).await.body["items"],
        json!([])
    );
    let unused: Value = json!(null);
    let _ = unused;
}

async fn an_invitation_never_restores_permissions_taken_away(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    add_member(&app, &alice, &bob, "user").await;
    let id = shared_address(&app, &alice).await;
    app.post(
        &format!("/v1/addresses/{id}/invitations"),
        &alice.token,
        json!({ "invitee": { "login": "bob@example.com" }, "permissions": ["change_password"] }),
    )
    .await
    .assert_status(201);
    app.post(
        &format!("/v1/addresses/{id}/invitations"),
        &alice.token,
        json!({ "invitee": { "login": "bob@example.com" } }),
    )
    .await
    .assert_problem(409, "invitation_already_pending");
    // An e-mail invitation Bob could also accept, kept for later.
    app.post(&format!("/v1/addresses/{id}/invitations"), &alice.token, json!({ "invitee": { "email": "bob.perso@elsewhere.example" }, "permissions": ["change_password", "access_logs"] }))
        .await
        .assert_status(201);
    let inv = app.get("/v1/me/invitations", &bob.token).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/invitations/{inv}/accept"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_status(200);
    app.patch(
        &format!("/v1/addresses/{id}/users/{}", bob.account_id),
        &alice.token,
        json!({ "permissions": [] }),
    )
    .await
    .assert_status(200);
    let token = token_in(
        &smtp
            .wait_for_matching("bob.perso@elsewhere.example", 1)
            .await
            .iter()
            .find(|m| m.to == vec!["bob.perso@elsewhere.example"])
            .unwrap()
            .data,
    );
    app.post(
        "/v1/invitations/accept",
        &bob.token,
        json!({ "token": token }),
    )
    .await
    .assert_problem(409, "access_already_exists");
    let users = app
        .get(&format!("/v1/addresses/{id}/users"), &alice.token)
        .await;
    assert_eq!(users.body["items"][0]["permissions"], json!([]));
}

async fn an_inviter_who_lost_the_admin_role_can_no_longer_revoke(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    add_member(&app, &alice, &bob, "admin").await;
    let id = shared_address(&app, &alice).await;
    let inv = app
        .post(
            &format!("/v1/addresses/{id}/invitations"),
            &bob.token,
            json!({ "invitee": { "email": "x@elsewhere.example" } }),
        )
        .await;
    let inv = inv.assert_status(201)["id"].as_str().unwrap().to_string();
    app.patch(
        &format!(
            "/v1/organizations/{}/members/{}",
            alice.org_id, bob.account_id
        ),
        &alice.token,
        json!({ "role": "user" }),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/v1/invitations/{inv}"), &bob.token)
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("/v1/invitations/{inv}"), &alice.token)
        .await
        .assert_status(204);
}

async fn signing_up_with_an_address_as_login_does_not_block_its_sharing(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    // Anyone may sign up with any login: that alone proves nothing about the address.
    app.user("info@famille.example").await;
    app.post(
        &format!("/v1/addresses/{id}/share-links"),
        &alice.token,
        json!({ "permissions": ["send_email"] }),
    )
    .await
    .assert_status(201);
    app.post(
        "/v1/me/addresses",
        &alice.token,
        json!({ "address": "info@famille.example", "password": STRONG }),
    )
    .await
    .assert_status(200);
}

/// Invites `email` to `address` and answers (the invitation id, the e-mailed token).
async fn invite_by_email(
    app: &TestApp,
    smtp: &TestSmtp,
    owner: &TestUser,
    address: &str,
    email: &str,
) -> (String, String) {
    let res = app
        .post(
            &format!("/v1/addresses/{address}/invitations"),
            &owner.token,
            json!({ "invitee": { "email": email }, "permissions": ["send_email"] }),
        )
        .await;
    let id = res.assert_status(201)["id"].as_str().unwrap().to_string();
    let mut mail = None;
    for _ in 0..200 {
        mail = smtp.received().into_iter().find(|m| m.to == vec![email]);
        if mail.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = mail.unwrap_or_else(|| panic!("no e-mail to {email}"));
    (id, token_in(&mail.data))
}

async fn accesses_to(app: &TestApp, address: &str) -> u64 {
    use postier::entity::access;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let address: uuid::Uuid = address.parse().unwrap();
    access::Entity::find()
        .filter(access::Column::AddressId.eq(address))
        .count(app.db())
        .await
        .unwrap()
}

async fn invitation_status(app: &TestApp, id: &str) -> String {
    use postier::entity::invitation;
    use sea_orm::EntityTrait;
    let id: uuid::Uuid = id.parse().unwrap();
    invitation::Entity::find_by_id(id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
        .status
        .to_string()
}

async fn a_revoked_emailed_invitation_cannot_be_accepted_with_its_token(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    let (inv, token) = invite_by_email(&app, &smtp, &alice, &id, "paul@isp.example").await;
    app.delete(&format!("/v1/invitations/{inv}"), &alice.token)
        .await
        .assert_status(204);
    assert_eq!(invitation_status(&app, &inv).await, "revoked");
    let paul = app.user("paul@isp.example").await;
    let res = app
        .post(
            "/v1/invitations/accept",
            &paul.token,
            json!({ "token": token }),
        )
        .await;
    res.assert_problem(409, "invitation_not_pending");
    assert!(res.body["detail"].as_str().unwrap().contains("revoked"));
    assert_eq!(accesses_to(&app, &id).await, 0);
    assert_eq!(invitation_status(&app, &inv).await, "revoked");
    app.get(&format!("/v1/addresses/{id}"), &paul.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        app.get("/v1/me/addresses", &paul.token).await.body["items"],
        json!([])
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'invitation.accepted'")
            .await,
        0
    );
    // The token of an invitation still pending works: the refusal was the revocation's.
    let (_, live) = invite_by_email(&app, &smtp, &alice, &id, "paul2@isp.example").await;
    app.post(
        "/v1/invitations/accept",
        &paul.token,
        json!({ "token": live }),
    )
    .await
    .assert_status(200);
    assert_eq!(accesses_to(&app, &id).await, 1);
}

async fn an_emailed_invitation_expires_after_seven_days(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    let (early_inv, early) = invite_by_email(&app, &smtp, &alice, &id, "early@isp.example").await;
    let (late_inv, late) = invite_by_email(&app, &smtp, &alice, &id, "late@isp.example").await;
    let early_user = app.user("early@isp.example").await;
    let late_user = app.user("late@isp.example").await;
    // A minute before the seven days are up, it is still good …
    app.clock.advance(Duration::from_secs(7 * 24 * 3600 - 60));
    let token_of = |res: crate::helpers::TestResponse| {
        res.assert_status(200)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let early_token = token_of(app.login(&early_user.login, &early_user.password).await);
    app.post(
        "/v1/invitations/accept",
        &early_token,
        json!({ "token": early }),
    )
    .await
    .assert_status(200);
    assert_eq!(invitation_status(&app, &early_inv).await, "accepted");
    // … and past them, it is not.
    app.clock.advance(Duration::from_secs(61));
    let late_token = token_of(app.login(&late_user.login, &late_user.password).await);
    let res = app
        .post(
            "/v1/invitations/accept",
            &late_token,
            json!({ "token": late }),
        )
        .await;
    res.assert_problem(410, "invitation_expired");
    assert_eq!(accesses_to(&app, &id).await, 1);
    app.get(&format!("/v1/addresses/{id}"), &late_token)
        .await
        .assert_problem(404, "not_found");
    let alice_token = token_of(app.login(&alice.login, &alice.password).await);
    let list = app
        .get(&format!("/v1/addresses/{id}/invitations"), &alice_token)
        .await;
    let statuses: Vec<String> = list.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, vec!["accepted", "expired"]);
    // Nor can it be revoked any more.
    app.delete(&format!("/v1/invitations/{late_inv}"), &alice_token)
        .await
        .assert_problem(410, "invitation_expired");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'invitation.accepted'")
            .await,
        1
    );
}

async fn the_recipient_of_an_emailed_invitation_answers_it_by_id_once_its_login_is_verified(
    backend: Backend,
) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    let (inv, token) = invite_by_email(&app, &smtp, &alice, &id, "paul@isp.example").await;
    // Signing up with the invited e-mail proves nothing: until the login is verified, the
    // e-mail's holder only has the token, and the invitation is not the account's.
    let paul = app.unverified_user("paul@isp.example").await;
    for verb in ["decline", "accept"] {
        app.post(
            &format!("/v1/invitations/{inv}/{verb}"),
            &paul.token,
            json!({}),
        )
        .await
        .assert_problem(404, "not_found");
    }
    let mine = app.get("/v1/me/invitations", &paul.token).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    assert_eq!(invitation_status(&app, &inv).await, "pending");
    // Verified, the login is matched: the invitation waits among his, answered by id.
    app.verify_by_email(&smtp, "paul@isp.example").await;
    let mine = app.get("/v1/me/invitations", &paul.token).await;
    assert_eq!(mine.assert_status(200)["items"][0]["id"], inv);
    app.post(
        &format!("/v1/invitations/{inv}/accept"),
        &paul.token,
        json!({}),
    )
    .await
    .assert_status(200);
    assert_eq!(invitation_status(&app, &inv).await, "accepted");
    assert_eq!(accesses_to(&app, &id).await, 1);
    // The e-mailed token was for the same invitation: answered already.
    app.post(
        "/v1/invitations/accept",
        &paul.token,
        json!({ "token": token }),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
}

async fn an_emailed_invitation_is_declined_with_its_token_without_an_account(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    let (inv, token) = invite_by_email(&app, &smtp, &alice, &id, "paul@isp.example").await;
    // A wrong token is unknown, and changes nothing.
    app.post_anon(
        "/v1/invitations/decline",
        json!({ "token": postier::auth::token::generate() }),
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(invitation_status(&app, &inv).await, "pending");
    // Paul has no account: the token he received is enough to say no.
    app.post_anon("/v1/invitations/decline", json!({ "token": token }))
        .await
        .assert_status(204);
    assert_eq!(invitation_status(&app, &inv).await, "declined");
    app.post_anon("/v1/invitations/decline", json!({ "token": token }))
        .await
        .assert_problem(409, "invitation_not_pending");
    let paul = app.user("paul@isp.example").await;
    app.post(
        "/v1/invitations/accept",
        &paul.token,
        json!({ "token": token }),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    assert_eq!(accesses_to(&app, &id).await, 0);
    // The owner sees who said no: nobody known, from the client address.
    let events = app
        .get(&format!("/v1/addresses/{id}/events"), &alice.token)
        .await;
    let latest = &events.assert_status(200)["items"][0];
    assert_eq!(latest["action"], "invitation.declined", "{latest}");
    assert!(latest["actor_account_id"].is_null(), "{latest}");
    assert!(!events.text.contains(&token));
}

async fn resending_an_invitation_replaces_its_link_and_is_limited(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(smtp.url());
        c.outreach.per_recipient = 3;
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let id = shared_address(&app, &alice).await;
    let invitation = app
        .post(
            &format!("/v1/addresses/{id}/invitations"),
            &alice.token,
            json!({ "invitee": { "email": "zoe@isp.example" } }),
        )
        .await;
    let invitation = invitation.assert_status(201).clone();
    let invitation_id = invitation["id"].as_str().unwrap();
    let first = smtp.wait_for_notifications(1).await;
    let old_link = crate::helpers::token_in(&first[0].data);
    // Only owners and admins resend; strangers do not see it.
    let mallory = app.user("mallory@example.com").await;
    app.post(
        &format!("/v1/invitations/{invitation_id}/resend"),
        &mallory.token,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    app.clock.advance(Duration::from_secs(60));
    let resent = app
        .post(
            &format!("/v1/invitations/{invitation_id}/resend"),
            &alice.token,
            json!({}),
        )
        .await;
    let resent = resent.assert_status(200).clone();
    assert_eq!(resent["status"], "pending");
    assert!(resent["expires_at"].as_str() > invitation["expires_at"].as_str());
    let mails = smtp.wait_for_notifications(2).await;
    let new_link = crate::helpers::token_in(&mails[1].data);
    assert_ne!(new_link, old_link);
    // The old link stopped working; the new one works once.
    let zoe = app.user("zoe@isp.example").await;
    app.post(
        "/v1/invitations/accept",
        &zoe.token,
        json!({ "token": old_link }),
    )
    .await
    .assert_problem(404, "not_found");
    // A third e-mail to zoe passes the limit of 3 (the verification of her sign-up does not
    // count: it is the account's own), the fourth is refused.
    app.post(
        &format!("/v1/invitations/{invitation_id}/resend"),
        &alice.token,
        json!({}),
    )
    .await
    .assert_status(200);
    let refused = app
        .post(
            &format!("/v1/invitations/{invitation_id}/resend"),
            &alice.token,
            json!({}),
        )
        .await;
    refused.assert_problem(429, "too_many_requests");
    let mails = smtp.wait_for_notifications(3).await;
    let newest = crate::helpers::token_in(&mails[2].data);
    app.post(
        "/v1/invitations/accept",
        &zoe.token,
        json!({ "token": newest }),
    )
    .await
    .assert_status(200);
    // Answered: nothing to resend any more.
    app.post(
        &format!("/v1/invitations/{invitation_id}/resend"),
        &alice.token,
        json!({}),
    )
    .await
    .assert_problem(409, "invitation_not_pending");
    let events = app
        .get(&format!("/v1/addresses/{id}/events"), &alice.token)
        .await;
    assert!(events.text.contains("invitation.resent"));
    assert!(!events.text.contains(&newest) && !events.text.contains(&old_link));
}
