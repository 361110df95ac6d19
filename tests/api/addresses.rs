//! Mail addresses: every way to create them, limits, generic addresses, reading, passwords
//! and unification, attaching, deleting, and isolation.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestUser, PASSWORD};
use crate::mail_services::create_service;
use crate::on_both_backends;

on_both_backends!(
    create_for_me_returns_201_and_gives_the_caller_every_permission,
    local_part_refusals_name_the_character_and_its_position,
    create_for_several_users_makes_a_shared_address_without_users,
    create_for_a_member_invites_them_and_for_a_stranger_sends_an_email,
    only_owners_and_admins_create_addresses,
    pack_address_limits_are_enforced,
    daily_creation_limit_returns_429_until_the_window_slides,
    concurrent_creations_never_exceed_the_pack,
    generic_no_reply_and_catchall_follow_the_pack_rules,
    list_paginates_by_address_filters_by_kind_and_searches_by_prefix,
    delete_needs_step_up_and_confirmation_and_cascades,
    address_password_changes_by_managers_and_change_password_holders_only,
    unification_is_offered_only_when_eligible_and_then_keeps_both_in_step,
    attach_by_password_gives_every_permission_and_looks_the_same_when_wrong,
    aliases_need_manage_aliases_and_must_be_free,
    another_organization_gets_404_on_every_address_endpoint,
    narrowing_the_login_accounts_permissions_ends_the_unification,
    creating_for_another_user_answers_and_emails_what_the_invitee_cannot_do,
);

pub const STRONG: &str = "violet umbrella marching north";

pub async fn premium(app: &TestApp, user: &TestUser) -> String {
    create_service(app, user, Some("famille.example"), "premium").await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn create_for_me(app: &TestApp, user: &TestUser, service: &str, local: &str) -> Value {
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &user.token,
            json!({ "local_part": local, "for": "me", "password": STRONG }),
        )
        .await;
    res.assert_status(201).clone()
}

async fn create_for_me_returns_201_and_gives_the_caller_every_permission(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "Compta", "for": "me", "password": STRONG, "display_name": "Comptabilité" }),
        )
        .await;
    let body = res.assert_status(201).clone();
    assert_eq!(body["address"], "compta@famille.example");
    assert_eq!(body["local_part"], "compta");
    assert_eq!(body["kind"], "personal");
    assert_eq!(body["has_password"], true);
    assert_eq!(body["display_name"], "Comptabilité");
    assert!(body["invitation"].is_null());
    assert_eq!(body["password_unification"]["eligible"], false);
    let mine = app.get("/v1/me/addresses", &alice.token).await;
    let mine = mine.assert_status(200);
    assert_eq!(mine["items"][0]["address"], "compta@famille.example");
    assert_eq!(mine["items"][0]["origin"], "creator");
    assert_eq!(
        mine["items"][0]["permissions"].as_array().unwrap().len(),
        12
    );
    let stored = postier::repo::addresses::find_by_address(app.db(), "compta@famille.example")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.password_hash.unwrap().starts_with("$argon2id$"));
    let service_now = app
        .get(&format!("/v1/mail-services/{service}"), &alice.token)
        .await;
    assert_eq!(service_now.assert_status(200)["address_count"], 1);
    // The same address again.
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        json!({ "local_part": "COMPTA", "for": "me", "password": STRONG }),
    )
    .await
    .assert_problem(409, "address_already_exists");
    // A weak password, or none.
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "other", "for": "me", "password": "compta2024" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["password"]);
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "other", "for": "me" }),
        )
        .await;
    assert_eq!(res.error_fields(), vec!["password"]);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 1);
}

async fn local_part_refusals_name_the_character_and_its_position(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let cases = [
        ("jo%hn", "'%' at position 3"),
        ("françois", "'ç' at position 5"),
        ("a b", "' ' at position 2"),
        (" compta", "' ' at position 1"),
        ("compta ", "' ' at position 7"),
        ("élise", "'é' at position 1"),
        ("x[y]", "'[' at position 2"),
        (".start", "position 1"),
        ("a..b", "position 3"),
        ("end.", "position 4"),
    ];
    for (local, expected) in cases {
        let res = app
            .post(
                &format!("/v1/mail-services/{service}/addresses"),
                &alice.token,
                json!({ "local_part": local, "for": "me", "password": STRONG }),
            )
            .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["local_part"]);
        let message = res.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{local}: {message}");
    }
    let long = "a".repeat(65);
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": long, "for": "me", "password": STRONG }),
        )
        .await;
    assert!(res.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("64"));
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "ok", "domain": "elsewhere.example", "for": "me", "password": STRONG }),
        )
        .await;
    assert_eq!(res.error_fields(), vec!["domain"]);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 0);
}

