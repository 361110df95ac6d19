//! Mail services, packs, domains, device settings and autoconfig.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp, TestUser};
use crate::on_both_backends;

on_both_backends!(
    create_mail_service_returns_201_with_the_pack_limits,
    free_services_share_the_free_domain_and_customer_domains_are_unique,
    domains_are_validated_lower_cased_and_converted_to_punycode,
    only_owners_and_admins_create_change_or_delete,
    list_mail_services_shows_every_visible_service_paginated,
    pack_change_is_refused_when_the_service_does_not_fit,
    delete_needs_a_recent_password_proof_and_the_confirmation,
    domains_are_linked_and_unlinked_but_not_the_main_one,
    server_settings_name_the_provider_host_with_reasons,
    autoconfig_answers_for_hosted_domains_only,
    another_organization_gets_404_on_every_mail_service_endpoint,
    dns_records_are_listed_and_checked_against_a_real_dns_server,
    unlinking_a_domain_is_refused_while_aliases_use_it,
    a_stranger_gets_404_on_dangerous_operations_whatever_the_age_of_their_proof,
    moving_to_a_pack_with_fewer_forwards_is_refused_while_an_address_has_more,
    deleting_a_service_removes_its_addresses_accesses_invitations_and_share_links,
    linking_and_unlinking_a_domain_is_audited,
    changing_the_default_permissions_is_audited,
);

pub async fn create_service(
    app: &TestApp,
    user: &TestUser,
    domain: Option<&str>,
    pack: &str,
) -> Value {
    let mut body = json!({ "pack": pack });
    if let Some(d) = domain {
        body["domain"] = json!(d);
    }
    let res = app
        .post(
            &format!("/v1/organizations/{}/mail-services", user.org_id),
            &user.token,
            body,
        )
        .await;
    res.assert_status(201).clone()
}

async fn create_mail_service_returns_201_with_the_pack_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("entreprise-familiale.xyz"), "premium").await;
    assert_eq!(service["domain"], "entreprise-familiale.xyz");
    assert_eq!(service["pack"], "premium");
    assert_eq!(service["limits"]["recipients_per_message"], 100);
    assert_eq!(service["limits"]["messages_per_24h"], 1440);
    assert!(service["limits"]["max_addresses"].is_null());
    assert_eq!(service["limits"]["catchall"], true);
    assert!(service["limits"]["storage_gb"].is_null());
    assert_eq!(service["limits"]["address_creations_per_24h"], 50);
    assert_eq!(service["address_count"], 0);
    let starter = create_service(&app, &alice, Some("starter.example"), "starter").await;
    assert_eq!(starter["limits"]["max_addresses"], 1);
    assert_eq!(starter["limits"]["storage_gb"], 20);
    let free = create_service(&app, &alice, None, "free").await;
    assert_eq!(free["domain"], "free.example");
    assert_eq!(free["limits"]["recipients_per_message"], 10);
    assert_eq!(free["limits"]["addresses_per_account"], 1);
    // The domain row carries a real 2048-bit DKIM key, its selector named by date.
    let key: (String, String) = {
        let d = postier::repo::mail_services::find_domain(app.db(), "entreprise-familiale.xyz")
            .await
            .unwrap()
            .unwrap();
        (d.dkim_selector, d.dkim_private_key)
    };
    assert!(key.0.starts_with("postier-20"));
    assert!(key.1.contains("BEGIN PRIVATE KEY"));
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    assert_eq!(
        events.assert_status(200)["items"][0]["action"],
        "mail_service.created"
    );
}

