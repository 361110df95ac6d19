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

on_both_backends!(
    one_account_redeeming_a_link_in_parallel_takes_one_use,
    reserved_names_cannot_be_created_on_the_free_domain_by_any_path,
    reserved_names_are_allowed_on_a_customer_domain_and_the_list_is_configurable,
    four_organizations_give_one_account_one_free_address,
    one_account_racing_for_free_addresses_in_two_organizations_gets_one,
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
        c.reserved_local_parts = vec!["billing".into()];
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
