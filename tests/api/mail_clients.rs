//! Mail clients through the API (issue 14): device passwords (shown once, listed without the
//! secret, revoked one by one or all, owners and admins seeing everyone's), mailbox tokens
//! (scopes from the access, stored as a hash), Outlook autodiscover and Apple profiles. What
//! the daemons do with them is `mailstack.rs`; the views they read are in `mail_views.rs`.

use chrono::{Duration, Utc};
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::addresses::{create_for_me, premium, STRONG};
use crate::helpers::{spawn_app, Backend, TestApp, TestUser};
use crate::on_both_backends;

on_both_backends!(
    a_device_password_is_shown_once_and_listed_without_its_secret,
    device_password_requests_get_clear_422s,
    an_access_holds_at_most_twenty_device_passwords,
    users_see_and_revoke_their_own_device_passwords_owners_everyones,
    smtp_needs_send_email_and_credentials_need_an_access_of_ones_own,
    removing_the_access_removes_its_device_passwords_and_tokens,
    mailbox_tokens_carry_the_scopes_the_access_allows_stored_as_a_hash,
    mailbox_tokens_are_throttled_per_access,
    autodiscover_answers_every_local_part_of_a_hosted_domain_alike,
    an_apple_profile_sets_up_the_address_without_any_password,
    the_mail_views_offer_only_credentials_that_may_log_in_now,
);

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Alice owns a premium service with `info@famille.example` created for her.
async fn alice_with_address(app: &TestApp) -> (TestUser, String) {
    let alice = app.user("alice@example.com").await;
    let service = premium(app, &alice).await;
    let address = create_for_me(app, &alice, &service, "info").await;
    (alice, address["id"].as_str().unwrap().to_string())
}

/// Gives `user` an access to the address through a share link with `permissions`.
/// Gives `user` an access to `address` with `permissions`, through a share link.
pub async fn share(
    app: &TestApp,
    owner: &TestUser,
    address: &str,
    user: &TestUser,
    permissions: Value,
) {
    let link = app
        .post(
            &format!("/v1/addresses/{address}/share-links"),
            &owner.token,
            json!({ "permissions": permissions }),
        )
        .await;
    let token = link.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/v1/share-links/redeem",
        &user.token,
        json!({ "token": token }),
    )
    .await
    .assert_status(200);
}

async fn create_device(app: &TestApp, user: &TestUser, address: &str, body: Value) -> Value {
    let res = app
        .post(
            &format!("/v1/addresses/{address}/device-passwords"),
            &user.token,
            body,
        )
        .await;
    res.assert_status(201).clone()
}

async fn listed(app: &TestApp, user: &TestUser, address: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/v1/addresses/{address}/device-passwords"),
            &user.token,
        )
        .await;
    res.assert_status(200)["items"].as_array().unwrap().clone()
}

async fn a_device_password_is_shown_once_and_listed_without_its_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let expires = (Utc::now() + Duration::days(30)).to_rfc3339();
    let created = create_device(
        &app,
        &alice,
        &address,
        json!({ "label": "Office printer", "protocols": ["smtp"], "expires_at": expires }),
    )
    .await;
    let password = created["password"].as_str().unwrap().to_string();
    assert_eq!(created["username"], "info@famille.example");
    assert_eq!(created["label"], "Office printer");
    assert_eq!(created["protocols"], json!(["smtp"]));
    assert_eq!(created["login"], "alice@example.com");
    assert_eq!(created["last_used"], Value::Null);
    // pst_ + 8 + _ + 50, lower-case letters and digits.
    let parts: Vec<&str> = password.split('_').collect();
    assert_eq!(parts.len(), 3, "{password}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("pst", 8, 50));
    assert!(password[4..]
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    // Defaults: every protocol the address offers and the access allows.
    let all = create_device(&app, &alice, &address, json!({ "label": "Phone" })).await;
    assert_eq!(all["protocols"], json!(["imap", "pop3", "smtp"]));
    assert_eq!(all["expires_at"], Value::Null);
    assert_ne!(all["password"], created["password"]);

    let items = listed(&app, &alice, &address).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], created["id"]);
    assert!(items.iter().all(|i| i.get("password").is_none()));
    let text = serde_json::to_string(&items).unwrap();
    assert!(!text.contains(&password));
    // Only an argon2id hash of the whole password is kept, under the public id.
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM device_passwords WHERE public_id = '{}' \
             AND password_hash LIKE '$argon2id$%' AND password_hash NOT LIKE '%{}%'",
            parts[1], parts[2]
        ))
        .await,
        1
    );
    // The event names the device password, never its secret.
    let events = app
        .get(&format!("/v1/addresses/{address}/events"), &alice.token)
        .await;
    let events = events.assert_status(200).to_string();
    assert!(events.contains("device_password.created"), "{events}");
    assert!(events.contains(id));
    assert!(!events.contains(parts[2]));

    app.delete(&format!("/v1/device-passwords/{id}"), &alice.token)
        .await
        .assert_status(204);
    app.delete(&format!("/v1/device-passwords/{id}"), &alice.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(listed(&app, &alice, &address).await.len(), 1);
    let events = app
        .get(&format!("/v1/addresses/{address}/events"), &alice.token)
        .await;
    assert!(events.text.contains("device_password.revoked"));
}

