//! Organizations, members and roles, the last-owner rule, the audit log, and isolation:
//! another organization's resources answer 404 on every endpoint.

use serde_json::json;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(
    create_rename_and_read_an_organization,
    members_are_added_by_login_and_roles_change,
    the_last_owner_can_neither_leave_nor_be_demoted,
    users_see_but_cannot_manage_and_can_leave,
    events_are_listed_newest_first_with_cursor_pagination,
    another_organization_answers_404_on_every_endpoint,
    adding_and_removing_a_member_is_audited,
    an_accounts_own_events_stay_in_its_own_personal_organization,
);

async fn create_rename_and_read_an_organization(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let res = app
        .post(
            "/v1/organizations",
            &alice.token,
            json!({ "name": "  Entreprise familiale " }),
        )
        .await;
    let org = res.assert_status(201).clone();
    assert_eq!(org["name"], "Entreprise familiale");
    assert_eq!(org["role"], "owner");
    assert_eq!(org["personal"], false);
    let id = org["id"].as_str().unwrap();
    let res = app
        .patch(
            &format!("/v1/organizations/{id}"),
            &alice.token,
            json!({ "name": "EF" }),
        )
        .await;
    assert_eq!(res.assert_status(200)["name"], "EF");
    let res = app
        .get(&format!("/v1/organizations/{id}"), &alice.token)
        .await;
    assert_eq!(res.assert_status(200)["name"], "EF");
    let res = app
        .patch(
            &format!("/v1/organizations/{id}"),
            &alice.token,
            json!({ "name": "   " }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    let list = app.get("/v1/organizations", &alice.token).await;
    assert_eq!(
        list.assert_status(200)["items"].as_array().unwrap().len(),
        2
    );
}

async fn members_are_added_by_login_and_roles_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let org = alice.org_id;
    // Adding a member invites the login; the member joins by accepting.
    let res = app
        .post(
            &format!("/v1/organizations/{org}/members"),
            &alice.token,
            json!({ "login": "Bob@Example.com", "role": "admin" }),
        )
        .await;
    let invitation = res.assert_status(202).clone();
    assert_eq!(invitation["login"], "bob@example.com");
    assert_eq!(invitation["role"], "admin");
    assert_eq!(invitation["status"], "pending");
    let id = invitation["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/member-invitations/{id}/accept"),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(res.assert_status(200)["status"], "accepted");
    let member = app
        .get(&format!("/v1/organizations/{org}/members"), &alice.token)
        .await;
    let member = member.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["login"] == "bob@example.com")
        .unwrap()
        .clone();
    assert_eq!(member["role"], "admin");
    app.post(
        &format!("/v1/organizations/{org}/members"),
        &alice.token,
        json!({ "login": "bob@example.com", "role": "user" }),
    )
    .await
    .assert_problem(409, "member_already_exists");
    // A login no account has is invited the same way (nothing tells it apart).
    let res = app
        .post(
            &format!("/v1/organizations/{org}/members"),
            &alice.token,
            json!({ "login": "nobody@example.com", "role": "user" }),
        )
        .await;
    assert_eq!(res.assert_status(202)["login"], "nobody@example.com");
    app.post(
        &format!("/v1/organizations/{org}/members"),
        &alice.token,
        json!({ "login": "bob@example.com", "role": "emperor" }),
    )
    .await
    .assert_problem(422, "validation_failed");
    // Bob, an admin, sees the organization and its members.
    let members = app
        .get(&format!("/v1/organizations/{org}/members"), &bob.token)
        .await;
    assert_eq!(
        members.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // An admin cannot make owners.
    app.patch(
        &format!("/v1/organizations/{org}/members/{}", bob.account_id),
        &bob.token,
        json!({ "role": "owner" }),
    )
    .await
    .assert_problem(403, "forbidden");
    let res = app
        .patch(
            &format!("/v1/organizations/{org}/members/{}", bob.account_id),
            &alice.token,
            json!({ "role": "owner" }),
        )
        .await;
    assert_eq!(res.assert_status(200)["role"], "owner");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'member.role_changed'")
            .await,
        1
    );
}

async fn the_last_owner_can_neither_leave_nor_be_demoted(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let org = alice.org_id;
    app.delete(
        &format!("/v1/organizations/{org}/members/{}", alice.account_id),
        &alice.token,
    )
    .await
    .assert_problem(409, "organization_last_owner");
    app.patch(
        &format!("/v1/organizations/{org}/members/{}", alice.account_id),
        &alice.token,
        json!({ "role": "admin" }),
    )
    .await
    .assert_problem(409, "organization_last_owner");
    // With a second owner, the first may step down.
    let bob = app.user("bob@example.com").await;
    app.add_member_to(org, &alice, &bob, "owner").await;
    app.delete(
        &format!("/v1/organizations/{org}/members/{}", alice.account_id),
        &alice.token,
    )
    .await
    .assert_status(204);
    app.get(&format!("/v1/organizations/{org}"), &alice.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM memberships WHERE role = 'owner'")
            .await,
        2 // bob's personal org and this one
    );
}