async fn create_for_several_users_makes_a_shared_address_without_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
        )
        .await;
    let body = res.assert_status(201).clone();
    assert_eq!(body["kind"], "shared");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM accesses").await, 0);
    let users = app
        .get(
            &format!("/v1/addresses/{}/users", body["id"].as_str().unwrap()),
            &alice.token,
        )
        .await;
    assert_eq!(users.assert_status(200)["items"], json!([]));
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "team", "for": "several_users" }),
        )
        .await;
    assert_eq!(res.error_fields(), vec!["password"]);
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "team", "for": "me", "password": STRONG, "invitee": { "email": "x@y.example" } }),
        )
        .await;
    assert_eq!(res.error_fields(), vec!["invitee"]);
}

async fn create_for_a_member_invites_them_and_for_a_stranger_sends_an_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.add_member_to(alice.org_id, &alice, &bob, "user").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "bob", "for": "other_user", "invitee": { "login": "bob@example.com" }, "permissions": ["send_email"] }),
        )
        .await;
    let body = res.assert_status(201).clone();
    assert_eq!(body["kind"], "personal");
    assert_eq!(body["has_password"], false);
    assert_eq!(body["invitation"]["status"], "pending");
    assert_eq!(body["invitation"]["invitee"], "bob@example.com");
    assert_eq!(body["invitation"]["permissions"], json!(["send_email"]));
    let waiting = app.get("/v1/me/invitations", &bob.token).await;
    assert_eq!(
        waiting.assert_status(200)["items"][0]["address"],
        "bob@famille.example"
    );
    // A stranger by e-mail, with an owner-set password.
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "julie", "for": "other_user", "invitee": { "email": "Julie@Home.Example" }, "account_binding": "this_address", "password": STRONG }),
        )
        .await;
    let body = res.assert_status(201).clone();
    assert_eq!(body["has_password"], true);
    assert_eq!(body["invitation"]["invitee"], "julie@home.example");
    assert_eq!(body["invitation"]["account_binding"], "this_address");
    // Without a relay, the message waits in the outbox for the owners, link included.
    let outbox = app
        .get(
            &format!("/v1/organizations/{}/outbox", alice.org_id),
            &alice.token,
        )
        .await;
    let outbox = outbox.assert_status(200).clone();
    let external = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["recipient"] == "julie@home.example")
        .unwrap();
    assert!(external["body"]
        .as_str()
        .unwrap()
        .contains("/invitations/accept?token="));
    assert!(external["sent_at"].is_null());
    // A login that is not a member.
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "zed", "for": "other_user", "invitee": { "login": "zed@example.com" } }),
        )
        .await;
    assert_eq!(res.error_fields(), vec!["invitee.login"]);
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "zed", "for": "other_user" }),
        )
        .await;
    assert_eq!(res.error_fields(), vec!["invitee"]);
    // No token ever reaches the audit log.
    let token = external["body"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let events = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM events WHERE CAST(details AS TEXT) LIKE '%{token}%'"
        ))
        .await;
    assert_eq!(events, 0);
}

async fn only_owners_and_admins_create_addresses(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let carol = app.user("carol@example.com").await;
    app.add_member_to(alice.org_id, &alice, &carol, "user")
        .await;
    let service = premium(&app, &alice).await;
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &carol.token,
        json!({ "local_part": "carol", "for": "me", "password": STRONG }),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post(
        &format!("/v1/mail-services/{service}/addresses/generic"),
        &carol.token,
        json!({ "type": "no_reply" }),
    )
    .await
    .assert_problem(403, "forbidden");
    // But she sees the addresses of her organization.
    create_for_me(&app, &alice, &service, "compta").await;
    let list = app
        .get(
            &format!("/v1/mail-services/{service}/addresses"),
            &carol.token,
        )
        .await;
    let list = list.assert_status(200);
    assert_eq!(list["items"][0]["address"], "compta@famille.example");
    assert_eq!(list["items"][0]["permissions"], json!([]));
}