async fn device_password_requests_get_clear_422s(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let path = format!("/v1/addresses/{address}/device-passwords");
    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    for (body, field) in [
        (
            json!({ "label": "x", "protocols": ["imap", "ftp"] }),
            "protocols[1]",
        ),
        (json!({ "label": "x", "expires_at": past }), "expires_at"),
        (json!({ "label": "p".repeat(65) }), "label"),
        (json!({ "label": "" }), "label"),
        (json!({ "label": "   " }), "label"),
        (json!({ "label": "tab\there" }), "label"),
        (json!({ "label": "x", "protocols": [] }), "protocols"),
        (json!({ "label": "x", "password": "chosen" }), "password"),
        (json!({}), "label"),
    ] {
        let res = app.post(&path, &alice.token, body.clone()).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec![field], "{body}");
    }
    // 64 characters (not bytes) are fine.
    create_device(&app, &alice, &address, json!({ "label": "é".repeat(64) })).await;
    // A no_reply address has nothing to read; a catchall cannot send.
    let service = app.get("/v1/mail-services", &alice.token).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (kind, protocol) in [("no_reply", "pop3"), ("catchall", "smtp")] {
        let generic = app
            .post(
                &format!("/v1/mail-services/{service}/addresses/generic"),
                &alice.token,
                json!({ "type": kind, "password": STRONG }),
            )
            .await;
        let id = generic.assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        // Owners create generic addresses without an access: give alice one.
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
            &alice.token,
            json!({ "token": token }),
        )
        .await
        .assert_status(200);
        let res = app
            .post(
                &format!("/v1/addresses/{id}/device-passwords"),
                &alice.token,
                json!({ "label": "x", "protocols": [protocol] }),
            )
            .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["protocols[0]"]);
        let default = create_device(&app, &alice, &id, json!({ "label": "x" })).await;
        let expected = if kind == "no_reply" {
            json!(["smtp"])
        } else {
            json!(["imap", "pop3"])
        };
        assert_eq!(default["protocols"], expected);
    }
}

async fn an_access_holds_at_most_twenty_device_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    // Expired ones count until revoked.
    for i in 0..20 {
        create_device(
            &app,
            &alice,
            &address,
            json!({ "label": format!("device {i}") }),
        )
        .await;
    }
    let path = format!("/v1/addresses/{address}/device-passwords");
    let res = app
        .post(&path, &alice.token, json!({ "label": "one too many" }))
        .await;
    res.assert_problem(422, "device_password_limit_reached");
    assert!(res.body["detail"].as_str().unwrap().contains("20"));
    let first = listed(&app, &alice, &address).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete(&format!("/v1/device-passwords/{first}"), &alice.token)
        .await
        .assert_status(204);
    create_device(
        &app,
        &alice,
        &address,
        json!({ "label": "now there is room" }),
    )
    .await;
    // Pages of the list.
    let page = app.get(&format!("{path}?limit=15"), &alice.token).await;
    let page = page.assert_status(200).clone();
    assert_eq!(page["items"].as_array().unwrap().len(), 15);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("{path}?limit=15&cursor={cursor}"), &alice.token)
        .await;
    assert_eq!(
        rest.assert_status(200)["items"].as_array().unwrap().len(),
        5
    );
}

