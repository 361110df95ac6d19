//! Attacks on the limits that keep one account or one organization from taking more than its
//! share (issue 19): share-link uses raced by one account, reserved names on the shared free
//! domain, the free allowance gathered across organizations, reading a forward target's
//! consent token from the outbox, and mail-bombing an address with invitations or forwards.

use serde_json::json;

use crate::addresses::{create_for_me, premium, STRONG};
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestUser};
use crate::imports::import;
use crate::mail_services::create_service;
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    one_account_redeeming_a_link_in_parallel_takes_one_use,
    reserved_names_cannot_be_created_on_the_free_domain_by_any_path,
    reserved_names_are_allowed_on_a_customer_domain_and_the_list_is_configurable,
    four_organizations_give_one_account_one_free_address,
    one_account_racing_for_free_addresses_in_two_organizations_gets_one,
    an_owner_cannot_read_a_forward_confirmation_link_in_the_outbox,
    invitations_to_one_address_are_limited_across_organizations,
    a_hundred_parallel_forwards_stop_at_the_organization_limit,
    an_import_cannot_mail_bomb_a_redirect_target,
    a_delivered_forward_confirmation_keeps_no_link_in_the_outbox,
);

const RESERVED: [&str; 11] = [
    "postmaster",
    "abuse",
    "hostmaster",
    "webmaster",
    "admin",
    "administrator",
    "root",
    "security",
    "noc",
    "ssl-admin",
    "mailer-daemon",
];

async fn redeem(app: &TestApp, token: &str, link: &str) -> u16 {
    app.post("/v1/share-links/redeem", token, json!({ "token": link }))
        .await
        .status
        .as_u16()
}

async fn one_account_redeeming_a_link_in_parallel_takes_one_use(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "info").await;
    let id = address["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"], "max_uses": 5 }),
        )
        .await;
    let link = res.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mallory = app.user("mallory@example.com").await;
    // Six redemptions by one account at once: one access, one use.
    let (a, b, c, d, e, f) = tokio::join!(
        redeem(&app, &mallory.token, &link),
        redeem(&app, &mallory.token, &link),
        redeem(&app, &mallory.token, &link),
        redeem(&app, &mallory.token, &link),
        redeem(&app, &mallory.token, &link),
        redeem(&app, &mallory.token, &link),
    );
    let mut statuses = vec![a, b, c, d, e, f];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409]);
    let uses = "SELECT CAST(uses AS BIGINT) FROM share_links";
    assert_eq!(app.scalar_i64(uses).await, 1);
    let accesses = "SELECT COUNT(*) FROM accesses WHERE origin = 'share_link'";
    assert_eq!(app.scalar_i64(accesses).await, 1);
    // A later redemption by the same account takes no use either.
    assert_eq!(redeem(&app, &mallory.token, &link).await, 409);
    assert_eq!(app.scalar_i64(uses).await, 1);
    // The four uses left are there for four other accounts.
    for login in [
        "b@example.com",
        "c@example.com",
        "d@example.com",
        "e@example.com",
    ] {
        let user = app.user(login).await;
        assert_eq!(redeem(&app, &user.token, &link).await, 200);
    }
    let late = app.user("late@example.com").await;
    app.post(
        "/v1/share-links/redeem",
        &late.token,
        json!({ "token": link }),
    )
    .await
    .assert_problem(410, "share_link_used_up");
    assert_eq!(app.scalar_i64(uses).await, 5);
}

async fn create(
    app: &TestApp,
    user: &TestUser,
    service: &str,
    body: serde_json::Value,
) -> crate::helpers::TestResponse {
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &user.token,
        body,
    )
    .await
}

fn assert_reserved(res: &crate::helpers::TestResponse) {
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), ["local_part"], "{}", res.text);
    assert!(res.text.contains("reserved"), "{}", res.text);
}

