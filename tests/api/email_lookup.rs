//! Every e-mail address a caller types (invitation by e-mail, member invitation, password
//! reset, login) is looked up as sign-up stored it: trimmed, lower-cased, its domain in
//! punycode. An e-mailed invitation reaches the account whose verified login it names.

use serde_json::json;

use crate::addresses::{create_for_me, premium};
use crate::helpers::{spawn_app_with, Backend, PASSWORD};
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(every_typed_address_finds_the_account_as_sign_up_stored_it,);

async fn every_typed_address_finds_the_account_as_sign_up_stored_it(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let address = address["id"].as_str().unwrap();
    // Paul signs up with one spelling; sign-up stores the parsed form.
    let paul = app.unverified_user(" Paul@Bücher.Example. ").await;
    let stored = "paul@xn--bcher-kva.example";
    let count = format!("SELECT COUNT(*) FROM accounts WHERE login = '{stored}'");
    assert_eq!(app.scalar_i64(&count).await, 1);
    // Invited by e-mail and to join, each written another way.
    app.post(
        &format!("/v1/addresses/{address}/invitations"),
        &alice.token,
        json!({ "invitee": { "email": "PAUL@bücher.EXAMPLE" }, "permissions": [] }),
    )
    .await
    .assert_status(201);
    app.post(
        &format!("/v1/organizations/{}/members", alice.org_id),
        &alice.token,
        json!({ "login": "paul@BÜCHER.example", "role": "user" }),
    )
    .await
    .assert_status(202);
    // Unverified, neither is his yet.
    let mine = app.get("/v1/me/invitations", &paul.token).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    let mine = app.get("/v1/me/member-invitations", &paul.token).await;
    assert_eq!(mine.assert_status(200)["items"], json!([]));
    // Verified: both wait among his.
    app.verify_by_email(&smtp, stored).await;
    let mine = app.get("/v1/me/invitations", &paul.token).await;
    let items = mine.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    let mine = app.get("/v1/me/member-invitations", &paul.token).await;
    let items = mine.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    // A reset asked with yet another spelling reaches the account.
    app.post_anon(
        "/v1/password-resets",
        json!({ "login": "Paul@Bücher.example" }),
    )
    .await;
    let reset = smtp.wait_for_matching("Reset your password", 1).await;
    assert_eq!(reset[0].to, vec![stored.to_string()]);
    // And the login itself.
    app.login("PAUL@bücher.example.", PASSWORD)
        .await
        .assert_status(200);
}