async fn users_see_and_revoke_their_own_device_passwords_owners_everyones(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    share(&app, &alice, &address, &bob, json!(["send_email"])).await;
    share(&app, &alice, &address, &carol, json!([])).await;
    let alices = create_device(&app, &alice, &address, json!({ "label": "alice's" })).await;
    let bobs = create_device(&app, &bob, &address, json!({ "label": "bob's" })).await;
    let bobs2 = create_device(&app, &bob, &address, json!({ "label": "bob's 2" })).await;
    create_device(&app, &carol, &address, json!({ "label": "carol's" })).await;
    assert_eq!(bobs["login"], "bob@example.com");
    // The owner sees everyone's; a user only their own.
    assert_eq!(listed(&app, &alice, &address).await.len(), 4);
    let mine = listed(&app, &bob, &address).await;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|d| d["login"] == "bob@example.com"));
    // A user cannot revoke another's (it does not exist for him); a stranger sees nothing.
    let alices_id = alices["id"].as_str().unwrap();
    app.delete(&format!("/v1/device-passwords/{alices_id}"), &bob.token)
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("/v1/device-passwords/{alices_id}"), &mallory.token)
        .await
        .assert_problem(404, "not_found");
    app.get(
        &format!("/v1/addresses/{address}/device-passwords"),
        &mallory.token,
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        &format!("/v1/addresses/{address}/device-passwords"),
        &mallory.token,
        json!({ "label": "x" }),
    )
    .await
    .assert_problem(404, "not_found");
    // The owner revokes one of Bob's; Bob revokes all of his; the owner all of Carol's.
    let bobs_id = bobs["id"].as_str().unwrap();
    app.delete(&format!("/v1/device-passwords/{bobs_id}"), &alice.token)
        .await
        .assert_status(204);
    let all = app
        .delete(
            &format!("/v1/addresses/{address}/device-passwords"),
            &bob.token,
        )
        .await;
    assert_eq!(all.assert_status(200)["revoked"], 1);
    assert!(listed(&app, &bob, &address).await.is_empty());
    let bobs2_id = bobs2["id"].as_str().unwrap();
    app.delete(&format!("/v1/device-passwords/{bobs2_id}"), &bob.token)
        .await
        .assert_problem(404, "not_found");
    app.delete(
        &format!(
            "/v1/addresses/{address}/device-passwords?account_id={}",
            alice.account_id
        ),
        &bob.token,
    )
    .await
    .assert_problem(403, "forbidden");
    let carols = app
        .delete(
            &format!(
                "/v1/addresses/{address}/device-passwords?account_id={}",
                carol.account_id
            ),
            &alice.token,
        )
        .await;
    assert_eq!(carols.assert_status(200)["revoked"], 1);
    let left = listed(&app, &alice, &address).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], alices["id"]);
    let events = app
        .get(&format!("/v1/addresses/{address}/events"), &alice.token)
        .await;
    assert!(events.text.contains("device_password.revoked_all"));
    // An admin of the organization, without any access of his own, lists and revokes them.
    let dave = app.user("dave@example.com").await;
    app.add_member(&alice, &dave, "admin").await;
    assert_eq!(listed(&app, &dave, &address).await.len(), 1);
    app.delete(&format!("/v1/device-passwords/{alices_id}"), &dave.token)
        .await
        .assert_status(204);
    assert!(listed(&app, &alice, &address).await.is_empty());
}

async fn smtp_needs_send_email_and_credentials_need_an_access_of_ones_own(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let bob = app.user("bob@example.com").await;
    share(&app, &alice, &address, &bob, json!(["access_logs"])).await;
    let path = format!("/v1/addresses/{address}/device-passwords");
    app.post(
        &path,
        &bob.token,
        json!({ "label": "x", "protocols": ["smtp"] }),
    )
    .await
    .assert_problem(403, "permission_denied");
    let reading = create_device(&app, &bob, &address, json!({ "label": "reader" })).await;
    assert_eq!(reading["protocols"], json!(["imap", "pop3"]));
    let tokens = format!("/v1/addresses/{address}/mailbox-tokens");
    app.post(&tokens, &bob.token, json!({ "scopes": ["smtp"] }))
        .await
        .assert_problem(403, "permission_denied");
    let token = app.post(&tokens, &bob.token, json!({})).await;
    assert_eq!(token.assert_status(201)["scopes"], json!(["imap"]));

    // An admin of the organization without an access of her own manages, but holds none.
    let dana = app.user("dana@example.com").await;
    app.add_member(&alice, &dana, "admin").await;
    app.post(&path, &dana.token, json!({ "label": "x" }))
        .await
        .assert_problem(403, "access_required");
    app.post(&tokens, &dana.token, json!({}))
        .await
        .assert_problem(403, "access_required");
    assert_eq!(listed(&app, &dana, &address).await.len(), 1);
    // A plain member sees the address but has no credential on it.
    let erin = app.user("erin@example.com").await;
    app.add_member(&alice, &erin, "user").await;
    app.get(&path, &erin.token)
        .await
        .assert_problem(403, "access_required");
    app.get(
        &format!("/v1/addresses/{address}/mobileconfig"),
        &erin.token,
    )
    .await
    .assert_problem(403, "access_required");
}

