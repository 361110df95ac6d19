//! Entity tags on single resources: `ETag` on GET and PATCH/PUT answers, 304 while
//! `If-None-Match` names it, and `If-Match` on PATCH, PUT and DELETE: 412 with nothing
//! changed when the resource changed since, even when the changes race.

use reqwest::Method;
use serde_json::{json, Value};

use crate::addresses::{create_for_me, premium};
use crate::helpers::{into_test_response, spawn_app, Backend, TestApp, TestResponse, TestUser};
use crate::on_both_backends;
use crate::webhooks::{app_allowing_loopback, create_webhook};

on_both_backends!(
    get_returns_an_etag_and_304_while_if_none_match_names_it,
    patch_answers_the_new_etag_and_an_old_one_no_longer_matches,
    every_single_resource_refuses_a_change_under_a_stale_tag,
    a_delete_under_a_tag_that_is_not_current_deletes_nothing,
    of_changes_racing_on_one_tag_exactly_one_wins,
);

/// `method path` with `If-Match: tag` (and a JSON body when given).
async fn conditional(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    tag: &str,
    body: Option<&Value>,
) -> TestResponse {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("If-Match", tag);
    if let Some(body) = body {
        req = req.json(body);
    }
    into_test_response(req.send().await.expect("request")).await
}

/// One of every kind of single resource, owned by alice: her account, an address of a
/// premium service, the service, her organization, bob as its member, bob's access to the
/// address (through a share link, kept), a forward, the auto-reply and a webhook.
struct Resources {
    alice: TestUser,
    address: String,
    service: String,
    organization: String,
    member: String,
    access: String,
    share_link: String,
    forward: String,
    auto_reply: String,
    webhook: String,
}

async fn resources(app: &TestApp) -> Resources {
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let service = premium(app, &alice).await;
    let address = create_for_me(app, &alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap().to_string();
    app.add_member(&alice, &bob, "user").await;
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"], "max_uses": 5 }),
        )
        .await;
    let link = link.assert_status(201).clone();
    app.post(
        "/v1/share-links/redeem",
        &bob.token,
        json!({ "token": link["token"] }),
    )
    .await
    .assert_status(200);
    let forward = app
        .post(
            &format!("/v1/addresses/{id}/forwards"),
            &alice.token,
            json!({ "target": "julie@home.example" }),
        )
        .await;
    let forward = forward.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let webhook = create_webhook(app, &alice, json!({ "url": "http://127.0.0.1:9/hook" })).await;
    Resources {
        address: format!("/v1/addresses/{id}"),
        service: format!("/v1/mail-services/{service}"),
        organization: format!("/v1/organizations/{}", alice.org_id),
        member: format!(
            "/v1/organizations/{}/members/{}",
            alice.org_id, bob.account_id
        ),
        access: format!("/v1/addresses/{id}/users/{}", bob.account_id),
        share_link: format!("/v1/share-links/{}", link["id"].as_str().unwrap()),
        forward: format!("/v1/addresses/{id}/forwards/{forward}"),
        auto_reply: format!("/v1/addresses/{id}/auto-reply"),
        webhook: format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap()),
        alice,
    }
}