async fn free_services_share_the_free_domain_and_customer_domains_are_unique(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    create_service(&app, &alice, None, "free").await;
    create_service(&app, &bob, Some("free.example"), "free").await;
    create_service(&app, &alice, Some("famille.example"), "starter").await;
    let res = app
        .post(
            &format!("/v1/organizations/{}/mail-services", bob.org_id),
            &bob.token,
            json!({ "domain": "FAMILLE.example.", "pack": "premium" }),
        )
        .await;
    res.assert_problem(409, "domain_already_used");
    let res = app
        .post(
            &format!("/v1/organizations/{}/mail-services", bob.org_id),
            &bob.token,
            json!({ "domain": "free.example", "pack": "premium" }),
        )
        .await;
    res.assert_problem(409, "domain_already_used");
    let res = app
        .post(
            &format!("/v1/organizations/{}/mail-services", bob.org_id),
            &bob.token,
            json!({ "domain": "mine.example", "pack": "free" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["domain"]);
    // One free service per organization: a second one would double its members' allowance,
    // also when two requests race.
    let second = json!({ "pack": "free" });
    let path = format!("/v1/organizations/{}/mail-services", alice.org_id);
    app.post(&path, &alice.token, second.clone())
        .await
        .assert_problem(409, "free_service_exists");
    let carol = app.user("carol@example.com").await;
    let path = format!("/v1/organizations/{}/mail-services", carol.org_id);
    let (a, b) = tokio::join!(
        app.post(&path, &carol.token, second.clone()),
        app.post(&path, &carol.token, second.clone())
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM mail_services").await,
        4
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM domains").await, 1);
}

async fn domains_are_validated_lower_cased_and_converted_to_punycode(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("Bücher.Example"), "premium").await;
    assert_eq!(service["domain"], "xn--bcher-kva.example");
    for bad in [
        "not a domain",
        "localhost",
        "-bad.example",
        "a..example",
        "x_y.example",
    ] {
        let res = app
            .post(
                &format!("/v1/organizations/{}/mail-services", alice.org_id),
                &alice.token,
                json!({ "domain": bad, "pack": "premium" }),
            )
            .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["domain"], "{bad}");
    }
    app.post(
        &format!("/v1/organizations/{}/mail-services", alice.org_id),
        &alice.token,
        json!({ "pack": "premium" }),
    )
    .await
    .assert_problem(422, "validation_failed");
}

async fn only_owners_and_admins_create_change_or_delete(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let carol = app.user("carol@example.com").await;
    app.add_member_to(alice.org_id, &alice, &carol, "user")
        .await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    // Carol, a plain member, sees the service …
    app.get(&format!("/v1/mail-services/{id}"), &carol.token)
        .await
        .assert_status(200);
    // … and may change nothing.
    app.post(
        &format!("/v1/organizations/{}/mail-services", alice.org_id),
        &carol.token,
        json!({ "domain": "other.example", "pack": "premium" }),
    )
    .await
    .assert_problem(403, "forbidden");
    app.patch(
        &format!("/v1/mail-services/{id}"),
        &carol.token,
        json!({ "pack": "starter" }),
    )
    .await
    .assert_problem(403, "forbidden");
    let fresh = app
        .reauth(&TestUser {
            token: carol.token.clone(),
            ..carol.clone()
        })
        .await;
    app.delete(
        &format!("/v1/mail-services/{id}?confirm=famille.example"),
        &fresh,
    )
    .await
    .assert_problem(403, "forbidden");
    // An admin may.
    app.patch(
        &format!(
            "/v1/organizations/{}/members/{}",
            alice.org_id, carol.account_id
        ),
        &alice.token,
        json!({ "role": "admin" }),
    )
    .await
    .assert_status(200);
    let res = app
        .patch(
            &format!("/v1/mail-services/{id}"),
            &carol.token,
            json!({ "default_permissions": ["send_email", "change_password"] }),
        )
        .await;
    assert_eq!(
        res.assert_status(200)["default_permissions"],
        json!(["change_password", "send_email"])
    );
    app.patch(
        &format!("/v1/mail-services/{id}"),
        &carol.token,
        json!({ "default_permissions": ["fly"] }),
    )
    .await
    .assert_problem(422, "validation_failed");
}

async fn list_mail_services_shows_every_visible_service_paginated(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    for i in 0..3 {
        create_service(&app, &alice, Some(&format!("d{i}.example")), "premium").await;
    }
    create_service(&app, &bob, Some("bob.example"), "premium").await;
    let page = app.get("/v1/mail-services?limit=2", &alice.token).await;
    let page = page.assert_status(200).clone();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = app
        .get(
            &format!(
                "/v1/mail-services?limit=2&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            &alice.token,
        )
        .await;
    let next = next.assert_status(200);
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert!(next["next_cursor"].is_null());
    let org_list = app
        .get(
            &format!("/v1/organizations/{}/mail-services", alice.org_id),
            &alice.token,
        )
        .await;
    assert_eq!(
        org_list.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let bobs = app.get("/v1/mail-services", &bob.token).await;
    let bobs = bobs.assert_status(200);
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);
    assert_eq!(bobs["items"][0]["domain"], "bob.example");
}

async fn pack_change_is_refused_when_the_service_does_not_fit(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    let res = app
        .patch(
            &format!("/v1/mail-services/{id}"),
            &alice.token,
            json!({ "pack": "free" }),
        )
        .await;
    res.assert_problem(409, "pack_does_not_fit");
    let res = app
        .patch(
            &format!("/v1/mail-services/{id}"),
            &alice.token,
            json!({ "pack": "starter" }),
        )
        .await;
    assert_eq!(res.assert_status(200)["pack"], "starter");
    let res = app
        .patch(
            &format!("/v1/mail-services/{id}"),
            &alice.token,
            json!({ "pack": "premium" }),
        )
        .await;
    assert_eq!(res.assert_status(200)["limits"]["messages_per_24h"], 1440);
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    assert_eq!(
        events.assert_status(200)["items"][0]["action"],
        "mail_service.pack_changed"
    );
}

async fn delete_needs_a_recent_password_proof_and_the_confirmation(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    // The login's proof is fresh: step-up is only needed once the window has passed.
    app.clock.advance(std::time::Duration::from_secs(601));
    app.delete(
        &format!("/v1/mail-services/{id}?confirm=famille.example"),
        &alice.token,
    )
    .await
    .assert_problem(403, "reauthentication_required");
    let fresh = app.reauth(&alice).await;
    app.delete(&format!("/v1/mail-services/{id}"), &fresh)
        .await
        .assert_problem(422, "confirmation_required");
    app.delete(
        &format!("/v1/mail-services/{id}?confirm=other.example"),
        &fresh,
    )
    .await
    .assert_problem(422, "confirmation_required");
    app.delete(
        &format!("/v1/mail-services/{id}?confirm=Famille.Example"),
        &fresh,
    )
    .await
    .assert_status(204);
    app.get(&format!("/v1/mail-services/{id}"), &fresh)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM domains").await, 0);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'mail_service.deleted'")
            .await,
        1
    );
}