async fn users_see_but_cannot_manage_and_can_leave(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let carol = app.user("carol@example.com").await;
    let org = alice.org_id;
    app.add_member_to(org, &alice, &carol, "user").await;
    app.get(&format!("/v1/organizations/{org}"), &carol.token)
        .await
        .assert_status(200);
    app.patch(
        &format!("/v1/organizations/{org}"),
        &carol.token,
        json!({ "name": "Mine" }),
    )
    .await
    .assert_problem(403, "forbidden");
    app.get(&format!("/v1/organizations/{org}/events"), &carol.token)
        .await
        .assert_problem(403, "forbidden");
    app.post(
        &format!("/v1/organizations/{org}/members"),
        &carol.token,
        json!({ "login": "carol@example.com", "role": "owner" }),
    )
    .await
    .assert_problem(403, "forbidden");
    app.delete(
        &format!("/v1/organizations/{org}/members/{}", alice.account_id),
        &carol.token,
    )
    .await
    .assert_problem(403, "forbidden");
    app.delete(
        &format!("/v1/organizations/{org}/members/{}", carol.account_id),
        &carol.token,
    )
    .await
    .assert_status(204);
    let events = app
        .get(&format!("/v1/organizations/{org}/events"), &alice.token)
        .await;
    assert_eq!(
        events.assert_status(200)["items"][0]["action"],
        "member.left"
    );
}

async fn events_are_listed_newest_first_with_cursor_pagination(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let org = alice.org_id;
    for i in 0..5 {
        app.patch(
            &format!("/v1/organizations/{org}"),
            &alice.token,
            json!({ "name": format!("Name {i}") }),
        )
        .await
        .assert_status(200);
    }
    let first = app
        .get(
            &format!("/v1/organizations/{org}/events?limit=3"),
            &alice.token,
        )
        .await;
    let first = first.assert_status(200).clone();
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["details"]["name"], "Name 4");
    assert_eq!(items[0]["actor_account_id"], alice.account_id.to_string());
    assert_eq!(items[0]["ip"], "127.0.0.1");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/v1/organizations/{org}/events?limit=3&cursor={cursor}"),
            &alice.token,
        )
        .await;
    let second = second.assert_status(200).clone();
    let items = second["items"].as_array().unwrap();
    // 5 renames + session.created + account.created + organization.created = 8 events.
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["details"]["name"], "Name 1");
    let third = app
        .get(
            &format!(
                "/v1/organizations/{org}/events?limit=3&cursor={}",
                second["next_cursor"].as_str().unwrap()
            ),
            &alice.token,
        )
        .await;
    let third = third.assert_status(200);
    assert_eq!(third["items"].as_array().unwrap().len(), 2);
    assert!(third["next_cursor"].is_null());
    app.get(
        &format!("/v1/organizations/{org}/events?limit=500"),
        &alice.token,
    )
    .await
    .assert_problem(422, "validation_failed");
    app.get(
        &format!("/v1/organizations/{org}/events?cursor=%%%"),
        &alice.token,
    )
    .await
    .assert_problem(422, "validation_failed");
}

async fn another_organization_answers_404_on_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let org = alice.org_id;
    let alice_id = alice.account_id;
    let t = &mallory.token;
    app.get(&format!("/v1/organizations/{org}"), t)
        .await
        .assert_problem(404, "not_found");
    app.patch(
        &format!("/v1/organizations/{org}"),
        t,
        json!({ "name": "pwned" }),
    )
    .await
    .assert_problem(404, "not_found");
    app.get(&format!("/v1/organizations/{org}/members"), t)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/v1/organizations/{org}/members"),
        t,
        json!({ "login": "mallory@example.com", "role": "owner" }),
    )
    .await
    .assert_problem(404, "not_found");
    app.patch(
        &format!("/v1/organizations/{org}/members/{alice_id}"),
        t,
        json!({ "role": "user" }),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(&format!("/v1/organizations/{org}/members/{alice_id}"), t)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/organizations/{org}/events"), t)
        .await
        .assert_problem(404, "not_found");
    let list = app.get("/v1/organizations", t).await;
    let items = list.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_ne!(items[0]["id"], org.to_string());
    // Nothing changed.
    let res = app
        .get(&format!("/v1/organizations/{org}"), &alice.token)
        .await;
    assert_eq!(res.assert_status(200)["name"], "alice@example.com");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM memberships WHERE account_id <> (SELECT id FROM accounts WHERE login = 'alice@example.com') AND role = 'owner'")
        .await,
        1
    );
}