async fn reserved_names_cannot_be_created_on_the_free_domain_by_any_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let free = create_service(&app, &alice, None, "free").await;
    let free = free["id"].as_str().unwrap().to_string();
    // Every name of the default list, in any case, for me.
    for local in RESERVED {
        let res = create(
            &app,
            &alice,
            &free,
            json!({ "local_part": local.to_uppercase(), "for": "me", "password": STRONG }),
        )
        .await;
        assert_reserved(&res);
    }
    // For several users, and for another user (nobody is invited).
    let res = create(
        &app,
        &alice,
        &free,
        json!({ "local_part": "abuse", "for": "several_users", "password": STRONG }),
    )
    .await;
    assert_reserved(&res);
    let res = create(
        &app,
        &alice,
        &free,
        json!({ "local_part": "postmaster", "for": "other_user",
                "invitee": { "email": "mallory@isp.example" } }),
    )
    .await;
    assert_reserved(&res);
    // The CSV import reports the row and, atomic, writes nothing.
    let res = import(
        &app,
        &alice,
        &free,
        "",
        "local_part,password\nhostmaster,violet umbrella marching north\n",
    )
    .await;
    let report = res.body.clone();
    assert_eq!(report["rows"][0]["outcome"], "invalid", "{}", res.text);
    assert_eq!(report["rows"][0]["errors"][0]["field"], "local_part");
    assert_eq!(report["summary"]["created"], 0);
    // An alias of the free address on the free domain.
    let mine = create_for_me(&app, &alice, &free, "alice.munster").await;
    let id = mine["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/addresses/{id}/aliases"),
            &alice.token,
            json!({ "local_part": "ssl-admin" }),
        )
        .await;
    assert_reserved(&res);
    let res = app
        .post(
            &format!("/v1/addresses/{id}/aliases"),
            &alice.token,
            json!({ "local_part": "webmaster", "domain": "free.example" }),
        )
        .await;
    assert_reserved(&res);
    // Nothing of it exists.
    let held = "SELECT COUNT(*) FROM addresses WHERE domain = 'free.example'";
    assert_eq!(app.scalar_i64(held).await, 1);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM aliases").await, 0);
}

