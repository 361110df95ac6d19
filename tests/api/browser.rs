//! Real headless Chromium (Debian's `chromium` and `chromium-driver`) through chromedriver:
//! the links of real e-mails opened and their buttons pressed, each result checked through
//! the API; and the Swagger UI at `/docs/` working offline. Skipped, saying why, when the
//! browser is missing, unless `POSTIER_TEST_BROWSER=1` (CI) makes that a failure.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::addresses::premium;
use crate::helpers::{latest_token, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::on_both_backends;
use crate::pages::{forward_to, link_in};
use crate::smtp_server::TestSmtp;

on_both_backends!(
    a_browser_confirms_a_forward_and_redeems_a_share_link,
    a_browser_accepts_an_address_invitation_and_a_member_invitation,
    a_browser_verifies_a_login_then_resets_the_password,
    the_docs_page_lists_every_operation_and_runs_a_try_it_out_call,
);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long an element may take to appear (generous: two cores, several test threads).
const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver of this test's own and one Chromium session. Chromedriver leads its own
/// process group, Chromium's processes included: dropping kills that group, whatever way
/// the test ended.
struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.driver.id()) {
            kill_group(group);
        }
        let _ = self.driver.wait();
    }
}

/// SIGKILL to the process group `group` (the chromedriver this test spawned leads it), with
/// kill(1): the crate denies `unsafe` outside `src/sys.rs`, and `libc::kill` needs it.
fn kill_group(group: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Browser {
    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    async fn start() -> Option<Self> {
        let required = std::env::var("POSTIER_TEST_BROWSER").as_deref() == Ok("1");
        for needed in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(needed).exists() {
                assert!(
                    !required,
                    "POSTIER_TEST_BROWSER=1 but {needed} is missing (apt-get install chromium chromium-driver)"
                );
                eprintln!("skipped: {needed} is missing (apt-get install chromium chromium-driver; POSTIER_TEST_BROWSER=1 makes this a failure)");
                return None;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            client: None,
            driver,
            profile,
        };
        let url = format!("http://127.0.0.1:{port}");
        let status = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(res) = status.get(format!("{url}/status")).send().await {
                let body: Value = res.json().await.unwrap_or(Value::Null);
                if body["value"]["ready"] == true {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "chromedriver did not start on port {port}");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // Running as root (CI) needs it; the pages are our own.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-extensions",
                    "--no-first-run",
                    "--lang=en-US",
                    format!("--user-data-dir={}", browser.profile.path().display()),
                    // No host but the loopback resolves: the pages and /docs/ must work offline.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                ],
                "prefs": { "intl.accept_languages": "en-US,en" },
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a Chromium session");
        browser.client = Some(client);
        Some(browser)
    }

    async fn open(&self, url: &str) {
        self.client().goto(url).await.unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let input = self
            .client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        input.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        let element = self
            .client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        element.click().await.unwrap();
    }

    /// Waits for the page whose heading is `title`.
    async fn heading(&self, title: &str) {
        let xpath = format!("//h1[normalize-space()=\"{title}\"]");
        if let Err(e) = self
            .client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(&xpath))
            .await
        {
            let source = self.client().source().await.unwrap_or_default();
            panic!("no heading {title:?} ({e}) in {source}");
        }
    }
}

async fn app_with_smtp(backend: Backend) -> (TestSmtp, TestApp) {
    let smtp = TestSmtp::start().await;
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(smtp.url())).await;
    (smtp, app)
}

/// The link of the latest message to `recipient` holding `path`.
async fn emailed_link(smtp: &TestSmtp, app: &TestApp, recipient: &str, path: &str) -> String {
    latest_token(smtp, recipient, path).await;
    let mail = smtp
        .received()
        .into_iter()
        .rev()
        .find(|m| m.to == vec![recipient.to_string()] && m.data.contains(path))
        .unwrap();
    let link = link_in(&mail.data, &app.address);
    assert!(link.contains(path), "{link}");
    link
}