async fn every_single_resource_refuses_a_change_under_a_stale_tag(backend: Backend) {
    let app = app_allowing_loopback(backend).await;
    let r = resources(&app).await;
    // Nanoseconds, which PostgreSQL does not keep: the answer must still be the next GET's.
    let reply = |subject: &str| {
        json!({
            "enabled": true, "subject": subject, "body": "Back soon",
            "starts_at": "2020-01-01T00:00:00.123456789Z"
        })
    };
    let cases = [
        (
            "/v1/me".to_string(),
            Method::PATCH,
            json!({ "display_name": "A" }),
            json!({ "display_name": "B" }),
        ),
        (
            r.address.clone(),
            Method::PATCH,
            json!({ "display_name": "A" }),
            json!({ "display_name": "B" }),
        ),
        (
            r.service.clone(),
            Method::PATCH,
            json!({ "default_permissions": ["send_email"] }),
            json!({ "default_permissions": ["send_email", "manage_filters"] }),
        ),
        (
            r.organization.clone(),
            Method::PATCH,
            json!({ "name": "A" }),
            json!({ "name": "B" }),
        ),
        (
            r.member.clone(),
            Method::PATCH,
            json!({ "role": "admin" }),
            json!({ "role": "user" }),
        ),
        (
            r.access.clone(),
            Method::PATCH,
            json!({ "permissions": ["send_email", "manage_filters"] }),
            json!({ "permissions": ["manage_filters"] }),
        ),
        (
            r.forward.clone(),
            Method::PATCH,
            json!({ "keep_copy": false }),
            json!({ "keep_copy": true }),
        ),
        (r.auto_reply.clone(), Method::PUT, reply("A"), reply("B")),
        (
            r.webhook.clone(),
            Method::PATCH,
            json!({ "description": "A" }),
            json!({ "description": "B" }),
        ),
    ];
    let token = &r.alice.token;
    for (path, method, first, second) in cases {
        let read = app.get(&path, token).await;
        read.assert_status(200);
        let before = etag(&read);
        let changed = conditional(&app, method.clone(), &path, token, &before, Some(&first)).await;
        changed.assert_status(200);
        let after = etag(&changed);
        assert_ne!(after, before, "{path}");
        let current = app.get(&path, token).await;
        assert_eq!(
            etag(&current),
            after,
            "{path}: the change's answer is what GET answers"
        );
        assert_eq!(current.body, changed.body, "{path}");
        for refused in [
            before.clone(),
            format!("W/{after}"),
            "\"other\"".to_string(),
        ] {
            let stale =
                conditional(&app, method.clone(), &path, token, &refused, Some(&second)).await;
            stale.assert_problem(412, "precondition_failed");
            let unchanged = app.get(&path, token).await;
            assert_eq!(
                unchanged.body, changed.body,
                "{path}: a refused change changed nothing"
            );
        }
        let listed = format!("\"other\", {after}");
        conditional(&app, method.clone(), &path, token, &listed, Some(&second))
            .await
            .assert_status(200);
        conditional(&app, method, &path, token, "*", Some(&first))
            .await
            .assert_status(200);
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations WHERE name = 'A'")
            .await,
        1,
        "the last change went through, the refused ones did not"
    );
}

async fn a_delete_under_a_tag_that_is_not_current_deletes_nothing(backend: Backend) {
    let app = app_allowing_loopback(backend).await;
    let r = resources(&app).await;
    let fresh = app.reauth(&r.alice).await;
    app.put(
        &r.auto_reply,
        &r.alice.token,
        json!({ "enabled": true, "subject": "Away", "body": "Back soon" }),
    )
    .await
    .assert_status(200);
    let address = app.get(&r.address, &r.alice.token).await;
    let confirm = address.body["address"].as_str().unwrap().to_string();
    let service = app.get(&r.service, &r.alice.token).await;
    let domain = service.body["domain"].as_str().unwrap().to_string();
    // Dependents first: the address takes its access, forward and link with it.
    let cases = [
        (
            r.share_link.clone(),
            r.share_link.clone(),
            "SELECT COUNT(*) FROM share_links WHERE revoked_at IS NULL",
        ),
        (
            r.forward.clone(),
            r.forward.clone(),
            "SELECT COUNT(*) FROM forwards",
        ),
        (
            r.auto_reply.clone(),
            r.auto_reply.clone(),
            "SELECT COUNT(*) FROM auto_replies",
        ),
        (
            r.access.clone(),
            r.access.clone(),
            "SELECT COUNT(*) FROM accesses",
        ),
        (
            r.member.clone(),
            r.member.clone(),
            "SELECT COUNT(*) FROM memberships",
        ),
        (
            r.webhook.clone(),
            r.webhook.clone(),
            "SELECT COUNT(*) FROM webhooks",
        ),
        (
            r.address.clone(),
            format!("{}?confirm={confirm}", r.address),
            "SELECT COUNT(*) FROM addresses",
        ),
        (
            r.service.clone(),
            format!("{}?confirm={domain}", r.service),
            "SELECT COUNT(*) FROM mail_services",
        ),
    ];
    for (read, delete, count) in cases {
        let current = app.get(&read, &fresh).await;
        current.assert_status(200);
        let tag = etag(&current);
        let rows = app.scalar_i64(count).await;
        for refused in ["\"other\"".to_string(), format!("W/{tag}")] {
            conditional(&app, Method::DELETE, &delete, &fresh, &refused, None)
                .await
                .assert_problem(412, "precondition_failed");
            assert_eq!(
                app.scalar_i64(count).await,
                rows,
                "{delete}: nothing deleted"
            );
        }
        conditional(&app, Method::DELETE, &delete, &fresh, &tag, None)
            .await
            .assert_status(204);
        assert!(app.scalar_i64(count).await < rows, "{delete}: deleted");
    }
    let carol = app.user("carol@example.com").await;
    let carol_fresh = app.reauth(&carol).await;
    let tag = etag(&app.get("/v1/me", &carol.token).await);
    app.patch("/v1/me", &carol.token, json!({ "display_name": "Carol" }))
        .await
        .assert_status(200);
    let delete = "/v1/me?confirm=carol@example.com";
    conditional(&app, Method::DELETE, delete, &carol_fresh, &tag, None)
        .await
        .assert_problem(412, "precondition_failed");
    let carols = "SELECT COUNT(*) FROM accounts WHERE login = 'carol@example.com'";
    assert_eq!(app.scalar_i64(carols).await, 1);
    let tag = etag(&app.get("/v1/me", &carol_fresh).await);
    conditional(&app, Method::DELETE, delete, &carol_fresh, &tag, None)
        .await
        .assert_status(204);
    assert_eq!(app.scalar_i64(carols).await, 0);
}