async fn pack_address_limits_are_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let starter = create_service(&app, &alice, Some("starter.example"), "starter").await;
    let starter = starter["id"].as_str().unwrap();
    create_for_me(&app, &alice, starter, "one").await;
    app.post(
        &format!("/v1/mail-services/{starter}/addresses"),
        &alice.token,
        json!({ "local_part": "two", "for": "me", "password": STRONG }),
    )
    .await
    .assert_problem(409, "address_limit_reached");
    // Free: one address per account of the organization.
    let free = create_service(&app, &alice, None, "free").await;
    let free = free["id"].as_str().unwrap();
    create_for_me(&app, &alice, free, "alice.munster").await;
    app.post(
        &format!("/v1/mail-services/{free}/addresses"),
        &alice.token,
        json!({ "local_part": "alice.two", "for": "me", "password": STRONG }),
    )
    .await
    .assert_problem(409, "address_limit_reached");
    let bob = app.user("bob@example.com").await;
    app.add_member_to(alice.org_id, &alice, &bob, "admin").await;
    create_for_me(&app, &bob, free, "bob.munster").await;
    // A premium service with addresses cannot go back to starter.
    let premium = premium(&app, &alice).await;
    create_for_me(&app, &alice, &premium, "a").await;
    create_for_me(&app, &alice, &premium, "b").await;
    let res = app
        .patch(
            &format!("/v1/mail-services/{premium}"),
            &alice.token,
            json!({ "pack": "starter" }),
        )
        .await;
    res.assert_problem(409, "pack_does_not_fit");
    assert!(res.body["detail"].as_str().unwrap().contains("2 addresses"));
}

async fn daily_creation_limit_returns_429_until_the_window_slides(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.daily_address_creations = 3).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    for local in ["a", "b", "c"] {
        create_for_me(&app, &alice, &service, local).await;
    }
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "d", "for": "me", "password": STRONG }),
        )
        .await;
    res.assert_problem(429, "daily_creation_limit_reached");
    let retry: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 23 * 3600 && retry <= 24 * 3600 + 60, "{retry}");
    // Deleting does not give the creation back.
    let id = app
        .get(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
        )
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fresh = app.reauth(&alice).await;
    app.delete(
        &format!("/v1/addresses/{id}?confirm=a@famille.example"),
        &fresh,
    )
    .await
    .assert_status(204);
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        json!({ "local_part": "d", "for": "me", "password": STRONG }),
    )
    .await
    .assert_problem(429, "daily_creation_limit_reached");
    app.clock.advance(Duration::from_secs(24 * 3600 + 60));
    let fresh = app.login(&alice.login, &alice.password).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &fresh,
            json!({ "local_part": "d", "for": "me", "password": STRONG }),
        )
        .await;
    res.assert_status(201);
}

async fn concurrent_creations_never_exceed_the_pack(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let starter = create_service(&app, &alice, Some("starter.example"), "starter").await;
    let starter = starter["id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url(&format!("/v1/mail-services/{starter}/addresses"));
            let token = alice.token.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "local_part": format!("user{i}"), "for": "me", "password": STRONG }))
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
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 1);
}

async fn generic_no_reply_and_catchall_follow_the_pack_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses/generic"),
            &alice.token,
            json!({ "type": "no_reply", "password": STRONG }),
        )
        .await;
    let body = res.assert_status(201);
    assert_eq!(body["address"], "no-reply@famille.example");
    assert_eq!(body["kind"], "no_reply");
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses/generic"),
            &alice.token,
            json!({ "type": "catchall" }),
        )
        .await;
    let body = res.assert_status(201).clone();
    assert_eq!(body["address"], "catchall@famille.example");
    assert_eq!(body["kind"], "catchall");
    assert_eq!(body["has_password"], false);
    let warnings = body["warnings"].to_string();
    assert!(
        warnings.contains("spam") && warnings.contains("error") && warnings.contains("auto-reply"),
        "{warnings}"
    );
    app.post(
        &format!("/v1/mail-services/{service}/addresses/generic"),
        &alice.token,
        json!({ "type": "catchall" }),
    )
    .await
    .assert_problem(409, "address_already_exists");
    // One catchall per domain: a linked domain gets its own.
    app.post(
        &format!("/v1/mail-services/{service}/domains"),
        &alice.token,
        json!({ "domain": "famille.org" }),
    )
    .await
    .assert_status(201);
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses/generic"),
            &alice.token,
            json!({ "type": "catchall", "domain": "famille.org" }),
        )
        .await;
    assert_eq!(res.assert_status(201)["address"], "catchall@famille.org");
    // Not on starter or free.
    let starter = create_service(&app, &alice, Some("starter.example"), "starter").await;
    app.post(
        &format!(
            "/v1/mail-services/{}/addresses/generic",
            starter["id"].as_str().unwrap()
        ),
        &alice.token,
        json!({ "type": "catchall" }),
    )
    .await
    .assert_problem(409, "catchall_not_available");
    let free = create_service(&app, &alice, None, "free").await;
    app.post(
        &format!(
            "/v1/mail-services/{}/addresses/generic",
            free["id"].as_str().unwrap()
        ),
        &alice.token,
        json!({ "type": "catchall" }),
    )
    .await
    .assert_problem(409, "catchall_not_available");
    // catchall is reserved for the generic address.
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        json!({ "local_part": "catchall", "domain": "famille.org", "for": "me", "password": STRONG }),
    )
    .await
    .assert_problem(422, "validation_failed");
    // A premium service with a catchall cannot move to starter.
    let res = app
        .patch(
            &format!("/v1/mail-services/{service}"),
            &alice.token,
            json!({ "pack": "starter" }),
        )
        .await;
    res.assert_problem(409, "pack_does_not_fit");
    assert!(res.body["detail"].as_str().unwrap().contains("catchall"));
}

