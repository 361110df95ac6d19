//! Postier's own pages behind the links in e-mails, over plain HTTP (the browser tests are in
//! `browser`): a GET never acts, a cross-site POST is refused, dead links get a page, the
//! language follows `Accept-Language`, every page carries its security headers, and
//! `POSTIER_APP_URL` moves the links to a frontend.

use reqwest::header::HeaderMap;
use serde_json::json;

use crate::addresses::{create_for_me, premium, STRONG};
use crate::helpers::{latest_token, spawn_app_with, Backend, TestApp, TestUser, PASSWORD};
use crate::on_both_backends;
use crate::smtp_server::TestSmtp;

on_both_backends!(
    a_forward_page_shows_on_get_and_confirms_only_on_post,
    a_forward_target_refuses_by_its_page_or_the_api,
    a_cross_site_post_is_refused_with_403_and_changes_nothing,
    pages_speak_french_when_preferred_and_english_otherwise,
    unknown_expired_and_answered_links_show_a_page_not_a_problem,
    a_share_link_page_logs_in_then_redeems_and_ends_its_session,
    the_reset_page_refuses_a_weak_password_then_sets_a_good_one,
    app_url_moves_the_links_in_emails_to_the_frontend,
    a_member_invitation_page_asks_for_the_second_factor_of_an_account_that_has_one,
);

/// A page as the test sees it.
pub struct PageAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub html: String,
}

pub async fn get_page(app: &TestApp, path_and_query: &str, language: &str) -> PageAnswer {
    let res = app
        .client
        .get(format!("{}{path_and_query}", app.address))
        .header("accept-language", language)
        .send()
        .await
        .unwrap();
    answer(res).await
}

/// Posts a page's form as a browser without `Sec-Fetch-Site` would, or with the given one.
pub async fn post_page(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    sec_fetch_site: Option<&str>,
) -> PageAnswer {
    let mut req = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap());
    if let Some(site) = sec_fetch_site {
        req = req.header("sec-fetch-site", site);
    }
    answer(req.send().await.unwrap()).await
}

async fn answer(res: reqwest::Response) -> PageAnswer {
    PageAnswer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        html: res.text().await.unwrap(),
    }
}