async fn reserved_names_are_allowed_on_a_customer_domain_and_the_list_is_configurable(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    // The customer owns its domain's role addresses: every path accepts them.
    for local in ["postmaster", "abuse", "admin"] {
        create_for_me(&app, &alice, &service, local).await;
    }
    let res = create(
        &app,
        &alice,
        &service,
        json!({ "local_part": "security", "for": "several_users", "password": STRONG }),
    )
    .await;
    res.assert_status(201);
    let res = import(
        &app,
        &alice,
        &service,
        "",
        "local_part,password\nhostmaster,violet umbrella marching north\n",
    )
    .await;
    assert_eq!(res.assert_status(201)["summary"]["created"], 1);
    let list = app
        .get(
            &format!("/v1/mail-services/{service}/addresses?prefix=admin"),
            &alice.token,
        )
        .await;
    let id = list.assert_status(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/addresses/{id}/aliases"),
        &alice.token,
        json!({ "local_part": "webmaster" }),
    )
    .await
    .assert_status(201);

    // A configured list replaces the default one.
    let app = spawn_app_with(backend, |c| {
        c.reserved_local_parts = vec!["billing".into(), "no-reply".into()];
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let free = create_service(&app, &alice, None, "free").await;
    let free = free["id"].as_str().unwrap().to_string();
    let res = create(
        &app,
        &alice,
        &free,
        json!({ "local_part": "Billing", "for": "me", "password": STRONG }),
    )
    .await;
    assert_reserved(&res);
    create_for_me(&app, &alice, &free, "postmaster").await;
    // The generic no-reply address, when its name is reserved.
    let res = app
        .post(
            &format!("/v1/mail-services/{free}/addresses/generic"),
            &alice.token,
            json!({ "type": "no_reply" }),
        )
        .await;
    assert_reserved(&res);
}

async fn new_organization(app: &TestApp, user: &TestUser, name: &str) -> String {
    let res = app
        .post("/v1/organizations", &user.token, json!({ "name": name }))
        .await;
    res.assert_status(201)["id"].as_str().unwrap().to_string()
}

async fn free_service_in(app: &TestApp, user: &TestUser, org: &str) -> String {
    let res = app
        .post(
            &format!("/v1/organizations/{org}/mail-services"),
            &user.token,
            json!({ "pack": "free" }),
        )
        .await;
    res.assert_status(201)["id"].as_str().unwrap().to_string()
}

async fn four_organizations_give_one_account_one_free_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let mallory = app.user("mallory@example.com").await;
    let mut services = vec![free_service_in(&app, &mallory, &mallory.org_id.to_string()).await];
    for name in ["Two", "Three", "Four"] {
        let org = new_organization(&app, &mallory, name).await;
        services.push(free_service_in(&app, &mallory, &org).await);
    }
    create_for_me(&app, &mallory, &services[0], "mallory.one").await;
    for (n, service) in services.iter().enumerate().skip(1) {
        // Every way of creating is refused: for me, for several users, for another user,
        // and an import.
        let local = format!("mallory.{n}");
        let res = create(
            &app,
            &mallory,
            service,
            json!({ "local_part": local, "for": "me", "password": STRONG }),
        )
        .await;
        res.assert_problem(409, "address_limit_reached");
        assert!(
            res.text.contains("per account") || res.text.contains("each account"),
            "{}",
            res.text
        );
        create(
            &app,
            &mallory,
            service,
            json!({ "local_part": local, "for": "several_users", "password": STRONG }),
        )
        .await
        .assert_problem(409, "address_limit_reached");
        create(
            &app,
            &mallory,
            service,
            json!({ "local_part": local, "for": "other_user",
                    "invitee": { "email": "puppet@isp.example" } }),
        )
        .await
        .assert_problem(409, "address_limit_reached");
        let res = import(
            &app,
            &mallory,
            service,
            "",
            &format!("local_part,password\n{local},violet umbrella marching north\n"),
        )
        .await;
        assert_eq!(res.body["summary"]["created"], 0, "{}", res.text);
    }
    let held = "SELECT COUNT(*) FROM addresses WHERE domain = 'free.example'";
    assert_eq!(app.scalar_i64(held).await, 1);
    // Deleting the free address gives the allowance back, in any organization.
    let list = app
        .get(
            &format!("/v1/mail-services/{}/addresses", services[0]),
            &mallory.token,
        )
        .await;
    let id = list.assert_status(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fresh = app.reauth(&mallory).await;
    app.delete(
        &format!("/v1/addresses/{id}?confirm=mallory.one@free.example"),
        &fresh,
    )
    .await
    .assert_status(204);
    create_for_me(&app, &mallory, &services[3], "mallory.four").await;
    assert_eq!(app.scalar_i64(held).await, 1);
}

async fn one_account_racing_for_free_addresses_in_two_organizations_gets_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let mallory = app.user("mallory@example.com").await;
    let first = free_service_in(&app, &mallory, &mallory.org_id.to_string()).await;
    let org = new_organization(&app, &mallory, "Second").await;
    let second = free_service_in(&app, &mallory, &org).await;
    let body = |local: &str| json!({ "local_part": local, "for": "me", "password": STRONG });
    let (a, b, c, d) = tokio::join!(
        create(&app, &mallory, &first, body("m.a")),
        create(&app, &mallory, &second, body("m.b")),
        create(&app, &mallory, &first, body("m.c")),
        create(&app, &mallory, &second, body("m.d")),
    );
    let mut statuses: Vec<u16> = [a, b, c, d].iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409]);
    let held = "SELECT COUNT(*) FROM addresses WHERE domain = 'free.example'";
    assert_eq!(app.scalar_i64(held).await, 1);
}

