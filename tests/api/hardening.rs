//! Holes a security campaign found (issue 19, points 8 and 9): control characters in text
//! that reaches mail headers, subjects that look like encoded words, NUL bytes in paths,
//! cacheable secrets, the framing and sniffing of the documentation page, two tabs
//! refreshing one session, and a CSV import echoing a password back.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::addresses::{create_for_me, premium, STRONG};
use crate::helpers::{spawn_app, spawn_app_with, Backend};
use crate::imports::import;
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    control_characters_in_header_text_answer_422_naming_the_field,
    a_login_that_looks_like_an_encoded_word_cannot_spoof_a_notification_subject,
    a_nul_byte_in_a_path_parameter_answers_400,
    answers_that_carry_secrets_are_never_stored_by_caches,
    the_documentation_page_cannot_be_framed_or_sniffed,
    a_csv_import_never_echoes_a_password_as_the_address_of_a_row,
    two_tabs_refreshing_one_token_share_the_successor_and_a_later_reuse_revokes,
);

const INJECTION: &str = "Away\r\nBcc: victim@elsewhere.example";

async fn control_characters_in_header_text_answer_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .post_anon(
            "/v1/accounts",
            json!({ "login": "eve@example.com", "password": STRONG, "display_name": INJECTION }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["display_name"]);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM accounts").await,
        0,
        "nothing was created"
    );
    let alice = app.user("alice@example.com").await;
    for text in [INJECTION, "tab\there", "nul\u{0}", "line\u{2028}separator"] {
        let res = app
            .patch("/v1/me", &alice.token, json!({ "display_name": text }))
            .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["display_name"], "{text:?}");
    }
    let res = app
        .post(
            "/v1/organizations",
            &alice.token,
            json!({ "name": INJECTION }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["name"]);
    let res = app
        .patch(
            &format!("/v1/organizations/{}", alice.org_id),
            &alice.token,
            json!({ "name": "Acme\nSubject: pay now" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["name"]);
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "compta", "for": "me", "password": STRONG, "display_name": INJECTION }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["display_name"]);
    let id = create_for_me(&app, &alice, &service, "julie").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .patch(
            &format!("/v1/addresses/{id}"),
            &alice.token,
            json!({ "display_name": INJECTION }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["display_name"]);
    let res = app
        .put(
            &format!("/v1/addresses/{id}/auto-reply"),
            &alice.token,
            json!({ "enabled": true, "subject": INJECTION, "body": "Back on Monday." }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["subject"]);
    // Ordinary text, accents and punctuation included, is still accepted.
    app.put(
        &format!("/v1/addresses/{id}/auto-reply"),
        &alice.token,
        json!({ "enabled": true, "subject": "Absente — de retour lundi", "body": "Line one.\nLine two." }),
    )
    .await
    .assert_status(200);
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM organizations WHERE name LIKE '%Bcc%' OR name LIKE '%Subject%'"
        )
        .await,
        0
    );
}

async fn a_login_that_looks_like_an_encoded_word_cannot_spoof_a_notification_subject(
    backend: Backend,
) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    let spoofer = "=?utf-8?q?URGENT=3A_your_account_is_suspended?=@evil.test";
    let alice = app.user(spoofer).await;
    let bob = app.user("bob@example.com").await;
    // Inviting a member e-mails "<inviter's login> invites you to join <organization>".
    app.add_member(&alice, &bob, "user").await;
    let mails = smtp.wait_for_matching("Subject: =?utf-8?b?", 1).await;
    let mail = mails
        .iter()
        .find(|m| m.to == vec!["bob@example.com".to_string()])
        .expect("the invitation e-mail");
    let head = mail.data.split("\n\n").next().unwrap().replace("\n ", " ");
    let subject = head
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap();
    // The customer's text is inside base64 encoded words: a mail client decodes them once
    // and shows the login as typed, never the "URGENT" subject it pretends to be.
    assert!(!subject.contains("=?utf-8?q?"), "{subject}");
    let decoded: String = subject
        .split(' ')
        .map(|w| {
            let b64 = w
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap_or_else(|| panic!("{w} is not an encoded word"));
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    let login = spoofer.to_lowercase();
    assert_eq!(decoded, format!("{login} invites you to join {login}"));
}

async fn a_nul_byte_in_a_path_parameter_answers_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let id = create_for_me(&app, &alice, &service, "julie").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        format!("/v1/addresses/{id}/aliases/a%00b@famille.example"),
        format!("/v1/addresses/{id}/aliases/a%00"),
        "/v1/mail-services/%00".to_string(),
    ] {
        app.delete(&path, &alice.token)
            .await
            .assert_problem(400, "malformed_request");
    }
    // Elsewhere (a body), a NUL that reaches PostgreSQL is the client's error, not a 500.
    let res = app
        .login("alice\u{0}@example.com", crate::helpers::PASSWORD)
        .await;
    assert!(res.status.is_client_error(), "{}: {}", res.status, res.text);
    // The same route still works without the NUL.
    app.delete(
        &format!("/v1/addresses/{id}/aliases/ab@famille.example"),
        &alice.token,
    )
    .await
    .assert_problem(404, "not_found");
}