/// Rows of `table` held by an account (sqlx keeps UUIDs in SQLite as 16-byte blobs).
async fn held_by(app: &TestApp, table: &str, account_id: uuid::Uuid) -> i64 {
    let sql = match app.backend {
        Backend::Postgres => {
            format!("SELECT COUNT(*) FROM {table} WHERE account_id = '{account_id}'")
        }
        Backend::Sqlite => format!(
            "SELECT COUNT(*) FROM {table} WHERE lower(hex(account_id)) = '{}'",
            account_id.simple()
        ),
    };
    app.scalar_i64(&sql).await
}

async fn removing_the_access_removes_its_device_passwords_and_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let bob = app.user("bob@example.com").await;
    share(&app, &alice, &address, &bob, json!(["send_email"])).await;
    create_device(&app, &bob, &address, json!({ "label": "bob's" })).await;
    create_device(&app, &alice, &address, json!({ "label": "alice's" })).await;
    app.post(
        &format!("/v1/addresses/{address}/mailbox-tokens"),
        &bob.token,
        json!({}),
    )
    .await
    .assert_status(201);
    let count = |table: &'static str| held_by(&app, table, bob.account_id);
    assert_eq!(count("device_passwords").await, 1);
    assert_eq!(count("mailbox_tokens").await, 1);
    app.delete(
        &format!("/v1/addresses/{address}/users/{}", bob.account_id),
        &alice.token,
    )
    .await
    .assert_status(204);
    assert_eq!(count("device_passwords").await, 0);
    assert_eq!(count("mailbox_tokens").await, 0);
    assert_eq!(listed(&app, &alice, &address).await.len(), 1);
    // Coming back later does not revive them.
    share(&app, &alice, &address, &bob, json!(["send_email"])).await;
    assert!(listed(&app, &bob, &address).await.is_empty());
}

async fn mailbox_tokens_carry_the_scopes_the_access_allows_stored_as_a_hash(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let path = format!("/v1/addresses/{address}/mailbox-tokens");
    let res = app.post(&path, &alice.token, json!({})).await;
    let issued = res.assert_status(201).clone();
    assert_eq!(issued["username"], "info@famille.example");
    assert_eq!(issued["expires_in"], 600);
    assert_eq!(issued["scopes"], json!(["imap", "smtp"]));
    let token = issued["token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    // Stored as the SHA-256 Dovecot computes (`%{sha256:password}`), never as itself.
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM mailbox_tokens WHERE token_hash = '{}'",
            sha256_hex(token)
        ))
        .await,
        1
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM mailbox_tokens WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    // And the mail servers' view offers it for both services.
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM mail_tokens WHERE address = 'info@famille.example' \
             AND token_hash = '{}' AND imap AND smtp",
            sha256_hex(token)
        ))
        .await,
        1
    );
    let read_only = app
        .post(&path, &alice.token, json!({ "scopes": ["imap"] }))
        .await;
    assert_eq!(read_only.assert_status(201)["scopes"], json!(["imap"]));
    let res = app
        .post(&path, &alice.token, json!({ "scopes": ["imap", "pop3"] }))
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["scopes[1]"]);
    app.post(&path, &alice.token, json!({ "scopes": [] }))
        .await
        .assert_problem(422, "validation_failed");
    // Expired tokens are removed when new ones are issued.
    app.db()
        .execute_unprepared("UPDATE mailbox_tokens SET expires_at = '2020-01-01T00:00:00+00:00'")
        .await
        .unwrap();
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM mail_tokens").await,
        0,
        "an expired token is still offered to the mail servers"
    );
    app.post(&path, &alice.token, json!({}))
        .await
        .assert_status(201);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM mailbox_tokens").await,
        1
    );
    // Nobody else gets one.
    let mallory = app.user("mallory@example.com").await;
    app.post(&path, &mallory.token, json!({}))
        .await
        .assert_problem(404, "not_found");
}