async fn domains_are_linked_and_unlinked_but_not_the_main_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/mail-services/{id}/domains"),
            &alice.token,
            json!({ "domain": "Famille.ORG" }),
        )
        .await;
    assert_eq!(res.assert_status(201)["name"], "famille.org");
    let bobs = create_service(&app, &bob, Some("bob.example"), "premium").await;
    app.post(
        &format!("/v1/mail-services/{}/domains", bobs["id"].as_str().unwrap()),
        &bob.token,
        json!({ "domain": "famille.org" }),
    )
    .await
    .assert_problem(409, "domain_already_used");
    let list = app
        .get(&format!("/v1/mail-services/{id}/domains"), &alice.token)
        .await;
    let list = &list.assert_status(200)["items"];
    assert_eq!(list[0]["name"], "famille.example");
    assert_eq!(list[0]["is_main"], true);
    assert_eq!(list[1]["name"], "famille.org");
    assert_eq!(list[1]["is_main"], false);
    let fresh = app.reauth(&alice).await;
    app.delete(
        &format!("/v1/mail-services/{id}/domains/famille.example?confirm=famille.example"),
        &fresh,
    )
    .await
    .assert_problem(409, "domain_is_main");
    app.delete(
        &format!("/v1/mail-services/{id}/domains/famille.org"),
        &fresh,
    )
    .await
    .assert_problem(422, "confirmation_required");
    app.delete(
        &format!("/v1/mail-services/{id}/domains/famille.org?confirm=famille.org"),
        &fresh,
    )
    .await
    .assert_status(204);
    app.delete(
        &format!("/v1/mail-services/{id}/domains/famille.org?confirm=famille.org"),
        &fresh,
    )
    .await
    .assert_problem(404, "not_found");
    let free = create_service(&app, &alice, None, "free").await;
    app.post(
        &format!("/v1/mail-services/{}/domains", free["id"].as_str().unwrap()),
        &alice.token,
        json!({ "domain": "mine.example" }),
    )
    .await
    .assert_problem(409, "pack_does_not_fit");
}

