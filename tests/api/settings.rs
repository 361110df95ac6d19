//! Address settings: forwarding targets confirmed by the target, and the auto-reply.

use serde_json::json;

use crate::addresses::{create_for_me, premium, STRONG};
use crate::helpers::{spawn_app_with, Backend};
use crate::mail_services::create_service;
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    a_forward_flows_only_once_its_target_confirmed_by_the_emailed_link,
    forwards_need_manage_redirections_and_respect_the_pack_number,
    an_imported_redirect_asks_its_target_to_confirm,
    the_auto_reply_is_saved_validated_and_exposed_to_the_mail_servers,
    a_stranger_gets_404_on_every_settings_endpoint,
    reading_forwards_auto_reply_and_aliases_takes_their_permission_or_the_manager_role,
);

fn token_in(text: &str) -> String {
    text.split("token=")
        .nth(1)
        .unwrap()
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

async fn a_forward_flows_only_once_its_target_confirmed_by_the_emailed_link(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/addresses/{id}/forwards"),
            &alice.token,
            json!({ "target": "Julie@Home.Example", "keep_copy": false }),
        )
        .await;
    let created = res.assert_status(201).clone();
    assert_eq!(created["target"], "julie@home.example");
    assert_eq!(created["confirmed"], false);
    // Not delivered before confirmation: the mail servers' alias view has no such row.
    let rows = app
        .scalar_i64("SELECT COUNT(*) FROM mail_aliases WHERE destination = 'julie@home.example'")
        .await;
    assert_eq!(rows, 0);
    let mails = smtp.wait_for_notifications(1).await;
    assert_eq!(mails[0].to, vec!["julie@home.example"]);
    let token = token_in(&mails[0].data);
    // Confirmed without any account, by the link's token; single use.
    let res = app
        .post_anon("/v1/forwards/confirm", json!({ "token": token }))
        .await;
    assert_eq!(res.assert_status(200)["address"], "compta@famille.example");
    app.post_anon("/v1/forwards/confirm", json!({ "token": token }))
        .await
        .assert_problem(404, "not_found");
    let list = app
        .get(&format!("/v1/addresses/{id}/forwards"), &alice.token)
        .await;
    assert_eq!(list.assert_status(200)["items"][0]["confirmed"], true);
    let rows = app.scalar_i64("SELECT COUNT(*) FROM mail_aliases WHERE source = 'compta@famille.example' AND destination = 'julie@home.example'").await;
    assert_eq!(rows, 1);
    // keep_copy false: the mailbox itself no longer receives a copy.
    let own = app.scalar_i64("SELECT COUNT(*) FROM mail_aliases WHERE source = 'compta@famille.example' AND destination = 'compta@famille.example'").await;
    assert_eq!(own, 0);
    let forward_id = created["id"].as_str().unwrap();
    let res = app
        .patch(
            &format!("/v1/addresses/{id}/forwards/{forward_id}"),
            &alice.token,
            json!({ "keep_copy": true }),
        )
        .await;
    assert_eq!(res.assert_status(200)["keep_copy"], true);
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": "julie@home.example" }),
    )
    .await
    .assert_problem(409, "forward_already_exists");
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": "compta@famille.example" }),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.delete(
        &format!("/v1/addresses/{id}/forwards/{forward_id}"),
        &alice.token,
    )
    .await
    .assert_status(204);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM forwards").await, 0);
    let events = app
        .get(&format!("/v1/addresses/{id}/events"), &alice.token)
        .await;
    let text = events.text.clone();
    assert!(text.contains("forward.confirmed") && !text.contains(&token));
}

async fn forwards_need_manage_redirections_and_respect_the_pack_number(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let starter = create_service(&app, &alice, Some("starter.example"), "starter").await;
    let starter = starter["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/mail-services/{starter}/addresses"),
            &alice.token,
            json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
        )
        .await;
    let id = res.assert_status(201)["id"].as_str().unwrap().to_string();
    for i in 0..10 {
        app.post(
            &format!("/v1/addresses/{id}/forwards"),
            &alice.token,
            json!({ "target": format!("t{i}@elsewhere.example") }),
        )
        .await
        .assert_status(201);
    }
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": "t10@elsewhere.example" }),
    )
    .await
    .assert_problem(409, "forward_limit_reached");
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
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &bob.token,
        json!({ "target": "bob@elsewhere.example" }),
    )
    .await
    .assert_problem(403, "permission_denied");
    // Reading the targets takes the same permission as changing them (issue 16: they were
    // readable by any access before).
    app.get(&format!("/v1/addresses/{id}/forwards"), &bob.token)
        .await
        .assert_problem(403, "permission_denied");
    app.put(
        &format!("/v1/addresses/{id}/auto-reply"),
        &bob.token,
        json!({ "enabled": true, "subject": "Away", "body": "Back soon" }),
    )
    .await
    .assert_problem(403, "permission_denied");
}

async fn an_imported_redirect_asks_its_target_to_confirm(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let csv = "local_part;password;redirect_to;redirect_keep\njulie;violet umbrella marching north;julie@home.example;0\n";
    let res = crate::imports::import(&app, &alice, &service, "", csv).await;
    res.assert_status(201);
    let mails = smtp.wait_for_notifications(1).await;
    assert_eq!(mails[0].to, vec!["julie@home.example"]);
    assert!(mails[0].data.contains("julie@famille.example"));
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM forwards WHERE confirmed_at IS NULL AND keep_copy = true"
        )
        .await,
        1
    );
}