async fn mailbox_tokens_are_throttled_per_access(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let path = format!("/v1/addresses/{address}/mailbox-tokens");
    for _ in 0..30 {
        app.post(&path, &alice.token, json!({}))
            .await
            .assert_status(201);
    }
    let res = app.post(&path, &alice.token, json!({})).await;
    res.assert_problem(429, "too_many_requests");
    assert!(res.headers.get("retry-after").is_some());
}

fn autodiscover_request(email: &str, schema: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\n\
         <Request><EMailAddress>{email}</EMailAddress>\n\
         <AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>"
    )
}

async fn autodiscover(app: &TestApp, body: String) -> (u16, String, String) {
    let res = app
        .client
        .post(app.url("/autodiscover/autodiscover.xml"))
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    (status, content_type, res.text().await.unwrap())
}

async fn autodiscover_answers_every_local_part_of_a_hosted_domain_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    alice_with_address(&app).await;
    let outlook = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
    let (status, content_type, known) =
        autodiscover(&app, autodiscover_request("Info@Famille.example", outlook)).await;
    assert_eq!(status, 200, "{known}");
    assert!(content_type.starts_with("application/xml"));
    for part in [
        "<Type>IMAP</Type>",
        "<Server>mail.example</Server>",
        "<Port>993</Port>",
        "<Type>POP3</Type>",
        "<Port>995</Port>",
        "<Type>SMTP</Type>",
        "<Port>465</Port>",
        "<Port>587</Port>",
        "<Encryption>TLS</Encryption>",
        "<LoginName>info@famille.example</LoginName>",
        "<AuthRequired>on</AuthRequired>",
    ] {
        assert!(known.contains(part), "{part} missing from {known}");
    }
    assert!(known.find("IMAP").unwrap() < known.find("POP3").unwrap());
    // An address that does not exist gets the same document: nothing tells them apart.
    let (status, _, unknown) = autodiscover(
        &app,
        autodiscover_request("nobody@famille.example", outlook),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        unknown.replace("nobody@", "info@"),
        known,
        "the answers differ beyond the login name"
    );
    let (status, _, other) = autodiscover(
        &app,
        autodiscover_request("info@elsewhere.example", outlook),
    )
    .await;
    assert_eq!(status, 404, "{other}");
    // Exchange ActiveSync is not offered: autodiscover's own error 601.
    let mobilesync =
        "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
    let (status, _, refused) = autodiscover(
        &app,
        autodiscover_request("info@famille.example", mobilesync),
    )
    .await;
    assert_eq!(status, 200);
    assert!(refused.contains("<ErrorCode>601</ErrorCode>"), "{refused}");
    // Not an autodiscover request, or not an address.
    let (status, content_type, _) = autodiscover(&app, "<Request/>".into()).await;
    assert_eq!(
        (status, content_type.as_str()),
        (400, "application/problem+json")
    );
    let (status, _, _) = autodiscover(&app, autodiscover_request("not an address", outlook)).await;
    assert_eq!(status, 422);
    let (status, _, _) = autodiscover(&app, "x".repeat(20_000)).await;
    assert_eq!(status, 413);
}