async fn of_changes_racing_on_one_tag_exactly_one_wins(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let path = format!("/v1/addresses/{}", address["id"].as_str().unwrap());
    let tag = etag(&app.get(&path, &alice.token).await);
    let changes = (0..8).map(|i| {
        let body = json!({ "display_name": format!("Writer {i}") });
        let (app, path, token, tag) = (&app, &path, &alice.token, &tag);
        async move { conditional(app, Method::PATCH, path, token, tag, Some(&body)).await }
    });
    let answers = futures_util::future::join_all(changes).await;
    let won: Vec<&TestResponse> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one change decided on {tag} goes through"
    );
    for lost in answers.iter().filter(|a| a.status != 200) {
        lost.assert_problem(412, "precondition_failed");
    }
    let now = app.get(&path, &alice.token).await;
    assert_eq!(now.body["display_name"], won[0].body["display_name"]);
    let events = "SELECT COUNT(*) FROM events WHERE action = 'address.updated'";
    assert_eq!(app.scalar_i64(events).await, 1, "one change recorded");
}

async fn get_if_none_match(app: &TestApp, path: &str, token: &str, tag: &str) -> TestResponse {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .header("If-None-Match", tag)
        .send()
        .await
        .expect("request");
    into_test_response(res).await
}

fn etag(res: &TestResponse) -> String {
    res.headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_string()
}

async fn get_returns_an_etag_and_304_while_if_none_match_names_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let path = format!("/v1/addresses/{}", address["id"].as_str().unwrap());
    for path in [
        path.clone(),
        format!("/v1/mail-services/{service}"),
        format!("/v1/organizations/{}", alice.org_id),
    ] {
        let first = app.get(&path, &alice.token).await;
        first.assert_status(200);
        let tag = etag(&first);
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
        let again = app.get(&path, &alice.token).await;
        assert_eq!(etag(&again), tag);
        let cached = get_if_none_match(&app, &path, &alice.token, &tag).await;
        assert_eq!(cached.status.as_u16(), 304, "{path}");
        assert_eq!(etag(&cached), tag);
        assert!(cached.text.is_empty());
        let other = get_if_none_match(&app, &path, &alice.token, "\"other\"").await;
        other.assert_status(200);
        assert_eq!(other.text, first.text);
    }
}

async fn patch_answers_the_new_etag_and_an_old_one_no_longer_matches(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let path = format!("/v1/addresses/{}", address["id"].as_str().unwrap());
    let before = etag(&app.get(&path, &alice.token).await);
    let patched = app
        .patch(
            &path,
            &alice.token,
            json!({ "display_name": "Comptabilité" }),
        )
        .await;
    patched.assert_status(200);
    let after = etag(&patched);
    assert_ne!(after, before);
    let read = app.get(&path, &alice.token).await;
    assert_eq!(read.body["display_name"], "Comptabilité");
    assert_eq!(etag(&read), after);
    let stale = get_if_none_match(&app, &path, &alice.token, &before).await;
    stale.assert_status(200);
    assert_eq!(stale.body["display_name"], "Comptabilité");
}