async fn server_settings_name_the_provider_host_with_reasons(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let res = app
        .get(
            &format!(
                "/v1/mail-services/{}/server-settings",
                service["id"].as_str().unwrap()
            ),
            &alice.token,
        )
        .await;
    let body = res.assert_status(200);
    assert_eq!(
        body["incoming"][0],
        json!({"protocol":"imap","host":"mail.example","port":993,"security":"ssl","authentication_required":true,"recommended":true})
    );
    assert_eq!(body["incoming"][1]["port"], 995);
    assert_eq!(body["outgoing"][0]["port"], 465);
    assert_eq!(body["outgoing"][1]["security"], "starttls");
    let notes = body["notes"].to_string();
    assert!(notes.contains("never an IP address"));
    assert!(notes.contains("mail.famille.example"));
    assert!(notes.contains("certificate"));
}

async fn autoconfig_answers_for_hosted_domains_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    create_service(&app, &alice, Some("famille.example"), "premium").await;
    for path in [
        "/mail/config-v1.1.xml?emailaddress=julie%40famille.example",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=julie%40famille.example",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml"));
        let xml = res.text().await.unwrap();
        assert!(xml.contains("<hostname>mail.example</hostname>"));
        assert!(
            xml.contains("<port>993</port>") && xml.contains("<socketType>STARTTLS</socketType>")
        );
        assert!(xml.contains("<domain>famille.example</domain>"));
    }
    let res = app
        .client
        .get(app.url("/mail/config-v1.1.xml?emailaddress=someone%40elsewhere.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    // By host name, as Thunderbird asks autoconfig.<domain>.
    let res = app
        .client
        .get(app.url("/mail/config-v1.1.xml"))
        .header("host", "autoconfig.famille.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

async fn another_organization_gets_404_on_every_mail_service_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    let t = &mallory.token;
    let fresh = app.reauth(&mallory).await;
    app.get(
        &format!("/v1/organizations/{}/mail-services", alice.org_id),
        t,
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        &format!("/v1/organizations/{}/mail-services", alice.org_id),
        t,
        json!({ "domain": "x.example", "pack": "premium" }),
    )
    .await
    .assert_problem(404, "not_found");
    app.get(&format!("/v1/mail-services/{id}"), t)
        .await
        .assert_problem(404, "not_found");
    app.patch(
        &format!("/v1/mail-services/{id}"),
        t,
        json!({ "pack": "starter" }),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(
        &format!("/v1/mail-services/{id}?confirm=famille.example"),
        &fresh,
    )
    .await
    .assert_problem(404, "not_found");
    app.get(&format!("/v1/mail-services/{id}/domains"), t)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/v1/mail-services/{id}/domains"),
        t,
        json!({ "domain": "y.example" }),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(
        &format!("/v1/mail-services/{id}/domains/famille.example?confirm=famille.example"),
        &fresh,
    )
    .await
    .assert_problem(404, "not_found");
    app.get(&format!("/v1/mail-services/{id}/server-settings"), t)
        .await
        .assert_problem(404, "not_found");
    app.get(
        &format!("/v1/mail-services/{id}/domains/famille.example/dns"),
        t,
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        &format!("/v1/mail-services/{id}/domains/famille.example/dns/check"),
        t,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    let list = app.get("/v1/mail-services", t).await;
    assert_eq!(
        list.assert_status(200)["items"].as_array().unwrap().len(),
        0
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM mail_services").await,
        1
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM domains").await, 1);
}

async fn dns_records_are_listed_and_checked_against_a_real_dns_server(backend: Backend) {
    use crate::dns_server::{publish_all, TestDns, ZoneRecord};
    let dns = TestDns::empty("famille.example").await;
    let app = crate::helpers::spawn_app_with(backend, |c| {
        c.dns_server = Some(dns.addr);
        c.dns_timeout_secs = 3;
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    let res = app
        .get(
            &format!("/v1/mail-services/{id}/domains/famille.example/dns"),
            &alice.token,
        )
        .await;
    let listed = res.assert_status(200).clone();
    let records = listed["records"].as_array().unwrap();
    let by = |purpose: &str| {
        records
            .iter()
            .find(|r| r["purpose"] == purpose)
            .unwrap()
            .clone()
    };
    assert_eq!(by("mx")["value"], "mail.example");
    assert_eq!(by("spf")["value"], "v=spf1 include:_spf.mail.example -all");
    assert!(by("dkim")["name"]
        .as_str()
        .unwrap()
        .ends_with("._domainkey.famille.example"));
    assert!(by("dkim")["value"]
        .as_str()
        .unwrap()
        .starts_with("v=DKIM1; k=rsa; p=MII"));
    assert!(by("dmarc")["value"]
        .as_str()
        .unwrap()
        .starts_with("v=DMARC1"));
    assert_eq!(by("autoconfig")["value"], "mail.example");
    // Nothing published yet: every record is missing.
    let res = app
        .post(
            &format!("/v1/mail-services/{id}/domains/famille.example/dns/check"),
            &alice.token,
            json!({}),
        )
        .await;
    let checked = res.assert_status(200).clone();
    assert_eq!(checked["all_ok"], false);
    assert!(checked["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "missing"));
    // Publish exactly what is expected, but a softer SPF.
    let domain = postier::repo::mail_services::find_domain(app.db(), "famille.example")
        .await
        .unwrap()
        .unwrap();
    let expected = postier::dns::expected_records(
        "famille.example",
        "mail.example",
        &domain.dkim_selector,
        &domain.dkim_public_key,
    );
    let mut zone = publish_all(&expected);
    let spf = expected
        .iter()
        .find(|r| r.purpose == postier::dns::RecordPurpose::Spf)
        .unwrap();
    zone.retain(|z| z.name != spf.name || !z.rdata.contains("spf1"));
    zone.push(ZoneRecord::with_value(
        spf,
        "v=spf1 include:_spf.mail.example ~all",
    ));
    dns.publish(&zone).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{id}/domains/famille.example/dns/check"),
            &alice.token,
            json!({}),
        )
        .await;
    let checked = res.assert_status(200).clone();
    let status = |purpose: &str| {
        checked["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["purpose"] == purpose)
            .unwrap()
            .clone()
    };
    assert_eq!(status("mx")["status"], "ok");
    assert_eq!(status("dkim")["status"], "ok");
    assert_eq!(status("dmarc")["status"], "ok");
    assert_eq!(status("spf")["status"], "mismatch");
    assert_eq!(
        status("spf")["found"],
        json!(["v=spf1 include:_spf.mail.example ~all"])
    );
    assert_eq!(checked["all_ok"], false);
    // The free domain's DNS is the provider's.
    let free = create_service(&app, &alice, None, "free").await;
    app.get(
        &format!(
            "/v1/mail-services/{}/domains/free.example/dns",
            free["id"].as_str().unwrap()
        ),
        &alice.token,
    )
    .await
    .assert_problem(404, "not_found");
}

async fn unlinking_a_domain_is_refused_while_aliases_use_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    app.post(
        &format!("/v1/mail-services/{id}/domains"),
        &alice.token,
        json!({ "domain": "d2.example" }),
    )
    .await
    .assert_status(201);
    let address = app
        .post(
            &format!("/v1/mail-services/{id}/addresses"),
            &alice.token,
            json!({ "local_part": "ceo", "for": "me", "password": "violet umbrella marching north" }),
        )
        .await;
    let address = address.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/addresses/{address}/aliases"),
        &alice.token,
        json!({ "local_part": "boss", "domain": "d2.example" }),
    )
    .await
    .assert_status(201);
    // Otherwise the alias would keep receiving, and sending as, boss@d2.example for whoever
    // links the domain next.
    let fresh = app.reauth(&alice).await;
    let res = app
        .delete(
            &format!("/v1/mail-services/{id}/domains/d2.example?confirm=d2.example"),
            &fresh,
        )
        .await;
    res.assert_problem(409, "domain_has_addresses");
    assert!(res.body["detail"].as_str().unwrap().contains("1 aliases"));
    app.delete(
        &format!("/v1/addresses/{address}/aliases/boss@d2.example"),
        &fresh,
    )
    .await
    .assert_status(204);
    app.delete(
        &format!("/v1/mail-services/{id}/domains/d2.example?confirm=d2.example"),
        &fresh,
    )
    .await
    .assert_status(204);
}

async fn a_stranger_gets_404_on_dangerous_operations_whatever_the_age_of_their_proof(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    app.post(
        &format!("/v1/mail-services/{id}/domains"),
        &alice.token,
        json!({ "domain": "d2.example" }),
    )
    .await
    .assert_status(201);
    let address = app
        .post(
            &format!("/v1/mail-services/{id}/addresses"),
            &alice.token,
            json!({ "local_part": "papa", "for": "me", "password": crate::addresses::STRONG }),
        )
        .await
        .assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Mallory's proof is stale: a 403 reauthentication_required here would tell him that
    // these resources exist.
    app.clock.advance(std::time::Duration::from_secs(601));
    app.delete(
        &format!("/v1/mail-services/{id}?confirm=famille.example"),
        &mallory.token,
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(
        &format!("/v1/mail-services/{id}/domains/d2.example?confirm=d2.example"),
        &mallory.token,
    )
    .await
    .assert_problem(404, "not_found");
    app.delete(
        &format!("/v1/addresses/{address}?confirm=papa@famille.example"),
        &mallory.token,
    )
    .await
    .assert_problem(404, "not_found");
    // The owner with the same stale proof is asked for a fresh one.
    app.delete(
        &format!("/v1/addresses/{address}?confirm=papa@famille.example"),
        &alice.token,
    )
    .await
    .assert_problem(403, "reauthentication_required");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 1);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM domains").await, 2);
}

async fn moving_to_a_pack_with_fewer_forwards_is_refused_while_an_address_has_more(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    let address = crate::addresses::create_for_me(&app, &alice, id, "papa").await;
    let address = address["id"].as_str().unwrap();
    for n in 0..11 {
        app.post(
            &format!("/v1/addresses/{address}/forwards"),
            &alice.token,
            json!({ "target": format!("t{n}@home.example") }),
        )
        .await
        .assert_status(201);
    }
    let res = app
        .patch(
            &format!("/v1/mail-services/{id}"),
            &alice.token,
            json!({ "pack": "starter" }),
        )
        .await;
    res.assert_problem(409, "pack_does_not_fit");
    let detail = res.body["detail"].as_str().unwrap();
    assert!(detail.contains("11 targets"), "{detail}");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM mail_services WHERE pack = 'premium'")
            .await,
        1
    );
    let forward = app
        .get(&format!("/v1/addresses/{address}/forwards"), &alice.token)
        .await
        .assert_status(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete(
        &format!("/v1/addresses/{address}/forwards/{forward}"),
        &alice.token,
    )
    .await
    .assert_status(204);
    app.patch(
        &format!("/v1/mail-services/{id}"),
        &alice.token,
        json!({ "pack": "starter" }),
    )
    .await
    .assert_status(200);
}

async fn deleting_a_service_removes_its_addresses_accesses_invitations_and_share_links(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    app.add_member_to(alice.org_id, &alice, &bob, "user").await;
    app.add_member_to(carol.org_id, &carol, &bob, "user").await;
    let doomed = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let doomed = doomed["id"].as_str().unwrap().to_string();
    let doomed_addresses = populate_service(&app, &alice, &bob, &carol, &doomed).await;
    // Another organization's service, filled the same way, must come through untouched.
    let kept = create_service(&app, &carol, Some("carol.example"), "premium").await;
    let kept = kept["id"].as_str().unwrap().to_string();
    let kept_addresses = populate_service(&app, &carol, &bob, &alice, &kept).await;
    // A pending invitation by login to the doomed service, shown to its invitee.
    let dave = app.user("dave@example.com").await;
    app.add_member_to(alice.org_id, &alice, &dave, "user").await;
    app.post(
        &format!("/v1/addresses/{}/invitations", doomed_addresses[1]),
        &alice.token,
        json!({ "invitee": { "login": dave.login } }),
    )
    .await
    .assert_status(201);
    assert_eq!(
        app.get("/v1/me/invitations", &dave.token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let populated = [
        ("addresses", 2),
        // compta: alice; info: bob (invitation) and carol (share link).
        ("accesses", 3),
        // bob's (accepted), the e-mailed one, dave's.
        ("invitations", 3),
        ("share_links", 2),
        ("aliases", 1),
    ];
    assert_eq!(rows_for_addresses(&app, &doomed_addresses).await, populated);
    let kept_before = rows_for_addresses(&app, &kept_addresses).await;
    let fresh = app.reauth(&alice).await;
    app.delete(
        &format!("/v1/mail-services/{doomed}?confirm=famille.example"),
        &fresh,
    )
    .await
    .assert_status(204);
    assert_eq!(
        rows_for_addresses(&app, &doomed_addresses).await,
        [
            ("addresses", 0),
            ("accesses", 0),
            ("invitations", 0),
            ("share_links", 0),
            ("aliases", 0),
        ]
    );
    assert_eq!(rows_for_addresses(&app, &kept_addresses).await, kept_before);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM mail_services").await,
        1
    );
    // Nobody sees anything of it any more.
    for user in [&alice, &bob, &carol] {
        let mine = app.get("/v1/me/addresses", &user.token).await;
        let mine = mine.assert_status(200)["items"].as_array().unwrap().clone();
        assert!(
            mine.iter()
                .all(|a| !a["address"].as_str().unwrap().ends_with("@famille.example")),
            "{}: {mine:?}",
            user.login
        );
    }
    assert_eq!(
        app.get("/v1/me/invitations", &dave.token).await.body["items"],
        json!([])
    );
    let event = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    let event = &event.assert_status(200)["items"][0];
    assert_eq!(event["action"], "mail_service.deleted");
    assert_eq!(event["details"]["addresses_removed"], 2);
}

async fn linking_and_unlinking_a_domain_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    app.post(
        &format!("/v1/mail-services/{id}/domains"),
        &alice.token,
        json!({ "domain": "Famille.ORG" }),
    )
    .await
    .assert_status(201);
    let linked = org_events(&app, &alice).await[0].clone();
    assert_eq!(linked["action"], "domain.linked");
    assert_eq!(linked["target"], "famille.org");
    assert_eq!(linked["mail_service_id"], id);
    assert_eq!(linked["organization_id"], alice.org_id.to_string());
    assert_eq!(linked["actor_account_id"], alice.account_id.to_string());
    // Refusals record nothing: a taken domain, the main domain.
    app.post(
        &format!("/v1/mail-services/{id}/domains"),
        &alice.token,
        json!({ "domain": "famille.org" }),
    )
    .await
    .assert_problem(409, "domain_already_used");
    let fresh = app.reauth(&alice).await;
    app.delete(
        &format!("/v1/mail-services/{id}/domains/famille.example?confirm=famille.example"),
        &fresh,
    )
    .await
    .assert_problem(409, "domain_is_main");
    app.delete(
        &format!("/v1/mail-services/{id}/domains/famille.org?confirm=famille.org"),
        &fresh,
    )
    .await
    .assert_status(204);
    let events = org_events(&app, &alice).await;
    let unlinked = &events[0];
    assert_eq!(unlinked["action"], "domain.unlinked");
    assert_eq!(unlinked["target"], "famille.org");
    assert_eq!(unlinked["mail_service_id"], id);
    assert_eq!(unlinked["actor_account_id"], alice.account_id.to_string());
    // Between them, only the step-up (in the personal organization's log, as Alice's).
    assert_eq!(events[1]["action"], "session.reauthenticated");
    assert_eq!(events[2]["action"], "domain.linked");
    for action in ["domain.linked", "domain.unlinked"] {
        assert_eq!(
            app.scalar_i64(&format!(
                "SELECT COUNT(*) FROM events WHERE action = '{action}'"
            ))
            .await,
            1,
            "{action}"
        );
    }
}

async fn changing_the_default_permissions_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = create_service(&app, &alice, Some("famille.example"), "premium").await;
    let id = service["id"].as_str().unwrap();
    let res = app
        .patch(
            &format!("/v1/mail-services/{id}"),
            &alice.token,
            json!({ "default_permissions": ["send_email", "change_password"] }),
        )
        .await;
    res.assert_status(200);
    let changed = org_events(&app, &alice).await[0].clone();
    assert_eq!(
        changed["action"],
        "mail_service.default_permissions_changed"
    );
    assert_eq!(changed["target"], "famille.example");
    assert_eq!(changed["mail_service_id"], id);
    assert_eq!(changed["actor_account_id"], alice.account_id.to_string());
    assert_eq!(
        changed["details"]["default_permissions"],
        json!(["change_password", "send_email"])
    );
    // A refused change records nothing.
    app.patch(
        &format!("/v1/mail-services/{id}"),
        &alice.token,
        json!({ "default_permissions": ["fly"] }),
    )
    .await
    .assert_problem(422, "validation_failed");
    // Both changes in one request: one event each, the pack first.
    app.patch(
        &format!("/v1/mail-services/{id}"),
        &alice.token,
        json!({ "pack": "starter", "default_permissions": [] }),
    )
    .await
    .assert_status(200);
    let events = org_events(&app, &alice).await;
    assert_eq!(
        events[0]["action"],
        "mail_service.default_permissions_changed"
    );
    assert_eq!(events[0]["details"]["default_permissions"], json!([]));
    assert_eq!(events[1]["action"], "mail_service.pack_changed");
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM events WHERE action = 'mail_service.default_permissions_changed'"
        )
        .await,
        2
    );
}

/// Fills `service` with two addresses: one of `owner`'s with an alias, and a shared one that
/// `member` accepted an invitation to, `redeemer` redeemed a share link of, with a pending
/// e-mailed invitation and an unused share link. Answers the address ids.
async fn populate_service(
    app: &TestApp,
    owner: &TestUser,
    member: &TestUser,
    redeemer: &TestUser,
    service: &str,
) -> Vec<uuid::Uuid> {
    use crate::addresses::STRONG;
    let own = crate::addresses::create_for_me(app, owner, service, "compta").await;
    let own = own["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/addresses/{own}/aliases"),
        &owner.token,
        json!({ "local_part": "accounting" }),
    )
    .await
    .assert_status(201);
    let shared = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &owner.token,
            json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
        )
        .await;
    let shared = shared.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let invitation = app
        .post(
            &format!("/v1/addresses/{shared}/invitations"),
            &owner.token,
            json!({ "invitee": { "login": member.login }, "permissions": ["send_email"] }),
        )
        .await;
    let invitation = invitation.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/invitations/{invitation}/accept"),
        &member.token,
        json!({}),
    )
    .await
    .assert_status(200);
    let link = app
        .post(
            &format!("/v1/addresses/{shared}/share-links"),
            &owner.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let token = link.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/v1/share-links/redeem",
        &redeemer.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
    app.post(
        &format!("/v1/addresses/{shared}/share-links"),
        &owner.token,
        json!({ "permissions": [] }),
    )
    .await
    .assert_status(201);
    app.post(
        &format!("/v1/addresses/{shared}/invitations"),
        &owner.token,
        json!({ "invitee": { "email": "later@isp.example" } }),
    )
    .await
    .assert_status(201);
    vec![own.parse().unwrap(), shared.parse().unwrap()]
}

/// Rows of `entity` whose address is one of `addresses` (they outlive nothing: the foreign
/// keys are the only thing removing them).
async fn rows_for_addresses(app: &TestApp, addresses: &[uuid::Uuid]) -> [(&'static str, u64); 5] {
    use postier::entity::{access, address, alias, invitation, share_link};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let ids = addresses.to_vec();
    let db = app.db();
    [
        (
            "addresses",
            address::Entity::find()
                .filter(address::Column::Id.is_in(ids.clone()))
                .count(db)
                .await
                .unwrap(),
        ),
        (
            "accesses",
            access::Entity::find()
                .filter(access::Column::AddressId.is_in(ids.clone()))
                .count(db)
                .await
                .unwrap(),
        ),
        (
            "invitations",
            invitation::Entity::find()
                .filter(invitation::Column::AddressId.is_in(ids.clone()))
                .count(db)
                .await
                .unwrap(),
        ),
        (
            "share_links",
            share_link::Entity::find()
                .filter(share_link::Column::AddressId.is_in(ids.clone()))
                .count(db)
                .await
                .unwrap(),
        ),
        (
            "aliases",
            alias::Entity::find()
                .filter(alias::Column::AddressId.is_in(ids))
                .count(db)
                .await
                .unwrap(),
        ),
    ]
}

/// The organization's audit log, newest first (up to 200 events).
pub async fn org_events(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let res = app
        .get(
            &format!("/v1/organizations/{}/events?limit=200", user.org_id),
            &user.token,
        )
        .await;
    res.assert_status(200)["items"].as_array().unwrap().clone()
}