async fn adding_and_removing_a_member_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let org = alice.org_id;
    let res = app
        .post(
            &format!("/v1/organizations/{org}/members"),
            &alice.token,
            json!({ "login": "Bob@Example.com", "role": "admin" }),
        )
        .await;
    let invitation = res.assert_status(202)["id"].as_str().unwrap().to_string();
    let events = app
        .get(&format!("/v1/organizations/{org}/events"), &alice.token)
        .await;
    let invited = events.assert_status(200)["items"][0].clone();
    assert_eq!(invited["action"], "member_invitation.created");
    assert_eq!(invited["target"], "bob@example.com");
    assert_eq!(invited["actor_account_id"], alice.account_id.to_string());
    assert_eq!(invited["details"]["member_invitation_id"], invitation);
    assert_eq!(invited["details"]["role"], "admin");
    app.post(
        &format!("/v1/member-invitations/{invitation}/accept"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_status(200);
    let events = app
        .get(&format!("/v1/organizations/{org}/events"), &alice.token)
        .await;
    // The member joined by consent: the one who accepted is the actor.
    let added = events.assert_status(200)["items"][0].clone();
    assert_eq!(added["action"], "member.added");
    assert_eq!(added["target"], "bob@example.com");
    assert_eq!(added["organization_id"], org.to_string());
    assert_eq!(added["actor_account_id"], bob.account_id.to_string());
    assert_eq!(added["details"]["account_id"], bob.account_id.to_string());
    assert_eq!(added["details"]["role"], "admin");
    assert_eq!(
        events.body["items"][1]["action"],
        "member_invitation.accepted"
    );
    // A refused addition records nothing.
    app.post(
        &format!("/v1/organizations/{org}/members"),
        &alice.token,
        json!({ "login": "bob@example.com", "role": "user" }),
    )
    .await
    .assert_problem(409, "member_already_exists");
    app.delete(
        &format!("/v1/organizations/{org}/members/{}", bob.account_id),
        &alice.token,
    )
    .await
    .assert_status(204);
    let events = app
        .get(&format!("/v1/organizations/{org}/events"), &alice.token)
        .await;
    let items = events.assert_status(200)["items"].clone();
    let removed = &items[0];
    assert_eq!(removed["action"], "member.removed");
    assert_eq!(removed["target"], "bob@example.com");
    assert_eq!(removed["actor_account_id"], alice.account_id.to_string());
    assert_eq!(removed["details"]["account_id"], bob.account_id.to_string());
    assert_eq!(removed["details"]["role"], "admin");
    assert_eq!(items[1]["action"], "member.added");
    for action in ["member.added", "member.removed"] {
        assert_eq!(
            app.scalar_i64(&format!(
                "SELECT COUNT(*) FROM events WHERE action = '{action}'"
            ))
            .await,
            1,
            "{action}"
        );
    }
    // Removed by someone else, it is not a departure.
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'member.left'")
            .await,
        0
    );
}

async fn an_accounts_own_events_stay_in_its_own_personal_organization(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    // Bob becomes an owner of Alice's personal organization, older than his own.
    app.add_member(&alice, &bob, "owner").await;
    let again = app.login("bob@example.com", crate::helpers::PASSWORD).await;
    again.assert_status(200);
    // Alice (and her admins) never read Bob's logins and their client addresses.
    let alice_log = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    let alice_log = alice_log.assert_status(200);
    let bobs: Vec<_> = alice_log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "session.created" && e["actor_account_id"] == bob.account_id.to_string()
        })
        .collect();
    assert!(bobs.is_empty(), "{alice_log}");
    let bob_log = app
        .get(
            &format!("/v1/organizations/{}/events", bob.org_id),
            &bob.token,
        )
        .await;
    let bob_log = bob_log.assert_status(200);
    let sessions = bob_log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "session.created")
        .count();
    assert_eq!(sessions, 2, "{bob_log}");
    // Bob, now an owner there, removes Alice from her own personal organization: her logins
    // are no longer written where only Bob reads.
    app.delete(
        &format!(
            "/v1/organizations/{}/members/{}",
            alice.org_id, alice.account_id
        ),
        &bob.token,
    )
    .await
    .assert_status(204);
    let before = app
        .scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'session.created'")
        .await;
    app.login("alice@example.com", crate::helpers::PASSWORD)
        .await
        .assert_status(200);
    let log = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &bob.token,
        )
        .await;
    let log = log.assert_status(200).clone();
    let alices_sessions = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "session.created"
                && e["actor_account_id"] == alice.account_id.to_string()
        })
        .count();
    // Only the one from before the removal (her first login).
    assert_eq!(alices_sessions, 1, "{log}");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'session.created'")
            .await,
        before + 1
    );
}