async fn list_paginates_by_address_filters_by_kind_and_searches_by_prefix(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    for local in ["zoe", "adam", "mario", "martine", "bob_x", "bobx"] {
        create_for_me(&app, &alice, &service, local).await;
    }
    app.post(
        &format!("/v1/mail-services/{service}/addresses/generic"),
        &alice.token,
        json!({ "type": "no_reply" }),
    )
    .await
    .assert_status(201);
    let base = format!("/v1/mail-services/{service}/addresses");
    let page = app.get(&format!("{base}?limit=3"), &alice.token).await;
    let page = page.assert_status(200).clone();
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["local_part"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["adam", "bob_x", "bobx"]);
    let next = app
        .get(
            &format!(
                "{base}?limit=3&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            &alice.token,
        )
        .await;
    let next = next.assert_status(200).clone();
    let names: Vec<&str> = next["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["local_part"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["mario", "martine", "no-reply"]);
    let last = app
        .get(
            &format!(
                "{base}?limit=3&cursor={}",
                next["next_cursor"].as_str().unwrap()
            ),
            &alice.token,
        )
        .await;
    let last = last.assert_status(200);
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert!(last["next_cursor"].is_null());
    let res = app.get(&format!("{base}?prefix=MAR"), &alice.token).await;
    assert_eq!(res.assert_status(200)["items"].as_array().unwrap().len(), 2);
    // '_' is a character, not a wildcard.
    let res = app.get(&format!("{base}?prefix=bob_"), &alice.token).await;
    assert_eq!(res.assert_status(200)["items"].as_array().unwrap().len(), 1);
    let res = app
        .get(&format!("{base}?kind=no_reply"), &alice.token)
        .await;
    let res = res.assert_status(200);
    assert_eq!(res["items"].as_array().unwrap().len(), 1);
    assert_eq!(res["items"][0]["kind"], "no_reply");
    app.get(&format!("{base}?kind=robot"), &alice.token)
        .await
        .assert_problem(422, "validation_failed");
    app.get(&format!("{base}?limit=201"), &alice.token)
        .await
        .assert_problem(422, "validation_failed");
}

async fn delete_needs_step_up_and_confirmation_and_cascades(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let created = create_for_me(&app, &alice, &service, "compta").await;
    let id = created["id"].as_str().unwrap();
    app.post(
        &format!("/v1/addresses/{id}/share-links"),
        &alice.token,
        json!({ "permissions": ["send_email"] }),
    )
    .await
    .assert_status(201);
    app.post(
        &format!("/v1/addresses/{id}/aliases"),
        &alice.token,
        json!({ "local_part": "accounting" }),
    )
    .await
    .assert_status(201);
    app.clock.advance(Duration::from_secs(601));
    app.delete(
        &format!("/v1/addresses/{id}?confirm=compta@famille.example"),
        &alice.token,
    )
    .await
    .assert_problem(403, "reauthentication_required");
    let fresh = app.reauth(&alice).await;
    app.delete(&format!("/v1/addresses/{id}"), &fresh)
        .await
        .assert_problem(422, "confirmation_required");
    app.delete(&format!("/v1/addresses/{id}?confirm=compta"), &fresh)
        .await
        .assert_problem(422, "confirmation_required");
    app.delete(
        &format!("/v1/addresses/{id}?confirm=Compta@Famille.example"),
        &fresh,
    )
    .await
    .assert_status(204);
    app.get(&format!("/v1/addresses/{id}"), &fresh)
        .await
        .assert_problem(404, "not_found");
    let service_now = app
        .get(&format!("/v1/mail-services/{service}"), &fresh)
        .await;
    assert_eq!(service_now.assert_status(200)["address_count"], 0);
    for table in ["addresses", "accesses", "share_links", "aliases"] {
        assert_eq!(
            app.scalar_i64(&format!("SELECT COUNT(*) FROM {table}"))
                .await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'address.deleted'")
            .await,
        1
    );
}

async fn address_password_changes_by_managers_and_change_password_holders_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let service = premium(&app, &alice).await;
    let shared = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
        )
        .await;
    let id = shared.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Bob redeems a link without change_password.
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let token = link.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/v1/share-links/redeem",
        &bob.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &bob.token,
        json!({ "new_password": "new horse battery staple" }),
    )
    .await
    .assert_problem(403, "permission_denied");
    app.patch(
        &format!("/v1/addresses/{id}/users/{}", bob.account_id),
        &alice.token,
        json!({ "permissions": ["send_email", "change_password"] }),
    )
    .await
    .assert_status(200);
    let res = app
        .put(
            &format!("/v1/addresses/{id}/password"),
            &bob.token,
            json!({ "new_password": "new horse battery staple" }),
        )
        .await;
    res.assert_status(200);
    let res = app
        .put(
            &format!("/v1/addresses/{id}/password"),
            &alice.token,
            json!({ "new_password": "info@famille.example!" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["new_password"]);
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &alice.token,
        json!({ "new_password": "owner horse battery staple" }),
    )
    .await
    .assert_status(200);
    // The address password is now the owner's: attaching proves it.
    let carol = app.user("carol@example.com").await;
    app.post(
        "/v1/me/addresses",
        &carol.token,
        json!({ "address": "info@famille.example", "password": "owner horse battery staple" }),
    )
    .await
    .assert_status(200);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'address.password_changed'")
            .await,
        2
    );
}