async fn an_owner_cannot_read_a_forward_confirmation_link_in_the_outbox(backend: Backend) {
    // No relay: the message waits in the outbox, where the owner reads it.
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap();
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": "victim@isp.example", "keep_copy": true }),
    )
    .await
    .assert_status(201);
    let outbox = app
        .get(
            &format!("/v1/organizations/{}/outbox", alice.org_id),
            &alice.token,
        )
        .await;
    let outbox = outbox.assert_status(200).clone();
    let message = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["recipient"] == "victim@isp.example")
        .unwrap()
        .clone();
    let body = message["body"].as_str().unwrap();
    assert!(!body.contains("token="), "{body}");
    assert!(!body.contains("/forwards/confirm"), "{body}");
    assert!(body.contains("withheld"), "{body}");
    assert!(!outbox.to_string().contains("token="), "{outbox}");
    // The e-mail itself still carries the link, for the target alone.
    let kept = "SELECT COUNT(*) FROM outbox WHERE recipient = 'victim@isp.example' AND body LIKE '%/forwards/confirm?token=%'";
    assert_eq!(app.scalar_i64(kept).await, 1);
    // Nothing the owner can read confirms it.
    let confirmed = "SELECT COUNT(*) FROM forwards WHERE confirmed_at IS NOT NULL";
    assert_eq!(app.scalar_i64(confirmed).await, 0);
}

async fn invitations_to_one_address_are_limited_across_organizations(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let shared = create(
        &app,
        &alice,
        &service,
        json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
    )
    .await;
    let shared = shared.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/addresses/{shared}/invitations");
    let invite = || {
        app.post(
            &path,
            &alice.token,
            json!({ "invitee": { "email": "victim@isp.example" }, "permissions": [] }),
        )
    };
    // Thirty identical invitations: five go out, the others are 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let res = invite().await;
        if res.status.as_u16() == 429 {
            res.assert_problem(429, "too_many_requests");
            let retry: u64 = res.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=3660).contains(&retry), "{retry}");
            assert!(res.text.contains("victim@isp.example"), "{}", res.text);
        }
        statuses.push(res.status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 25);
    let mails = "SELECT COUNT(*) FROM outbox WHERE recipient = 'victim@isp.example'";
    assert_eq!(app.scalar_i64(mails).await, 5);
    let rows = "SELECT COUNT(*) FROM invitations WHERE invitee_email = 'victim@isp.example'";
    assert_eq!(app.scalar_i64(rows).await, 5);
    // Creating an address for the victim, inviting the victim to join, or another
    // organization's forward: the same limit, whoever sends.
    create(
        &app,
        &alice,
        &service,
        json!({ "local_part": "victim", "for": "other_user",
                "invitee": { "email": "victim@isp.example" } }),
    )
    .await
    .assert_problem(429, "too_many_requests");
    app.post(
        &format!("/v1/organizations/{}/members", alice.org_id),
        &alice.token,
        json!({ "login": "victim@isp.example", "role": "user" }),
    )
    .await
    .assert_problem(429, "too_many_requests");
    let bob = app.user("bob@example.com").await;
    let bobs = create_service(&app, &bob, Some("bob.example"), "premium").await;
    let bobs = bobs["id"].as_str().unwrap().to_string();
    let address = create_for_me(&app, &bob, &bobs, "bob").await;
    app.post(
        &format!("/v1/addresses/{}/forwards", address["id"].as_str().unwrap()),
        &bob.token,
        json!({ "target": "victim@isp.example", "keep_copy": true }),
    )
    .await
    .assert_problem(429, "too_many_requests");
    assert_eq!(app.scalar_i64(mails).await, 5);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM addresses WHERE local_part = 'victim'")
            .await,
        0
    );
    // Other addresses are not affected.
    app.post(
        &format!("/v1/addresses/{shared}/invitations"),
        &alice.token,
        json!({ "invitee": { "email": "friend@isp.example" }, "permissions": [] }),
    )
    .await
    .assert_status(201);
}