async fn an_apple_profile_sets_up_the_address_without_any_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let path = format!("/v1/addresses/{address}/mobileconfig");
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/x-apple-aspen-config"
    );
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"info@famille.example.mobileconfig\""
    );
    let profile = res.text().await.unwrap();
    for part in [
        "<string>com.apple.mail.managed</string>",
        "<string>EmailTypeIMAP</string>",
        "<key>IncomingMailServerHostName</key>\n      <string>mail.example</string>",
        "<key>IncomingMailServerPortNumber</key>\n      <integer>993</integer>",
        "<key>OutgoingMailServerPortNumber</key>\n      <integer>465</integer>",
        "<key>IncomingMailServerUsername</key>\n      <string>info@famille.example</string>",
        "<string>example.mail.",
    ] {
        assert!(profile.contains(part), "{part} missing from {profile}");
    }
    assert!(!profile.contains("<key>IncomingPassword</key>"));
    assert!(!profile.contains("<key>OutgoingPassword</key>"));
    assert!(!profile.contains(STRONG));
    // The same profile each time (installing it again replaces the account).
    let again = app.get(&path, &alice.token).await;
    assert_eq!(again.text, profile);
    let mallory = app.user("mallory@example.com").await;
    app.get(&path, &mallory.token)
        .await
        .assert_problem(404, "not_found");
    let service = app.get("/v1/mail-services", &alice.token).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let noreply = app
        .post(
            &format!("/v1/mail-services/{service}/addresses/generic"),
            &alice.token,
            json!({ "type": "no_reply", "password": STRONG }),
        )
        .await;
    let noreply = noreply.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.get(
        &format!("/v1/addresses/{noreply}/mobileconfig"),
        &alice.token,
    )
    .await
    .assert_problem(409, "address_has_no_mailbox");
}

async fn the_mail_views_offer_only_credentials_that_may_log_in_now(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, address) = alice_with_address(&app).await;
    let lasting = create_device(&app, &alice, &address, json!({ "label": "lasting" })).await;
    let tomorrow = (Utc::now() + Duration::days(1)).to_rfc3339();
    let brief = create_device(
        &app,
        &alice,
        &address,
        json!({ "label": "brief", "protocols": ["imap"], "expires_at": tomorrow }),
    )
    .await;
    app.post(
        &format!("/v1/addresses/{address}/mailbox-tokens"),
        &alice.token,
        json!({}),
    )
    .await
    .assert_status(201);
    let count = |condition: &str| {
        format!(
            "SELECT COUNT(*) FROM mail_device_passwords \
             WHERE address = 'info@famille.example' AND {condition}"
        )
    };
    let public_id = |created: &Value| created["password"].as_str().unwrap()[4..12].to_string();
    assert_eq!(app.scalar_i64(&count("1 = 1")).await, 2);
    assert_eq!(
        app.scalar_i64(&count(&format!(
            "public_id = '{}' AND imap AND pop3 AND smtp",
            public_id(&lasting)
        )))
        .await,
        1
    );
    assert_eq!(
        app.scalar_i64(&count(&format!(
            "public_id = '{}' AND imap AND NOT pop3 AND NOT smtp",
            public_id(&brief)
        )))
        .await,
        1
    );
    // The view never shows the secret, only its hash.
    assert_eq!(
        app.scalar_i64(&count("password_hash LIKE '$argon2id$%'"))
            .await,
        2
    );
    // Expired: gone from the view at once (the row stays listed until revoked).
    app.db()
        .execute_unprepared(&format!(
            "UPDATE device_passwords SET expires_at = '2020-01-01T00:00:00+00:00' \
             WHERE public_id = '{}'",
            public_id(&brief)
        ))
        .await
        .unwrap();
    assert_eq!(app.scalar_i64(&count("1 = 1")).await, 1);
    assert_eq!(listed(&app, &alice, &address).await.len(), 2);
    // Without send_email the holder's credentials still read, no longer send.
    app.patch(
        &format!("/v1/addresses/{address}/users/{}", alice.account_id),
        &alice.token,
        json!({ "permissions": [] }),
    )
    .await
    .assert_status(200);
    assert_eq!(app.scalar_i64(&count("smtp")).await, 0);
    assert_eq!(app.scalar_i64(&count("imap AND pop3")).await, 1);
    let tokens = "SELECT COUNT(*) FROM mail_tokens WHERE address = 'info@famille.example'";
    assert_eq!(
        app.scalar_i64(&format!("{tokens} AND imap AND NOT smtp"))
            .await,
        1
    );
    // A deleted address takes its credentials with it.
    let fresh = app.reauth(&alice).await;
    app.delete(
        &format!("/v1/addresses/{address}?confirm=info@famille.example"),
        &fresh,
    )
    .await
    .assert_status(204);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM device_passwords")
            .await,
        0
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM mailbox_tokens").await,
        0
    );
    assert_eq!(app.scalar_i64(tokens).await, 0);
}