async fn the_auto_reply_is_saved_validated_and_exposed_to_the_mail_servers(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap();
    let res = app
        .get(&format!("/v1/addresses/{id}/auto-reply"), &alice.token)
        .await;
    assert_eq!(res.assert_status(200)["enabled"], false);
    let res = app
        .put(
            &format!("/v1/addresses/{id}/auto-reply"),
            &alice.token,
            json!({ "enabled": true, "subject": "Congés", "body": "Je suis absente.", "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z" }),
        )
        .await;
    let saved = res.assert_status(200).clone();
    assert_eq!(saved["subject"], "Congés");
    assert_eq!(saved["active_now"], true);
    let res = app
        .put(
            &format!("/v1/addresses/{id}/auto-reply"),
            &alice.token,
            json!({ "enabled": true, "subject": "x", "body": "y", "starts_at": "2027-01-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["ends_at"]);
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM mail_auto_replies WHERE address = 'compta@famille.example'"
        )
        .await,
        1
    );
    // The catchall's auto-reply comes with the seed's warning.
    let catchall = app
        .post(
            &format!("/v1/mail-services/{service}/addresses/generic"),
            &alice.token,
            json!({ "type": "catchall" }),
        )
        .await;
    let catchall = catchall.body["id"].as_str().unwrap().to_string();
    let res = app
        .get(
            &format!("/v1/addresses/{catchall}/auto-reply"),
            &alice.token,
        )
        .await;
    assert!(res.body["warnings"][0]
        .as_str()
        .unwrap()
        .contains("non-existent"));
    app.delete(&format!("/v1/addresses/{id}/auto-reply"), &alice.token)
        .await
        .assert_status(204);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM auto_replies").await, 0);
}

async fn a_stranger_gets_404_on_every_settings_endpoint(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap();
    let forward = app
        .post(
            &format!("/v1/addresses/{id}/forwards"),
            &alice.token,
            json!({ "target": "julie@home.example" }),
        )
        .await;
    let forward_id = forward.body["id"].as_str().unwrap().to_string();
    let mallory = app.user("mallory@example.com").await;
    let t = &mallory.token;
    let checks = [
        app.get(&format!("/v1/addresses/{id}/forwards"), t).await,
        app.post(
            &format!("/v1/addresses/{id}/forwards"),
            t,
            json!({ "target": "m@evil.example" }),
        )
        .await,
        app.patch(
            &format!("/v1/addresses/{id}/forwards/{forward_id}"),
            t,
            json!({ "keep_copy": false }),
        )
        .await,
        app.delete(&format!("/v1/addresses/{id}/forwards/{forward_id}"), t)
            .await,
        app.get(&format!("/v1/addresses/{id}/auto-reply"), t).await,
        app.put(
            &format!("/v1/addresses/{id}/auto-reply"),
            t,
            json!({ "enabled": true, "subject": "x", "body": "y" }),
        )
        .await,
        app.delete(&format!("/v1/addresses/{id}/auto-reply"), t)
            .await,
    ];
    for (i, res) in checks.iter().enumerate() {
        assert_eq!(res.status.as_u16(), 404, "check {i}: {}", res.text);
    }
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM forwards").await, 1);
}

async fn reading_forwards_auto_reply_and_aliases_takes_their_permission_or_the_manager_role(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
        )
        .await;
    let id = res.assert_status(201)["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": "secret-target@elsewhere.example" }),
    )
    .await
    .assert_status(201);
    app.post(
        &format!("/v1/addresses/{id}/aliases"),
        &alice.token,
        json!({ "local_part": "hidden-alias" }),
    )
    .await
    .assert_status(201);
    app.put(
        &format!("/v1/addresses/{id}/auto-reply"),
        &alice.token,
        json!({ "enabled": true, "subject": "Private trip", "body": "Back on Monday" }),
    )
    .await
    .assert_status(200);
    let reads = |token: String| {
        let app = &app;
        let id = id.clone();
        async move {
            [
                app.get(&format!("/v1/addresses/{id}/forwards"), &token)
                    .await,
                app.get(&format!("/v1/addresses/{id}/auto-reply"), &token)
                    .await,
                app.get(&format!("/v1/addresses/{id}/aliases"), &token)
                    .await,
            ]
        }
    };
    // A member with role `user` and no access, and a user of the address holding only
    // `send_email`: 403 on each, and nothing of them in the answer.
    let carol = app.user("carol@example.com").await;
    app.add_member(&alice, &carol, "user").await;
    let bob = app.user("bob@example.com").await;
    crate::mail_clients::share(&app, &alice, &id, &bob, json!(["send_email"])).await;
    for token in [carol.token.clone(), bob.token.clone()] {
        for res in reads(token).await {
            res.assert_problem(403, "permission_denied");
            assert!(!res.text.contains("secret-target") && !res.text.contains("hidden-alias"));
            assert!(!res.text.contains("Private trip"));
        }
    }
    // The matching permission opens each one, and only that one.
    let dave = app.user("dave@example.com").await;
    crate::mail_clients::share(&app, &alice, &id, &dave, json!(["manage_redirections"])).await;
    let [forwards, auto_reply, aliases] = reads(dave.token.clone()).await;
    assert!(forwards
        .assert_status(200)
        .to_string()
        .contains("secret-target"));
    auto_reply.assert_problem(403, "permission_denied");
    aliases.assert_problem(403, "permission_denied");
    // Owners and admins read all three.
    let erin = app.user("erin@example.com").await;
    app.add_member(&alice, &erin, "admin").await;
    for token in [alice.token.clone(), erin.token.clone()] {
        for res in reads(token).await {
            res.assert_status(200);
        }
    }
}