/// The form token of the form posting to `action` on a page.
pub fn form_token(html: &str, action: &str) -> String {
    let form = html
        .split(&format!(r#"action="{action}""#))
        .nth(1)
        .unwrap_or_else(|| panic!("no form posting to {action} in {html}"));
    form.split(r#"name="form_token" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// The first link of a message starting with `prefix`.
pub fn link_in(data: &str, prefix: &str) -> String {
    let start = data
        .find(prefix)
        .unwrap_or_else(|| panic!("no link {prefix} in {data}"));
    data[start..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

fn assert_page_headers(page: &PageAnswer) {
    let h = |name: &str| {
        page.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(h("content-type"), "text/html; charset=utf-8");
    let csp = h("content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("cache-control"), "no-store");
    assert!(!page.html.contains("<script"), "{}", page.html);
}

/// Alice's address `compta` asks `target` to confirm a forward; the e-mailed token.
pub async fn forward_to(
    app: &TestApp,
    smtp: &TestSmtp,
    alice: &TestUser,
    target: &str,
) -> (String, String) {
    let service = premium(app, alice).await;
    let address = create_for_me(app, alice, &service, "compta").await;
    let id = address["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": target, "keep_copy": true }),
    )
    .await
    .assert_status(201);
    let token = latest_token(smtp, target, "/forwards/confirm?token=").await;
    (id, token)
}

async fn forward_confirmed(app: &TestApp, alice: &TestUser, id: &str) -> Option<bool> {
    let list = app
        .get(&format!("/v1/addresses/{id}/forwards"), &alice.token)
        .await;
    list.assert_status(200)["items"][0]["confirmed"].as_bool()
}

async fn with_smtp(backend: Backend) -> (TestSmtp, TestApp) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    (smtp, app)
}

async fn a_forward_page_shows_on_get_and_confirms_only_on_post(backend: Backend) {
    let (smtp, app) = with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    let (id, token) = forward_to(&app, &smtp, &alice, "julie@home.example").await;
    // The e-mail's link is this server's page.
    let mail = smtp.matching("/forwards/confirm?token=").pop().unwrap();
    let link = link_in(&mail.data, &app.address);
    assert_eq!(
        link,
        format!("{}/forwards/confirm?token={token}", app.address)
    );
    // Opened (by a person or a mail scanner), twice: nothing happens.
    for _ in 0..2 {
        let page = get_page(&app, &format!("/forwards/confirm?token={token}"), "en").await;
        assert_eq!(page.status, 200);
        assert_page_headers(&page);
        assert!(
            page.html.contains("compta@famille.example"),
            "{}",
            page.html
        );
        assert!(page.html.contains("julie@home.example"));
        assert!(page.html.contains(r#"action="/forwards/confirm""#));
        assert!(page.html.contains(r#"action="/forwards/refuse""#));
    }
    assert_eq!(forward_confirmed(&app, &alice, &id).await, Some(false));
    // The stylesheet the page links to is served, without the API's CSP getting in the way.
    let css = app
        .client
        .get(format!("{}/pages/style.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // The button acts.
    let page = get_page(&app, &format!("/forwards/confirm?token={token}"), "en").await;
    let ft = form_token(&page.html, "/forwards/confirm");
    let done = post_page(
        &app,
        "/forwards/confirm",
        &[("token", &token), ("form_token", &ft)],
        None,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert_page_headers(&done);
    assert!(done.html.contains("Forwarding confirmed"));
    assert_eq!(forward_confirmed(&app, &alice, &id).await, Some(true));
    // Used: the link now shows a page saying so (never a problem document).
    let again = post_page(
        &app,
        "/forwards/confirm",
        &[("token", &token), ("form_token", &ft)],
        None,
    )
    .await;
    assert_eq!(again.status, 404);
    assert_page_headers(&again);
    let page = get_page(&app, &format!("/forwards/confirm?token={token}"), "en").await;
    assert_eq!(page.status, 404);
    assert!(page.html.contains("This link does not work"));
}

async fn a_forward_target_refuses_by_its_page_or_the_api(backend: Backend) {
    let (smtp, app) = with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    let (id, token) = forward_to(&app, &smtp, &alice, "julie@home.example").await;
    let page = get_page(&app, &format!("/forwards/refuse?token={token}"), "en").await;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains(r#"action="/forwards/confirm""#));
    assert_eq!(forward_confirmed(&app, &alice, &id).await, Some(false));
    let ft = form_token(&page.html, "/forwards/refuse");
    let done = post_page(
        &app,
        "/forwards/refuse",
        &[("token", &token), ("form_token", &ft)],
        Some("same-origin"),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert_eq!(forward_confirmed(&app, &alice, &id).await, None);
    let events = app
        .get(&format!("/v1/addresses/{id}/events"), &alice.token)
        .await;
    let events = events.assert_status(200).to_string();
    assert!(events.contains("forward.refused"), "{events}");
    // The same through the API, for frontends serving the page themselves.
    app.post(
        &format!("/v1/addresses/{id}/forwards"),
        &alice.token,
        json!({ "target": "marc@home.example", "keep_copy": true }),
    )
    .await
    .assert_status(201);
    let token = latest_token(&smtp, "marc@home.example", "/forwards/confirm?token=").await;
    let res = app
        .post_anon("/v1/forwards/refuse", json!({ "token": token }))
        .await;
    res.assert_status(204);
    app.post_anon("/v1/forwards/refuse", json!({ "token": token }))
        .await
        .assert_problem(404, "not_found");
    app.post_anon("/v1/forwards/confirm", json!({ "token": token }))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(forward_confirmed(&app, &alice, &id).await, None);
}

async fn a_cross_site_post_is_refused_with_403_and_changes_nothing(backend: Backend) {
    let (smtp, app) = with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    let (id, token) = forward_to(&app, &smtp, &alice, "julie@home.example").await;
    let page = get_page(&app, &format!("/forwards/confirm?token={token}"), "en").await;
    let ft = form_token(&page.html, "/forwards/confirm");
    let fields = [("token", token.as_str()), ("form_token", ft.as_str())];
    // A foreign site's form, even with a genuine form token, does nothing.
    for site in ["cross-site", "same-site"] {
        let refused = post_page(&app, "/forwards/confirm", &fields, Some(site)).await;
        assert_eq!(refused.status, 403, "{site}");
        assert_page_headers(&refused);
        assert!(refused.html.contains("Nothing was done"));
    }
    // Without Sec-Fetch-Site, the form token must be the page's.
    let forged = post_page(
        &app,
        "/forwards/confirm",
        &[("token", &token), ("form_token", "0000")],
        None,
    )
    .await;
    assert_eq!(forged.status, 403);
    let missing = post_page(&app, "/forwards/confirm", &[("token", &token)], None).await;
    assert_eq!(missing.status, 403);
    // Another page's form token does not fit this page.
    let other = form_token(&page.html, "/forwards/refuse");
    let swapped = post_page(
        &app,
        "/forwards/confirm",
        &[("token", &token), ("form_token", &other)],
        None,
    )
    .await;
    assert_eq!(swapped.status, 403);
    assert_eq!(forward_confirmed(&app, &alice, &id).await, Some(false));
    // The browser's own page (same-origin) acts.
    let done = post_page(
        &app,
        "/forwards/confirm",
        &[("token", &token)],
        Some("same-origin"),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert_eq!(forward_confirmed(&app, &alice, &id).await, Some(true));
}

async fn pages_speak_french_when_preferred_and_english_otherwise(backend: Backend) {
    let (smtp, app) = with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    let (_, token) = forward_to(&app, &smtp, &alice, "julie@home.example").await;
    let path = format!("/forwards/confirm?token={token}");
    let fr = get_page(&app, &path, "fr-FR,fr;q=0.9,en;q=0.8").await;
    assert!(fr.html.contains(r#"<html lang="fr">"#));
    assert!(fr.html.contains("Confirmer le transfert"), "{}", fr.html);
    let en = get_page(&app, &path, "en-GB,en;q=0.9,fr;q=0.5").await;
    assert!(en.html.contains(r#"<html lang="en">"#));
    assert!(en.html.contains("Confirm the forwarding"));
    let other = get_page(&app, &path, "de-DE").await;
    assert!(other.html.contains(r#"<html lang="en">"#));
    // Dead links too.
    let fr = get_page(&app, "/share-links/redeem?token=nope", "fr").await;
    assert_eq!(fr.status, 404);
    assert!(fr.html.contains("Ce lien ne fonctionne pas"), "{}", fr.html);
}

async fn unknown_expired_and_answered_links_show_a_page_not_a_problem(backend: Backend) {
    let (smtp, app) = with_smtp(backend).await;
    for path in [
        "/invitations/accept",
        "/invitations/accept?token=",
        "/invitations/decline?token=abc",
        "/share-links/redeem?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/member-invitations/accept?token=x",
        "/accounts/verify?token=x",
        "/password-reset?token=x",
        "/forwards/confirm?token=x",
        "/forwards/refuse",
    ] {
        let page = get_page(&app, path, "en").await;
        assert_eq!(page.status, 404, "{path}");
        assert_page_headers(&page);
        assert!(page.html.contains("This link does not work"), "{path}");
    }
    // A malformed form post is a page too.
    let page = post_page(&app, "/invitations/decline", &[], Some("same-origin")).await;
    assert_eq!(page.status, 404);
    assert_page_headers(&page);
    // An e-mailed invitation, declined: its accept page says it is closed.
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        json!({ "local_part": "paul", "for": "other_user", "invitee": { "email": "paul@isp.example" }, "account_binding": "any", "password": STRONG }),
    )
    .await
    .assert_status(201);
    let token = latest_token(&smtp, "paul@isp.example", "/invitations/accept?token=").await;
    let mail = smtp.matching("/invitations/accept?token=").pop().unwrap();
    assert!(mail.data.contains(&format!(
        "{}/invitations/decline?token={token}",
        app.address
    )));
    let page = get_page(&app, &format!("/invitations/decline?token={token}"), "en").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("paul@famille.example"));
    let ft = form_token(&page.html, "/invitations/decline");
    let done = post_page(
        &app,
        "/invitations/decline",
        &[("token", &token), ("form_token", &ft)],
        None,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.html);
    let page = get_page(&app, &format!("/invitations/accept?token={token}"), "en").await;
    assert_eq!(page.status, 410);
    assert!(
        page.html.contains("This invitation is closed"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("invitation_not_pending"));
    // Another one, left to expire (seven days).
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        json!({ "local_part": "lea", "for": "other_user", "invitee": { "email": "lea@isp.example" }, "account_binding": "any", "password": STRONG }),
    )
    .await
    .assert_status(201);
    let token = latest_token(&smtp, "lea@isp.example", "/invitations/accept?token=").await;
    app.clock
        .advance(std::time::Duration::from_secs(8 * 24 * 3600));
    let page = get_page(&app, &format!("/invitations/accept?token={token}"), "fr").await;
    assert_eq!(page.status, 410);
    assert_page_headers(&page);
    assert!(page.html.contains("Ce lien a expiré"), "{}", page.html);
}

async fn a_share_link_page_logs_in_then_redeems_and_ends_its_session(backend: Backend) {
    let (_smtp, app) = with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let service = premium(&app, &alice).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &alice.token,
            json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
        )
        .await;
    let id = res.assert_status(201)["id"].as_str().unwrap().to_string();
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let link = link.assert_status(201).clone();
    let token = link["token"].as_str().unwrap().to_string();
    assert_eq!(
        link["url"],
        format!("{}/share-links/redeem?token={token}", app.address)
    );
    let page = get_page(&app, &format!("/share-links/redeem?token={token}"), "en").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("info@famille.example"));
    assert!(page.html.contains("send_email"));
    assert!(page.html.contains(r#"name="password""#));
    let ft = form_token(&page.html, "/share-links/redeem");
    let sessions = format!(
        "SELECT COUNT(*) FROM sessions WHERE account_id = '{}' AND revoked_at IS NULL",
        bob.account_id
    );
    let before = app.scalar_i64(&sessions).await;
    // A wrong password shows the form again, and takes no use.
    let wrong = post_page(
        &app,
        "/share-links/redeem",
        &[
            ("token", &token),
            ("form_token", &ft),
            ("login", &bob.login),
            ("password", "not the password"),
        ],
        None,
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.html.contains("The login or the password is wrong"));
    assert!(wrong.html.contains(r#"name="password""#));
    let done = post_page(
        &app,
        "/share-links/redeem",
        &[
            ("token", &token),
            ("form_token", &ft),
            ("login", &bob.login),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.html.contains("info@famille.example"));
    let mine = app.get("/v1/me/addresses", &bob.token).await;
    let mine = mine.assert_status(200).to_string();
    assert!(mine.contains("info@famille.example"), "{mine}");
    // The page's session ended with its one action.
    assert_eq!(app.scalar_i64(&sessions).await, before);
    // Used up (one use): a clear page.
    let page = get_page(&app, &format!("/share-links/redeem?token={token}"), "en").await;
    assert_eq!(page.status, 410);
    assert!(page.html.contains("This link was used up"));
}

async fn the_reset_page_refuses_a_weak_password_then_sets_a_good_one(backend: Backend) {
    let (smtp, app) = with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    app.post_anon("/v1/password-resets", json!({ "login": alice.login }))
        .await
        .assert_status(202);
    let token = latest_token(&smtp, &alice.login, "/password-reset?token=").await;
    let page = get_page(&app, &format!("/password-reset?token={token}"), "en").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(r#"name="new_password""#));
    let ft = form_token(&page.html, "/password-reset");
    let weak = post_page(
        &app,
        "/password-reset",
        &[
            ("token", &token),
            ("form_token", &ft),
            ("new_password", "short"),
        ],
        None,
    )
    .await;
    assert_eq!(weak.status, 422);
    assert!(weak.html.contains(r#"class="error""#));
    assert!(weak.html.contains(r#"name="new_password""#));
    app.login(&alice.login, PASSWORD).await.assert_status(200);
    let new_password = "purple giraffe dancing slowly";
    let done = post_page(
        &app,
        "/password-reset",
        &[
            ("token", &token),
            ("form_token", &ft),
            ("new_password", new_password),
        ],
        None,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.html);
    app.login(&alice.login, new_password)
        .await
        .assert_status(200);
    app.login(&alice.login, PASSWORD).await.assert_status(401);
}

async fn app_url_moves_the_links_in_emails_to_the_frontend(backend: Backend) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(smtp.url());
        c.app_url = Some("https://app.example/".into());
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let (id, token) = forward_to(&app, &smtp, &alice, "julie@home.example").await;
    let mail = smtp.matching("/forwards/confirm?token=").pop().unwrap();
    assert_eq!(
        link_in(&mail.data, "https://app.example"),
        format!("https://app.example/forwards/confirm?token={token}")
    );
    let link = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let link = link.assert_status(201).clone();
    assert_eq!(
        link["url"],
        format!(
            "https://app.example/share-links/redeem?token={}",
            link["token"].as_str().unwrap()
        )
    );
    app.post_anon("/v1/password-resets", json!({ "login": alice.login }))
        .await
        .assert_status(202);
    let token = latest_token(&smtp, &alice.login, "/password-reset?token=").await;
    let mail = smtp.matching("/password-reset?token=").pop().unwrap();
    assert_eq!(
        link_in(&mail.data, "https://app.example"),
        format!("https://app.example/password-reset?token={token}")
    );
}

/// A hidden value of a page's forms.
fn hidden_value(html: &str, name: &str) -> String {
    html.split(&format!(r#"name="{name}" value=""#))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

async fn a_member_invitation_page_asks_for_the_second_factor_of_an_account_that_has_one(
    backend: Backend,
) {
    let (smtp, app) = with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (_, recovery_codes) = crate::two_factor::enrol(&app, &bob).await;
    app.post(
        &format!("/v1/organizations/{}/members", alice.org_id),
        &alice.token,
        json!({ "login": bob.login, "role": "admin" }),
    )
    .await
    .assert_status(202);
    let token = latest_token(&smtp, &bob.login, "/member-invitations/accept?token=").await;
    let page = get_page(
        &app,
        &format!("/member-invitations/accept?token={token}"),
        "en",
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("alice@example.com"), "{}", page.html);
    assert!(page.html.contains("admin"));
    let ft = form_token(&page.html, "/member-invitations/accept");
    let members = || async {
        app.get(
            &format!("/v1/organizations/{}/members", alice.org_id),
            &alice.token,
        )
        .await
        .assert_status(200)
        .to_string()
    };
    // The password is right: the page asks for the code, carrying the challenge.
    let step = post_page(
        &app,
        "/member-invitations/accept",
        &[
            ("token", &token),
            ("form_token", &ft),
            ("login", &bob.login),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    assert_eq!(step.status, 200, "{}", step.html);
    assert!(step.html.contains(r#"name="code""#));
    assert!(!step.html.contains(r#"name="password""#));
    let challenge = hidden_value(&step.html, "challenge");
    assert!(!members().await.contains("bob@example.com"));
    // A wrong code asks again, with the same challenge.
    let wrong = post_page(
        &app,
        "/member-invitations/accept",
        &[
            ("token", &token),
            ("form_token", &ft),
            ("challenge", &challenge),
            ("code", "nope"),
        ],
        None,
    )
    .await;
    assert_eq!(wrong.status, 401, "{}", wrong.html);
    assert_eq!(hidden_value(&wrong.html, "challenge"), challenge);
    assert!(!members().await.contains("bob@example.com"));
    let done = post_page(
        &app,
        "/member-invitations/accept",
        &[
            ("token", &token),
            ("form_token", &ft),
            ("challenge", &challenge),
            ("code", &recovery_codes[0]),
        ],
        None,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.html.contains("Welcome"));
    assert!(members().await.contains("bob@example.com"));
    // Answered: the link's page says so.
    let page = get_page(
        &app,
        &format!("/member-invitations/accept?token={token}"),
        "en",
    )
    .await;
    assert_eq!(page.status, 410);
}
