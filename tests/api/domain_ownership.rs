//! Domains are proven before they count (`POSTIER_DOMAIN_OWNERSHIP=dns`): a linked domain is
//! `pending` until the live DNS check finds the ownership TXT record Postier chose for that
//! service and domain; until then the mail views route nothing for it and the policy service
//! does not accept it as a sender domain. The provider's own domains and the names under them
//! can never be claimed. The attacker claims a domain that is not theirs through the API.

use std::time::Duration;

use serde_json::{json, Value};

use crate::addresses::create_for_me;
use crate::dns_server::{TestDns, ZoneRecord};
use crate::helpers::{spawn_app_with, Backend, TestApp, TestUser};
use crate::mail_services::create_service;
use crate::on_both_backends;
use crate::policy::{postfix_request, Policy};

on_both_backends!(
    an_unproven_domain_routes_no_mail_and_is_no_sender_until_its_ownership_record_is_found,
    the_provider_domains_and_the_names_under_them_cannot_be_claimed,
    a_squatted_main_domain_goes_to_the_organization_that_proves_it_and_the_squatter_is_told,
    a_squatted_linked_domain_is_unlinked_with_its_addresses_when_the_owner_proves_it,
);

const BANK: &str = "bigbank.test";

async fn app_proving_with(backend: Backend, dns: &TestDns) -> TestApp {
    let addr = dns.addr;
    spawn_app_with(backend, move |config| {
        config.domain_ownership = postier::config::DomainOwnership::Dns;
        config.dns_server = Some(addr);
        config.dns_timeout_secs = 3;
        config.policy_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
}

async fn domains_of(app: &TestApp, user: &TestUser, service: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/v1/mail-services/{service}/domains"), &user.token)
        .await;
    res.assert_status(200)["items"].as_array().unwrap().clone()
}

async fn ownership_of(app: &TestApp, user: &TestUser, service: &str, domain: &str) -> Value {
    domains_of(app, user, service)
        .await
        .into_iter()
        .find(|d| d["name"] == domain)
        .unwrap_or_else(|| panic!("{domain} is not a domain of {service}"))["ownership"]
        .clone()
}

/// The ownership record the API asks `domain` to publish.
async fn ownership_record(app: &TestApp, user: &TestUser, service: &str, domain: &str) -> Value {
    let res = app
        .get(
            &format!("/v1/mail-services/{service}/domains/{domain}/dns"),
            &user.token,
        )
        .await;
    res.assert_status(200)["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["purpose"] == "ownership")
        .expect("an ownership record is listed")
        .clone()
}

async fn check(app: &TestApp, user: &TestUser, service: &str, domain: &str) -> Value {
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/domains/{domain}/dns/check"),
            &user.token,
            json!({}),
        )
        .await;
    res.assert_status(200).clone()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar_i64(sql).await
}

/// What the policy service answers at `RCPT` for `login` sending as `sender`.
async fn rcpt(app: &TestApp, login: &str, sender: &str) -> String {
    let mut client = Policy::to(app).await;
    client
        .ask(&postfix_request(
            "RCPT",
            login,
            sender,
            "someone@elsewhere.test",
            0,
            &format!("{}.0", uuid::Uuid::new_v4().simple()),
        ))
        .await
}

async fn an_unproven_domain_routes_no_mail_and_is_no_sender_until_its_ownership_record_is_found(
    backend: Backend,
) {
    let dns = TestDns::empty(BANK).await;
    let app = app_proving_with(backend, &dns).await;
    let mallory = app.user("mallory@example.com").await;
    let service = create_service(&app, &mallory, Some(BANK), "premium").await;
    let service = service["id"].as_str().unwrap().to_string();
    assert_eq!(
        ownership_of(&app, &mallory, &service, BANK).await,
        "pending"
    );
    // Addresses can be prepared while the claim is pending; nothing routes to them.
    create_for_me(&app, &mallory, &service, "ceo").await;
    let hosted = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE domain = '{BANK}'");
    assert_eq!(count(&app, &hosted("mail_domains")).await, 0);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM mail_mailboxes").await,
        0,
        "no mailbox on a pending domain"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM mail_passwords").await,
        0,
        "no login on a pending domain"
    );
    assert_eq!(
        rcpt(&app, "ceo@bigbank.test", "ceo@bigbank.test").await,
        "DUNNO",
        "the policy service does not know a login of a pending domain (Postfix refused its AUTH)"
    );

    // The check without the record, then with a record of another claim: still pending.
    let checked = check(&app, &mallory, &service, BANK).await;
    assert_eq!(checked["ownership"], "pending");
    let record = ownership_record(&app, &mallory, &service, BANK).await;
    let name = record["name"].as_str().unwrap().to_string();
    assert!(name.ends_with(&format!(".{BANK}")), "{name}");
    let value = record["value"].as_str().unwrap().to_string();
    dns.publish(&[ZoneRecord::txt(
        &name,
        "postier-ownership=0123456789abcdef0123456789abcdef",
    )])
    .await;
    let checked = check(&app, &mallory, &service, BANK).await;
    assert_eq!(checked["ownership"], "pending");
    let status = checked["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["purpose"] == "ownership")
        .unwrap()["status"]
        .clone();
    assert_eq!(status, "mismatch");
    assert_eq!(count(&app, &hosted("mail_domains")).await, 0);

    // The domain's real DNS holds the record: proven, and it counts.
    dns.publish(&[ZoneRecord::txt(&name, &value)]).await;
    let checked = check(&app, &mallory, &service, BANK).await;
    assert_eq!(checked["ownership"], "proven");
    assert_eq!(ownership_of(&app, &mallory, &service, BANK).await, "proven");
    assert_eq!(count(&app, &hosted("mail_domains")).await, 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mail_mailboxes").await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM events WHERE action = 'domain.proven' AND target = 'bigbank.test'"
        )
        .await,
        1
    );
    // A second check proves nothing again.
    check(&app, &mallory, &service, BANK).await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM events WHERE action = 'domain.proven'"
        )
        .await,
        1
    );

    // A second domain linked to the proven service is pending in its turn: an alias on it is
    // neither routed nor accepted as a sender by the policy service.
    app.post(
        &format!("/v1/mail-services/{service}/domains"),
        &mallory.token,
        json!({ "domain": "gmail.test" }),
    )
    .await
    .assert_status(201);
    assert_eq!(
        ownership_of(&app, &mallory, &service, "gmail.test").await,
        "pending"
    );
    let address = app
        .get(
            &format!("/v1/mail-services/{service}/addresses"),
            &mallory.token,
        )
        .await;
    let address_id = address.assert_status(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/addresses/{address_id}/aliases"),
        &mallory.token,
        json!({ "local_part": "support", "domain": "gmail.test" }),
    )
    .await
    .assert_status(201);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM mail_aliases WHERE source = 'support@gmail.test'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM mail_domains WHERE domain = 'gmail.test'"
        )
        .await,
        0
    );
    app.clock.advance(Duration::from_secs(10));
    let refused = rcpt(&app, "ceo@bigbank.test", "support@gmail.test").await;
    assert!(refused.starts_with("REJECT 5.7.1"), "{refused}");
    assert_eq!(
        rcpt(&app, "ceo@bigbank.test", "ceo@bigbank.test").await,
        "DUNNO",
        "the proven domain's own address sends"
    );
}