async fn unification_is_offered_only_when_eligible_and_then_keeps_both_in_step(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let created = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "julie", "for": "other_user", "invitee": { "email": "julie@home.example" }, "account_binding": "this_address", "password": STRONG, "permissions": ["change_password", "send_email"] }),
        )
        .await;
    let created = created.assert_status(201).clone();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["password_unification"]["eligible"], false);
    assert!(created["password_unification"]["reason"]
        .as_str()
        .unwrap()
        .contains("no account"));
    // Julie signs up with the address as login and accepts the e-mailed invitation.
    let julie = sign_up_and_accept(&app, &alice, "julie@famille.example").await;
    let address = app.get(&format!("/v1/addresses/{id}"), &julie.token).await;
    let address = address.assert_status(200);
    assert_eq!(
        address["password_unification"]["eligible"], true,
        "{address}"
    );
    assert_eq!(address["password_unification"]["unified"], false);
    // Only that account may unify.
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &alice.token,
        json!({ "new_password": "shared horse battery staple", "unify": true }),
    )
    .await
    .assert_problem(409, "unification_not_eligible");
    let unified_pw = "shared horse battery staple";
    // Unifying changes the account password too: the account's current one is needed.
    let res = app
        .put(
            &format!("/v1/addresses/{id}/password"),
            &julie.token,
            json!({ "new_password": unified_pw, "unify": true }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["current_password"]);
    app.put(
        &format!("/v1/addresses/{id}/password"),
        &julie.token,
        json!({ "new_password": unified_pw, "unify": true, "current_password": "not my password" }),
    )
    .await
    .assert_problem(403, "password_incorrect");
    app.login("julie@famille.example", crate::helpers::PASSWORD)
        .await
        .assert_status(200);
    let res = app
        .put(
            &format!("/v1/addresses/{id}/password"),
            &julie.token,
            json!({ "new_password": unified_pw, "unify": true, "current_password": crate::helpers::PASSWORD }),
        )
        .await;
    assert_eq!(
        res.assert_status(200)["password_unification"]["unified"],
        true
    );
    app.login("julie@famille.example", unified_pw)
        .await
        .assert_status(200);
    // Julie's own log says her account password changed, and through which address.
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", julie.org_id),
            &julie.token,
        )
        .await;
    let changed = events.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "account.password_changed")
        .cloned()
        .expect("account.password_changed in the account's log");
    assert_eq!(changed["details"]["via"], "unified_address", "{changed}");
    // Changing the account password changes the address password.
    let julie2 = app.login("julie@famille.example", unified_pw).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let next_pw = "orange kettle singing loudly";
    let res = app
        .put(
            "/v1/me/password",
            &julie2,
            json!({ "current_password": unified_pw, "new_password": next_pw }),
        )
        .await;
    // The answer says which unified addresses changed with it.
    assert_eq!(
        res.assert_status(200)["unified_addresses"],
        json!(["julie@famille.example"])
    );
    let hashes = app
        .scalar_i64(
            "SELECT COUNT(*) FROM addresses a JOIN accounts c ON c.login = a.address WHERE a.password_hash = c.password_hash",
        )
        .await;
    assert_eq!(hashes, 1);
    // The address's own history shows the change made through the account.
    let events = app
        .get(&format!("/v1/addresses/{id}/events"), &alice.token)
        .await;
    let latest = &events.assert_status(200)["items"][0];
    assert_eq!(latest["action"], "address.password_changed", "{latest}");
    assert_eq!(latest["details"]["via"], "account_password", "{latest}");
    let mallory = app.user("mallory@example.com").await;
    app.post(
        "/v1/me/addresses",
        &mallory.token,
        json!({ "address": "julie@famille.example", "password": next_pw }),
    )
    .await
    .assert_problem(409, "address_is_account_login");
    // An owner's change ends the unification instead of changing Julie's account password.
    let res = app
        .put(
            &format!("/v1/addresses/{id}/password"),
            &alice.token,
            json!({ "new_password": "owner picks another one" }),
        )
        .await;
    assert_eq!(
        res.assert_status(200)["password_unification"]["unified"],
        false
    );
    app.login("julie@famille.example", next_pw)
        .await
        .assert_status(200);
    // Still eligible (Julie alone, with change_password), so Julie may unify again.
    let other = app.get(&format!("/v1/addresses/{id}"), &alice.token).await;
    assert_eq!(other.body["password_unification"]["eligible"], true);
    // Without change_password, it is not offered, and says why.
    app.patch(
        &format!("/v1/addresses/{id}/users/{}", julie.account_id),
        &alice.token,
        json!({ "permissions": ["send_email"] }),
    )
    .await
    .assert_status(200);
    let res = app.get(&format!("/v1/addresses/{id}"), &julie2).await;
    assert_eq!(res.body["password_unification"]["eligible"], false);
    assert!(res.body["password_unification"]["reason"]
        .as_str()
        .unwrap()
        .contains("change_password"));
}