async fn answers_that_carry_secrets_are_never_stored_by_caches(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let no_store = |res: &crate::helpers::TestResponse, what: &str| {
        assert_eq!(
            res.headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{what}"
        );
    };
    let login = app
        .login("alice@example.com", crate::helpers::PASSWORD)
        .await;
    login.assert_status(200);
    no_store(&login, "login");
    let refresh = app
        .post_anon(
            "/v1/sessions/refresh",
            json!({ "refresh_token": login.body["refresh_token"] }),
        )
        .await;
    refresh.assert_status(200);
    no_store(&refresh, "refresh");
    let totp = app.post("/v1/me/totp", &alice.token, json!({})).await;
    totp.assert_status(201);
    no_store(&totp, "two-factor setup");
    let service = premium(&app, &alice).await;
    let id = create_for_me(&app, &alice, &service, "julie").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    link.assert_status(201);
    no_store(&link, "share link");
    let device = app
        .post(
            &format!("/v1/addresses/{id}/device-passwords"),
            &alice.token,
            json!({ "label": "Phone" }),
        )
        .await;
    device.assert_status(201);
    no_store(&device, "device password");
    // Every API answer is per caller: none is cacheable.
    no_store(&app.get("/v1/me", &alice.token).await, "profile");
}

async fn the_documentation_page_cannot_be_framed_or_sniffed(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    let page = res.text().await.unwrap();
    assert!(page.contains("swagger-ui-bundle.js"), "{page}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
    // The page runs no inline script (the policy would block it): only its own files.
    let without_src = page
        .split("<script")
        .skip(1)
        .filter(|tag| !tag.trim_start().starts_with("src="))
        .count();
    assert_eq!(without_src, 0, "{page}");
    // Its scripts and styles come from the same origin, and are served.
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
        "swagger-ui.css",
    ] {
        let res = app
            .client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }
    // API answers cannot be framed either.
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
}

async fn a_csv_import_never_echoes_a_password_as_the_address_of_a_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    // A file whose columns are shifted: the passwords sit under `address` and `local_part`.
    let secret = "Tr0ub4dor&3 horse; staple";
    let csv = format!(
        "address,password\n\"{secret}\",julie@famille.example\nmarc@famille.example,violet umbrella marching north\n"
    );
    let res = import(&app, &alice, &service, "?dry_run=true", &csv).await;
    let report = res.assert_status(200).clone();
    assert!(!res.text.contains(secret), "{}", res.text);
    assert!(!res.text.contains("Tr0ub4dor"), "{}", res.text);
    assert_eq!(report["rows"][0]["outcome"], "invalid");
    assert!(report["rows"][0]["address"].is_null(), "{report}");
    assert_eq!(report["rows"][1]["address"], "marc@famille.example");
    let csv = format!("local_part,password\n\"{secret}\",violet umbrella marching north\n");
    let res = import(&app, &alice, &service, "?dry_run=true", &csv).await;
    let report = res.assert_status(200).clone();
    assert!(!res.text.contains("Tr0ub4dor"), "{}", res.text);
    assert!(report["rows"][0]["address"].is_null(), "{report}");
}

async fn two_tabs_refreshing_one_token_share_the_successor_and_a_later_reuse_revokes(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.post_anon("/v1/sessions/refresh", json!({ "refresh_token": token }))
                .await
        }
    };
    // Two tabs at once with the same refresh token.
    let (a, b) = tokio::join!(
        refresh(user.refresh_token.clone()),
        refresh(user.refresh_token.clone())
    );
    let (a, b) = (a.assert_status(200).clone(), b.assert_status(200).clone());
    assert_eq!(a["refresh_token"], b["refresh_token"]);
    for tab in [&a, &b] {
        app.get("/v1/me", tab["access_token"].as_str().unwrap())
            .await
            .assert_status(200);
    }
    // A third time a few seconds later: the same successor again, the session alive.
    app.clock.advance(Duration::from_secs(5));
    let c = refresh(user.refresh_token.clone()).await;
    assert_eq!(c.assert_status(200)["refresh_token"], a["refresh_token"]);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        0
    );
    // The successor is stored sealed, never in clear (nor as anything but its hash).
    let successor = a["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE successor_sealed LIKE '%{successor}%'"
        ))
        .await,
        0
    );
    // The successor rotates as usual.
    let d = refresh(successor.clone()).await;
    let d = d.assert_status(200).clone();
    assert_ne!(d["refresh_token"], a["refresh_token"]);
    // Past the grace, the first token coming back is a theft: the family is revoked.
    app.clock.advance(Duration::from_secs(11));
    refresh(user.refresh_token.clone())
        .await
        .assert_problem(401, "refresh_token_invalid");
    refresh(d["refresh_token"].as_str().unwrap().to_string())
        .await
        .assert_problem(401, "refresh_token_invalid");
    app.get("/v1/me", d["access_token"].as_str().unwrap())
        .await
        .assert_problem(401, "unauthenticated");
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM sessions WHERE revoked_reason = 'refresh_token_reuse'"
        )
        .await,
        1
    );
}