async fn the_provider_domains_and_the_names_under_them_cannot_be_claimed(backend: Backend) {
    let dns = TestDns::empty(BANK).await;
    let app = app_proving_with(backend, &dns).await;
    let mallory = app.user("mallory@example.com").await;
    for domain in [
        "mail.example",
        "imap.mail.example",
        "free.example",
        "team.free.example",
    ] {
        let res = app
            .post(
                &format!("/v1/organizations/{}/mail-services", mallory.org_id),
                &mallory.token,
                json!({ "pack": "premium", "domain": domain }),
            )
            .await;
        res.assert_problem(409, "domain_already_used");
    }
    let service = create_service(&app, &mallory, Some(BANK), "premium").await;
    let service = service["id"].as_str().unwrap();
    for domain in ["mail.example", "a.b.free.example"] {
        let res = app
            .post(
                &format!("/v1/mail-services/{service}/domains"),
                &mallory.token,
                json!({ "domain": domain }),
            )
            .await;
        res.assert_problem(409, "domain_already_used");
    }
    // A name that merely ends like one is someone else's domain.
    app.post(
        &format!("/v1/mail-services/{service}/domains"),
        &mallory.token,
        json!({ "domain": "notfree.example" }),
    )
    .await
    .assert_status(201);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM domains").await,
        2,
        "nothing else was stored"
    );
}

/// Bob, the domain's real owner, claims `BANK` with a new premium service.
async fn claim_service(
    app: &TestApp,
    user: &TestUser,
    domain: &str,
) -> crate::helpers::TestResponse {
    app.post(
        &format!("/v1/organizations/{}/mail-services", user.org_id),
        &user.token,
        json!({ "pack": "premium", "domain": domain }),
    )
    .await
}

/// Publishes the ownership record of `user`'s organization for `BANK`, as the detail of the
/// `domain_claim_pending` answer asks.
async fn publish_ownership(dns: &TestDns, user: &TestUser) {
    let token = postier::service::domain_claims::ownership_token(user.org_id, BANK);
    dns.publish(&[ZoneRecord::txt(
        &format!("_postier-ownership.{BANK}"),
        &format!("postier-ownership={token}"),
    )])
    .await;
}

async fn told(app: &TestApp, login: &str) -> i64 {
    count(
        app,
        &format!(
            "SELECT COUNT(*) FROM outbox WHERE recipient = '{login}' \
             AND subject = 'Your claim on {BANK} has ended'"
        ),
    )
    .await
}