async fn a_browser_confirms_a_forward_and_redeems_a_share_link(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (smtp, app) = app_with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (id, _) = forward_to(&app, &smtp, &alice, "julie@home.example").await;
    let link = emailed_link(
        &smtp,
        &app,
        "julie@home.example",
        "/forwards/confirm?token=",
    )
    .await;
    browser.open(&link).await;
    browser.heading("Forwarding to you").await;
    browser
        .click(r#"form[action="/forwards/confirm"] button"#)
        .await;
    browser.heading("Forwarding confirmed").await;
    let list = app
        .get(&format!("/v1/addresses/{id}/forwards"), &alice.token)
        .await;
    assert_eq!(list.assert_status(200)["items"][0]["confirmed"], true);
    // A share link (handed out, not e-mailed): log in on the page, then redeem.
    let created = app
        .post(
            &format!("/v1/addresses/{id}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let url = created.assert_status(201)["url"]
        .as_str()
        .unwrap()
        .to_string();
    browser.open(&url).await;
    browser.heading("Use a share link").await;
    browser.fill(r#"input[name="login"]"#, &bob.login).await;
    browser.fill(r#"input[name="password"]"#, PASSWORD).await;
    browser
        .click(r#"form[action="/share-links/redeem"] button"#)
        .await;
    browser.heading("Access given").await;
    let mine = app.get("/v1/me/addresses", &bob.token).await;
    assert!(mine
        .assert_status(200)
        .to_string()
        .contains("compta@famille.example"));
    let links = app
        .get(&format!("/v1/addresses/{id}/share-links"), &alice.token)
        .await;
    assert_eq!(links.assert_status(200)["items"][0]["uses"], 1);
}

async fn a_browser_accepts_an_address_invitation_and_a_member_invitation(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (smtp, app) = app_with_smtp(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    app.post(
        &format!("/v1/mail-services/{service}/addresses"),
        &alice.token,
        json!({ "local_part": "paul", "for": "other_user", "invitee": { "email": "paul@isp.example" }, "account_binding": "any", "permissions": ["send_email"] }),
    )
    .await
    .assert_status(201);
    let link = emailed_link(
        &smtp,
        &app,
        "paul@isp.example",
        "/invitations/accept?token=",
    )
    .await;
    let paul = app.user("paul@isp.example").await;
    browser.open(&link).await;
    browser.heading("Accept an invitation").await;
    browser.fill(r#"input[name="login"]"#, &paul.login).await;
    browser.fill(r#"input[name="password"]"#, PASSWORD).await;
    browser
        .click(r#"form[action="/invitations/accept"] button"#)
        .await;
    browser.heading("Invitation accepted").await;
    let mine = app.get("/v1/me/addresses", &paul.token).await;
    assert!(mine
        .assert_status(200)
        .to_string()
        .contains("paul@famille.example"));
    // Joining an organization, as an account with another login than the invited one.
    app.post(
        &format!("/v1/organizations/{}/members", alice.org_id),
        &alice.token,
        json!({ "login": "zoe@elsewhere.example", "role": "user" }),
    )
    .await
    .assert_status(202);
    let link = emailed_link(
        &smtp,
        &app,
        "zoe@elsewhere.example",
        "/member-invitations/accept?token=",
    )
    .await;
    let zoe = app.user("zoe.perso@example.com").await;
    browser.open(&link).await;
    browser.heading("Join an organization").await;
    browser.fill(r#"input[name="login"]"#, &zoe.login).await;
    browser.fill(r#"input[name="password"]"#, PASSWORD).await;
    browser
        .click(r#"form[action="/member-invitations/accept"] button"#)
        .await;
    browser.heading("Welcome").await;
    let members = app
        .get(
            &format!("/v1/organizations/{}/members", alice.org_id),
            &alice.token,
        )
        .await;
    assert!(members
        .assert_status(200)
        .to_string()
        .contains("zoe.perso@example.com"));
}

async fn a_browser_verifies_a_login_then_resets_the_password(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (smtp, app) = app_with_smtp(backend).await;
    let carol = app.unverified_user("carol@example.com").await;
    let link = emailed_link(&smtp, &app, &carol.login, "/accounts/verify?token=").await;
    browser.open(&link).await;
    browser.heading("Confirm your login").await;
    assert_eq!(
        app.get("/v1/me", &carol.token).await.assert_status(200)["login_verified"],
        false
    );
    browser
        .click(r#"form[action="/accounts/verify"] button"#)
        .await;
    browser.heading("Login verified").await;
    assert_eq!(
        app.get("/v1/me", &carol.token).await.assert_status(200)["login_verified"],
        true
    );
    app.post_anon("/v1/password-resets", json!({ "login": carol.login }))
        .await
        .assert_status(202);
    let link = emailed_link(&smtp, &app, &carol.login, "/password-reset?token=").await;
    browser.open(&link).await;
    browser.heading("Choose a new password").await;
    let new_password = "purple giraffe dancing slowly";
    browser
        .fill(r#"input[name="new_password"]"#, new_password)
        .await;
    browser
        .click(r#"form[action="/password-reset"] button"#)
        .await;
    browser.heading("Password changed").await;
    app.login(&carol.login, new_password)
        .await
        .assert_status(200);
    app.login(&carol.login, PASSWORD).await.assert_status(401);
}

async fn the_docs_page_lists_every_operation_and_runs_a_try_it_out_call(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app_with(backend, |_| {}).await;
    let spec: Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let operations = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().keys())
        .filter(|m| methods.contains(&m.as_str()))
        .count();
    assert!(operations > 50, "{operations}");
    browser.open(&format!("{}/docs/", app.address)).await;
    browser
        .click("#operations-operations-healthz .opblock-summary")
        .await;
    // Every operation is a block (the webhooks are listed apart, not counted here).
    let client = browser.client();
    let mut shown = 0;
    for _ in 0..300 {
        shown = client
            .find_all(Locator::Css(".opblock-tag-section .opblock"))
            .await
            .unwrap()
            .len();
        if shown >= operations {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown, operations, "operation blocks on /docs/");
    browser
        .click("#operations-operations-healthz button.try-out__btn")
        .await;
    browser
        .click("#operations-operations-healthz button.execute")
        .await;
    let status = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(
            "#operations-operations-healthz .live-responses-table tbody .response-col_status",
        ))
        .await
        .unwrap();
    assert_eq!(status.text().await.unwrap().trim(), "200");
    let body = client
        .find(Locator::Css(
            "#operations-operations-healthz .live-responses-table tbody .response-col_description",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("ok") || body.contains("status"), "{body}");
    // Nothing was fetched from anywhere but this server.
    let resources = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);",
            vec![],
        )
        .await
        .unwrap();
    let resources = resources.as_array().unwrap();
    assert!(resources.len() > 2, "{resources:?}");
    for url in resources {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&app.address) || url.starts_with("data:"),
            "{url} is not this server"
        );
    }
}