async fn attach_by_password_gives_every_permission_and_looks_the_same_when_wrong(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle.failures_per_login_and_ip = 3).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let service = premium(&app, &alice).await;
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        json!({ "local_part": "compta", "for": "several_users", "password": STRONG }),
    )
    .await
    .assert_status(201);
    let wrong = app
        .post(
            "/v1/me/addresses",
            &bob.token,
            json!({ "address": "compta@famille.example", "password": "not the password" }),
        )
        .await;
    let unknown = app
        .post(
            "/v1/me/addresses",
            &bob.token,
            json!({ "address": "nobody@famille.example", "password": "not the password" }),
        )
        .await;
    wrong.assert_problem(403, "password_incorrect");
    unknown.assert_problem(403, "password_incorrect");
    assert_eq!(wrong.body, unknown.body);
    let res = app
        .post(
            "/v1/me/addresses",
            &bob.token,
            json!({ "address": " Compta@Famille.example ", "password": STRONG }),
        )
        .await;
    let body = res.assert_status(200);
    assert_eq!(body["origin"], "attached");
    assert_eq!(body["permissions"].as_array().unwrap().len(), 12);
    // Throttled like logins.
    for _ in 0..3 {
        app.post(
            "/v1/me/addresses",
            &bob.token,
            json!({ "address": "ghost@famille.example", "password": "guess guess guess" }),
        )
        .await
        .assert_problem(403, "password_incorrect");
    }
    let res = app
        .post(
            "/v1/me/addresses",
            &bob.token,
            json!({ "address": "ghost@famille.example", "password": "guess guess guess" }),
        )
        .await;
    res.assert_problem(429, "too_many_requests");
    assert!(res.headers.contains_key("retry-after"));
}