async fn a_squatted_main_domain_goes_to_the_organization_that_proves_it_and_the_squatter_is_told(
    backend: Backend,
) {
    let dns = TestDns::empty(BANK).await;
    let app = app_proving_with(backend, &dns).await;
    let mallory = app.user("mallory@example.com").await;
    let bob = app.user("bob@example.com").await;
    let squat = create_service(&app, &mallory, Some(BANK), "premium").await;
    let squat = squat["id"].as_str().unwrap().to_string();
    create_for_me(&app, &mallory, &squat, "ceo").await;

    // The real owner is not locked out by the squatter: told how to prove ownership instead.
    let res = claim_service(&app, &bob, BANK).await;
    let problem = res.assert_problem(409, "domain_claim_pending").body.clone();
    let token = postier::service::domain_claims::ownership_token(bob.org_id, BANK);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("_postier-ownership.{BANK}")),
        "{detail}"
    );
    assert!(detail.contains(&token), "{detail}");
    assert!(
        !detail.contains("mallory"),
        "the squatter is not named: {detail}"
    );
    // Publishing the squatter's own record proves nothing for Bob.
    let theirs = ownership_record(&app, &mallory, &squat, BANK).await;
    dns.publish(&[ZoneRecord::txt(
        theirs["name"].as_str().unwrap(),
        theirs["value"].as_str().unwrap(),
    )])
    .await;
    claim_service(&app, &bob, BANK)
        .await
        .assert_problem(409, "domain_claim_pending");

    // Bob proves first: his claim wins at once, the squatter's service ends.
    publish_ownership(&dns, &bob).await;
    let res = claim_service(&app, &bob, BANK).await;
    let service = res.assert_status(201)["id"].as_str().unwrap().to_string();
    assert_eq!(ownership_of(&app, &bob, &service, BANK).await, "proven");
    app.get(&format!("/v1/mail-services/{squat}"), &mallory.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM addresses WHERE address = 'ceo@bigbank.test'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM mail_domains WHERE domain = '{BANK}'")
        )
        .await,
        1
    );
    assert_eq!(told(&app, "mallory@example.com").await, 1);
    assert_eq!(told(&app, "bob@example.com").await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM events WHERE action = 'domain.claim_ended'"
        )
        .await,
        1
    );
    // Now that it is proven, it is Bob's alone.
    claim_service(&app, &mallory, BANK)
        .await
        .assert_problem(409, "domain_already_used");
}

async fn a_squatted_linked_domain_is_unlinked_with_its_addresses_when_the_owner_proves_it(
    backend: Backend,
) {
    let dns = TestDns::empty(BANK).await;
    let app = app_proving_with(backend, &dns).await;
    let mallory = app.user("mallory@example.com").await;
    let bob = app.user("bob@example.com").await;
    let own = create_service(&app, &mallory, Some("mallory.test"), "premium").await;
    let own = own["id"].as_str().unwrap().to_string();
    create_for_me(&app, &mallory, &own, "me").await;
    app.post(
        &format!("/v1/mail-services/{own}/domains"),
        &mallory.token,
        json!({ "domain": BANK }),
    )
    .await
    .assert_status(201);
    let ceo = app
        .post(
            &format!("/v1/mail-services/{own}/addresses"),
            &mallory.token,
            json!({ "local_part": "ceo", "domain": BANK, "for": "me", "password": crate::addresses::STRONG }),
        )
        .await;
    let ceo_id = ceo.assert_status(201)["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/addresses/{ceo_id}/aliases"),
        &mallory.token,
        json!({ "local_part": "payments" }),
    )
    .await
    .assert_status(201);

    // Bob links it to a service of his own once he has published his record.
    let bobs = create_service(&app, &bob, Some("bob.test"), "premium").await;
    let bobs = bobs["id"].as_str().unwrap().to_string();
    let link = |token: String| {
        let app = &app;
        let bobs = bobs.clone();
        async move {
            app.post(
                &format!("/v1/mail-services/{bobs}/domains"),
                &token,
                json!({ "domain": BANK }),
            )
            .await
        }
    };
    link(bob.token.clone())
        .await
        .assert_problem(409, "domain_claim_pending");
    publish_ownership(&dns, &bob).await;
    let linked = link(bob.token.clone()).await;
    assert_eq!(linked.assert_status(201)["ownership"], "proven");

    // Mallory keeps her service and her own domain, without the squatted one.
    let domains: Vec<String> = domains_of(&app, &mallory, &own)
        .await
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(domains, ["mallory.test"]);
    app.get(&format!("/v1/addresses/{ceo_id}"), &mallory.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM aliases WHERE alias = 'payments@bigbank.test'"
        )
        .await,
        0
    );
    let service = app
        .get(&format!("/v1/mail-services/{own}"), &mallory.token)
        .await;
    assert_eq!(service.assert_status(200)["address_count"], 1);
    assert_eq!(told(&app, "mallory@example.com").await, 1);
}