async fn a_hundred_parallel_forwards_stop_at_the_organization_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap().to_string();
    let requests = (0..100).map(|n| {
        let (app, token, id) = (&app, alice.token.clone(), id.clone());
        async move {
            app.post(
                &format!("/v1/addresses/{id}/forwards"),
                &token,
                json!({ "target": format!("target{n}@isp.example"), "keep_copy": true }),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let created = answers.iter().filter(|r| r.status.as_u16() == 201).count();
    let throttled = answers.iter().filter(|r| r.status.as_u16() == 429).count();
    // Failures other than the limit may only be the database asking for a retry.
    let other: Vec<_> = answers
        .iter()
        .filter(|r| ![201, 429, 503].contains(&r.status.as_u16()))
        .map(|r| r.text.clone())
        .collect();
    assert!(other.is_empty(), "{other:?}");
    let busy = 100 - created - throttled;
    // Never more than the organization's 50 per hour; exactly 50 unless the pool was busy.
    assert!(created <= 50, "created {created}");
    if busy == 0 {
        assert_eq!(created, 50, "created {created}, throttled {throttled}");
    }
    let forwards = app.scalar_i64("SELECT COUNT(*) FROM forwards").await;
    assert_eq!(forwards, created as i64);
    let mails = "SELECT COUNT(*) FROM outbox WHERE recipient LIKE 'target%'";
    assert_eq!(app.scalar_i64(mails).await, created as i64);
    // Once the burst is over, the 51st is refused however it comes.
    for n in 100..(100 + 50 - created) {
        app.post(
            &format!("/v1/addresses/{id}/forwards"),
            &alice.token,
            json!({ "target": format!("target{n}@isp.example"), "keep_copy": true }),
        )
        .await
        .assert_status(201);
    }
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": "one.more@isp.example", "keep_copy": true }),
    )
    .await
    .assert_problem(429, "too_many_requests");
}

async fn an_import_cannot_mail_bomb_a_redirect_target(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.outreach.per_recipient = 2).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let mut csv = String::from("local_part,password,redirect_to\n");
    for n in 0..3 {
        csv.push_str(&format!(
            "bomb{n},violet umbrella marching north,victim@isp.example\n"
        ));
    }
    let res = import(&app, &alice, &service, "", &csv).await;
    res.assert_problem(429, "too_many_requests");
    assert!(res.headers.contains_key("retry-after"));
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 0);
    let mails = "SELECT COUNT(*) FROM outbox WHERE recipient = 'victim@isp.example'";
    assert_eq!(app.scalar_i64(mails).await, 0);
    // Within the configured limit, the import goes through.
    let csv = "local_part,password,redirect_to\nbomb0,violet umbrella marching north,victim@isp.example\nbomb1,violet umbrella marching north,victim@isp.example\n";
    let res = import(&app, &alice, &service, "", csv).await;
    assert_eq!(
        res.assert_status(201)["summary"]["created"],
        2,
        "{}",
        res.text
    );
    let mails = "SELECT COUNT(*) FROM outbox WHERE recipient = 'victim@isp.example'";
    assert_eq!(app.scalar_i64(mails).await, 2);
}

async fn a_delivered_forward_confirmation_keeps_no_link_in_the_outbox(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap();
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": "julie@home.example", "keep_copy": true }),
    )
    .await
    .assert_status(201);
    // The target got the link.
    let token = crate::helpers::latest_token(&smtp, "julie@home.example", "forwards/confirm").await;
    assert_eq!(token.len(), 43);
    let sent = "SELECT COUNT(*) FROM outbox WHERE recipient = 'julie@home.example' AND sent_at IS NOT NULL";
    for _ in 0..200 {
        if app.scalar_i64(sent).await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.scalar_i64(sent).await, 1);
    // Delivered: the database keeps no link, and the owner never saw one.
    let kept = "SELECT COUNT(*) FROM outbox WHERE body LIKE '%token=%' AND recipient = 'julie@home.example'";
    assert_eq!(app.scalar_i64(kept).await, 0);
    let outbox = app
        .get(
            &format!("/v1/organizations/{}/outbox", alice.org_id),
            &alice.token,
        )
        .await;
    assert!(!outbox.text.contains(&token));
    assert!(!outbox.text.contains("token="), "{}", outbox.text);
}