async fn aliases_need_manage_aliases_and_must_be_free(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let compta = create_for_me(&app, &alice, &service, "compta").await;
    create_for_me(&app, &alice, &service, "info").await;
    let id = compta["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/addresses/{id}/aliases"),
            &alice.token,
            json!({ "local_part": "Factures" }),
        )
        .await;
    assert_eq!(res.assert_status(201)["alias"], "factures@famille.example");
    app.post(
        &format!("/v1/addresses/{id}/aliases"),
        &alice.token,
        json!({ "local_part": "info" }),
    )
    .await
    .assert_problem(409, "address_already_exists");
    // The generic catchall's name is reserved, whether or not it exists yet.
    let catchall = app
        .post(
            &format!("/v1/addresses/{id}/aliases"),
            &alice.token,
            json!({ "local_part": "Catchall" }),
        )
        .await;
    catchall.assert_problem(422, "validation_failed");
    assert_eq!(catchall.error_fields(), vec!["local_part"]);
    app.post(
        &format!("/v1/mail-services/{service}/addresses/generic"),
        &alice.token,
        json!({ "type": "catchall", "password": STRONG }),
    )
    .await
    .assert_status(201);
    app.post(
        &format!("/v1/addresses/{id}/aliases"),
        &alice.token,
        json!({ "local_part": "catchall" }),
    )
    .await
    .assert_problem(422, "validation_failed");
    create_for_me(&app, &alice, &service, "other").await;
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        json!({ "local_part": "factures", "for": "me", "password": STRONG }),
    )
    .await
    .assert_problem(409, "address_already_exists");
    let list = app
        .get(&format!("/v1/addresses/{id}/aliases"), &alice.token)
        .await;
    assert_eq!(
        list.assert_status(200)["items"][0]["alias"],
        "factures@famille.example"
    );
    app.delete(
        &format!("/v1/addresses/{id}/aliases/factures@famille.example"),
        &alice.token,
    )
    .await
    .assert_status(204);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM aliases").await, 0);
}

async fn another_organization_gets_404_on_every_address_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let service = premium(&app, &alice).await;
    let created = create_for_me(&app, &alice, &service, "compta").await;
    let id = created["id"].as_str().unwrap();
    let t = &mallory.token;
    let fresh = app.reauth(&mallory).await;
    let checks = vec![
        app.get(&format!("/v1/mail-services/{service}/addresses"), t)
            .await,
        app.post(
            &format!("/v1/mail-services/{service}/addresses"),
            t,
            json!({ "local_part": "x", "for": "me", "password": STRONG }),
        )
        .await,
        app.post(
            &format!("/v1/mail-services/{service}/addresses/generic"),
            t,
            json!({ "type": "no_reply" }),
        )
        .await,
        app.get(&format!("/v1/addresses/{id}"), t).await,
        app.patch(
            &format!("/v1/addresses/{id}"),
            t,
            json!({ "display_name": "x" }),
        )
        .await,
        app.delete(
            &format!("/v1/addresses/{id}?confirm=compta@famille.example"),
            &fresh,
        )
        .await,
        app.put(
            &format!("/v1/addresses/{id}/password"),
            t,
            json!({ "new_password": STRONG }),
        )
        .await,
        app.get(&format!("/v1/addresses/{id}/aliases"), t).await,
        app.post(
            &format!("/v1/addresses/{id}/aliases"),
            t,
            json!({ "local_part": "x" }),
        )
        .await,
        app.delete(&format!("/v1/addresses/{id}/aliases/x@famille.example"), t)
            .await,
        app.get(&format!("/v1/addresses/{id}/events"), t).await,
    ];
    for (i, res) in checks.iter().enumerate() {
        assert_eq!(res.status.as_u16(), 404, "check {i}: {}", res.text);
        res.assert_problem(404, "not_found");
    }
    let res = app
        .client
        .post(app.url(&format!("/v1/mail-services/{service}/addresses/import")))
        .bearer_auth(t)
        .header("content-type", "text/csv")
        .body("local_part,password\nx,violet umbrella marching north\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 1);
    let mine = app.get("/v1/me/addresses", t).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    let _ = PASSWORD;
}

async fn narrowing_the_login_accounts_permissions_ends_the_unification(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let created = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "julie", "for": "other_user", "invitee": { "email": "julie@home.example" }, "account_binding": "this_address", "permissions": ["change_password"] }),
        )
        .await;
    let id = created.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let julie = sign_up_and_accept(&app, &alice, "julie@famille.example").await;
    let res = app
        .put(
            &format!("/v1/addresses/{id}/password"),
            &julie.token,
            json!({ "new_password": "shared horse battery staple", "unify": true, "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(
        res.assert_status(200)["password_unification"]["unified"],
        true
    );
    app.patch(
        &format!("/v1/addresses/{id}/users/{}", julie.account_id),
        &alice.token,
        json!({ "permissions": ["send_email"] }),
    )
    .await
    .assert_status(200);
    let res = app.get(&format!("/v1/addresses/{id}"), &alice.token).await;
    assert_eq!(res.body["password_unification"]["unified"], false);
    // Julie's account password no longer reaches the address.
    let res = app
        .put(
            "/v1/me/password",
            &julie.token,
            json!({ "current_password": "shared horse battery staple", "new_password": "orange kettle singing loudly" }),
        )
        .await;
    assert_eq!(res.assert_status(200)["unified_addresses"], json!([]));
    let same = app
        .scalar_i64("SELECT COUNT(*) FROM addresses a JOIN accounts c ON c.login = a.address WHERE a.password_hash = c.password_hash")
        .await;
    assert_eq!(same, 0);
}

/// Signs `login` up and accepts, with it, the latest e-mailed invitation of the organization
/// (read from the outbox, as an owner would forward it).
async fn sign_up_and_accept(app: &TestApp, owner: &TestUser, login: &str) -> TestUser {
    let user = app.user(login).await;
    let outbox = app
        .get(
            &format!("/v1/organizations/{}/outbox", owner.org_id),
            &owner.token,
        )
        .await;
    let body = outbox.body["items"][0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    let token = body
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    app.post(
        "/v1/invitations/accept",
        &user.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
    user
}

async fn creating_for_another_user_answers_and_emails_what_the_invitee_cannot_do(backend: Backend) {
    let smtp = crate::smtp_server::TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    // Without a password and without change_password: both warnings, in the answer and in
    // the e-mail.
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "julie", "for": "other_user", "invitee": { "email": "julie@home.example" }, "permissions": ["send_email"] }),
        )
        .await;
    let body = res.assert_status(201).clone();
    let warnings = body["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0]
        .as_str()
        .unwrap()
        .contains("will not be able to change the address password"));
    assert!(warnings[1]
        .as_str()
        .unwrap()
        .contains("cannot be used in a mail client"));
    assert_eq!(body["invitation"]["warnings"], body["warnings"]);
    let mails = smtp.wait_for_notifications(1).await;
    let mail = mails
        .iter()
        .find(|m| m.to == vec!["julie@home.example"])
        .unwrap();
    let text = mail.data.replace("=\r\n", "").replace("\r\n", " ");
    assert!(
        text.contains("You will not be able to change the address password yourself"),
        "{text}"
    );
    assert!(text.contains("no password yet"), "{text}");
    // With a password and change_password: only the note that accepting comes first.
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "paul", "for": "other_user", "invitee": { "email": "paul@home.example" }, "permissions": ["change_password"], "password": STRONG }),
        )
        .await;
    let body = res.assert_status(201).clone();
    assert_eq!(body["warnings"].as_array().unwrap().len(), 1);
    assert!(body["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with("Until the invitee accepts with an account"));
    // Inviting onto an existing address answers the same way; listing shows them too.
    let id = body["id"].as_str().unwrap();
    let invited = app
        .post(
            &format!("/v1/addresses/{id}/invitations"),
            &alice.token,
            json!({ "invitee": { "email": "zoe@home.example" }, "permissions": [] }),
        )
        .await;
    assert!(invited.assert_status(201)["warnings"][0]
        .as_str()
        .unwrap()
        .contains("will not be able to change"));
    let listed = app
        .get(&format!("/v1/addresses/{id}/invitations"), &alice.token)
        .await;
    assert_eq!(
        listed.assert_status(200)["items"].as_array().unwrap().len(),
        2
    );
    assert!(listed.body["items"][0]["warnings"].is_array());
    // The other creation forms carry no warnings.
    let mine = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "moi", "for": "me", "password": STRONG }),
        )
        .await;
    assert_eq!(mine.assert_status(201)["warnings"], json!([]));
}
