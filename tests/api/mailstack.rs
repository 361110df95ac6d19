//! Issue 8 end to end: a real Postfix + Dovecot driven by Postier (README "Running a real mail
//! server on Postier"). Everything goes through Postier's API and real IMAP/SMTP clients;
//! the harness is `mail_stack`. Runs when Postfix, Dovecot, PostgreSQL and root are there,
//! and must run when `POSTIER_TEST_MAILSTACK=1` (CI).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::mail_stack::{
    count_in_inbox, imap_login_ok, imaps_login_ok, submit, wait_for_message, MailStack, FREE_DOMAIN,
};

const OWNER: &str = "owner@isp.example";
const OWNER_PASSWORD: &str = "correct horse battery staple";

/// Postier's API over HTTP, as a frontend would call it.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    #[track_caller]
    fn expect(status: StatusCode, body: Value, want: u16, what: &str) -> Value {
        assert_eq!(status.as_u16(), want, "{what}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Value, want: u16) -> Value {
        let (status, body) = self.call(Method::POST, path, &self.token, Some(body)).await;
        Self::expect(status, body, want, path)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, &self.token, None).await;
        Self::expect(status, body, 200, path)
    }

    /// Signs the owner up and logs in.
    async fn sign_up(stack: &MailStack) -> Api {
        let client = reqwest::Client::new();
        let credentials = json!({ "login": OWNER, "password": OWNER_PASSWORD });
        let res = client
            .post(stack.url("/v1/accounts"))
            .json(&credentials)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "sign up: {}", res.text().await.unwrap());
        let session: Value = client
            .post(stack.url("/v1/sessions"))
            .json(&credentials)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api {
            client,
            base: stack.api.clone(),
            token: session["access_token"].as_str().unwrap().to_string(),
        }
    }

    async fn create_service(&self, org: &str, domain: Option<&str>, pack: &str) -> String {
        let mut body = json!({ "pack": pack });
        if let Some(domain) = domain {
            body["domain"] = json!(domain);
        }
        let service = self
            .post(&format!("/v1/organizations/{org}/mail-services"), body, 201)
            .await;
        service["id"].as_str().unwrap().to_string()
    }

    /// An address `for: me`; returns its id.
    async fn create_address(&self, service: &str, local_part: &str, password: &str) -> String {
        let body = json!({ "local_part": local_part, "for": "me", "password": password });
        let address = self
            .post(&format!("/v1/mail-services/{service}/addresses"), body, 201)
            .await;
        address["id"].as_str().unwrap().to_string()
    }

    async fn create_generic(&self, service: &str, kind: &str, password: &str) -> Value {
        let body = json!({ "type": kind, "password": password });
        self.post(
            &format!("/v1/mail-services/{service}/addresses/generic"),
            body,
            201,
        )
        .await
    }

    /// Recipients the address sent to over the last 24 h, as the API shows them.
    async fn sent_last_24h(&self, address_id: &str) -> u64 {
        let usage = self
            .get(&format!("/v1/addresses/{address_id}/sending"))
            .await;
        usage["sent_last_24h"]
            .as_u64()
            .unwrap_or_else(|| panic!("no sent_last_24h in {usage}"))
    }
}

#[tokio::test]
async fn a_real_mail_server_runs_on_postier() {
    let started = Instant::now();
    let Some(stack) = MailStack::start().await else {
        return;
    };
    eprintln!("mail stack up in {:?}", started.elapsed());
    let imap = stack.ports.imap;
    let submission = stack.ports.submission;
    let api = Api::sign_up(&stack).await;
    let orgs = api.get("/v1/organizations").await;
    let org = orgs["items"][0]["id"].as_str().unwrap().to_string();

    // Two premium services (one gets a catchall, the other none) and a free one.
    let acme = api.create_service(&org, Some("acme.test"), "premium").await;
    let nocatch = api
        .create_service(&org, Some("nocatch.test"), "premium")
        .await;
    let free = api.create_service(&org, None, "free").await;
    // A password may not contain the address's local part: spell the name as digits.
    let pw = |name: &str| {
        let digits: String = name.bytes().map(|b| (b % 10).to_string()).collect();
        format!("purple tandem {digits} rides uphill")
    };
    let alice = api.create_address(&acme, "alice", &pw("alice")).await;
    let bob = api.create_address(&acme, "bob", &pw("bob")).await;
    api.create_address(&acme, "carol", &pw("carol")).await;
    api.create_address(&acme, "dave", &pw("dave")).await;
    api.create_address(&nocatch, "erin", &pw("erin")).await;
    let frank = api.create_address(&free, "frank", &pw("frank")).await;
    let frank_address = format!("frank@{FREE_DOMAIN}");
    let catchall = api.create_generic(&acme, "catchall", &pw("catchall")).await;
    assert_eq!(catchall["address"], "catchall@acme.test");
    let noreply = api.create_generic(&acme, "no_reply", &pw("noreply")).await;
    let noreply_address = noreply["address"].as_str().unwrap().to_string();
    // Created before alice sends anything: the policy service caches what a login owns for 5 s.
    api.post(
        &format!("/v1/addresses/{alice}/aliases"),
        json!({ "local_part": "sales" }),
        201,
    )
    .await;

    // 1. IMAP login of an address created `for: me`; a wrong password and an unknown address
    //    are refused.
    assert!(imap_login_ok(imap, "alice@acme.test", &pw("alice")).await);
    assert!(imap_login_ok(imap, "Alice@ACME.test", &pw("alice")).await);
    assert!(!imap_login_ok(imap, "alice@acme.test", &pw("bob")).await);
    assert!(!imap_login_ok(imap, "nobody@acme.test", &pw("alice")).await);
    assert!(imaps_login_ok(stack.ports.imaps, "alice@acme.test", &pw("alice")).await);
    assert!(!imaps_login_ok(stack.ports.imaps, "alice@acme.test", &pw("bob")).await);

    // 2. Submission (STARTTLS + AUTH) to three addresses of the domain: each INBOX has it.
    let three = ["bob@acme.test", "carol@acme.test", "dave@acme.test"];
    submit(
        submission,
        "alice@acme.test",
        &pw("alice"),
        "alice@acme.test",
        &three,
        "e2e-three",
    )
    .await
    .unwrap();
    for to in three {
        let name = to.split('@').next().unwrap();
        wait_for_message(imap, to, &pw(name), "e2e-three").await;
    }
    assert_eq!(api.sent_last_24h(&alice).await, 3);

    // 3. A free-pack address may not send to 11 recipients: Postier's policy service refuses
    //    and nothing is delivered (they would all land in the catchall).
    let eleven: Vec<String> = (1..=11).map(|i| format!("crowd{i}@acme.test")).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let refused = submit(
        submission,
        &frank_address,
        &pw("frank"),
        &frank_address,
        &eleven,
        "e2e-eleven",
    )
    .await
    .unwrap_err();
    assert!(refused.contains("5.5.3"), "{refused}");
    submit(
        submission,
        &frank_address,
        &pw("frank"),
        &frank_address,
        &["ctl@acme.test"],
        "e2e-control",
    )
    .await
    .unwrap();
    wait_for_message(imap, "catchall@acme.test", &pw("catchall"), "e2e-control").await;
    assert_eq!(
        count_in_inbox(imap, "catchall@acme.test", &pw("catchall"), "e2e-eleven").await,
        0
    );
    assert_eq!(api.sent_last_24h(&frank).await, 1);

    // 4. An envelope sender the login does not own is refused; its own alias is fine.
    let refused = submit(
        submission,
        "alice@acme.test",
        &pw("alice"),
        "bob@acme.test",
        &["carol@acme.test"],
        "e2e-spoof",
    )
    .await
    .unwrap_err();
    assert!(refused.contains("5.7.1"), "{refused}");
    submit(
        submission,
        "alice@acme.test",
        &pw("alice"),
        "sales@acme.test",
        &["sales@acme.test"],
        "e2e-alias",
    )
    .await
    .unwrap();
    wait_for_message(imap, "alice@acme.test", &pw("alice"), "e2e-alias").await;

    // 5. Unknown local part: the catchall's INBOX with a catchall, refused without one.
    submit(
        submission,
        "alice@acme.test",
        &pw("alice"),
        "alice@acme.test",
        &["no-such-person@acme.test"],
        "e2e-catchall",
    )
    .await
    .unwrap();
    wait_for_message(imap, "catchall@acme.test", &pw("catchall"), "e2e-catchall").await;
    let refused = submit(
        submission,
        "alice@acme.test",
        &pw("alice"),
        "alice@acme.test",
        &["no-such-person@nocatch.test"],
        "e2e-unknown",
    )
    .await
    .unwrap_err();
    assert!(refused.contains("550"), "{refused}");
    // The catchall reads its mail but cannot send; no-reply sends but has no mailbox.
    assert!(submit(
        submission,
        "catchall@acme.test",
        &pw("catchall"),
        "catchall@acme.test",
        &["bob@acme.test"],
        "e2e-x"
    )
    .await
    .is_err());
    assert!(!imap_login_ok(imap, &noreply_address, &pw("noreply")).await);
    submit(
        submission,
        &noreply_address,
        &pw("noreply"),
        &noreply_address,
        &["bob@acme.test"],
        "e2e-noreply",
    )
    .await
    .unwrap();
    wait_for_message(imap, "bob@acme.test", &pw("bob"), "e2e-noreply").await;
    let refused = submit(
        submission,
        "alice@acme.test",
        &pw("alice"),
        "alice@acme.test",
        &[noreply_address.as_str()],
        "e2e-to-noreply",
    )
    .await
    .unwrap_err();
    assert!(refused.contains("only sends mail"), "{refused}");

    // 6. A password change applies at the next login; so does a deletion.
    let new_password = "a green tandem 7 is now preferred";
    let changed_at = Instant::now();
    let (status, body) = api
        .call(
            Method::PUT,
            &format!("/v1/addresses/{bob}/password"),
            &api.token,
            Some(json!({ "new_password": new_password })),
        )
        .await;
    Api::expect(status, body, 200, "change bob's password");
    // The very first login after the answer: no cache may hold the old hash.
    assert!(
        imap_login_ok(imap, "bob@acme.test", new_password).await,
        "the first IMAP login after the change refused the new password"
    );
    eprintln!(
        "password change → first successful IMAP login: {:?}",
        changed_at.elapsed()
    );
    assert!(!imap_login_ok(imap, "bob@acme.test", &pw("bob")).await);
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/sessions/reauth",
            &api.token,
            Some(json!({ "password": OWNER_PASSWORD })),
        )
        .await;
    let fresh = Api::expect(status, body, 200, "reauth")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/v1/addresses/{bob}?confirm=bob@acme.test"),
            &fresh,
            None,
        )
        .await;
    assert!(status.is_success(), "delete bob: {body}");
    assert!(!imap_login_ok(imap, "bob@acme.test", new_password).await);

    // 7. An address for an external user whose invitation is pending: without a password
    //    nobody can log in; a password set by the owner works.
    let invited = |local: &str, password: Option<&str>| {
        let mut body = json!({
            "local_part": local,
            "for": "other_user",
            "invitee": { "email": format!("{local}@elsewhere.example") },
            "account_binding": "any",
        });
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        body
    };
    let guest = api
        .post(
            &format!("/v1/mail-services/{acme}/addresses"),
            invited("guest", None),
            201,
        )
        .await;
    assert_eq!(guest["invitation"]["status"], "pending", "{guest}");
    for guess in ["", OWNER_PASSWORD, &pw("guest")] {
        assert!(!imap_login_ok(imap, "guest@acme.test", guess).await);
    }
    assert_eq!(
        stack
            .sql_i64("SELECT COUNT(*) FROM mail_passwords WHERE address = 'guest@acme.test'")
            .await,
        0
    );
    api.post(
        &format!("/v1/mail-services/{acme}/addresses"),
        invited("guest2", Some(&pw("guest2"))),
        201,
    )
    .await;
    assert!(imap_login_ok(imap, "guest2@acme.test", &pw("guest2")).await);

    eprintln!("mail stack test done in {:?}", started.elapsed());
}

/// Measurements for the README (run by hand, not in CI):
/// `cargo test --test api mail_stack_measurements -- --ignored --nocapture`.
/// IMAP LOGIN+LOGOUT per second through Dovecot for an address hashed with Postier's
/// production argon2 parameters (m=19456, t=2, p=1), at several concurrencies; and the time
/// from `PUT /v1/addresses/{id}/password` to the first successful IMAP login.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn mail_stack_measurements() {
    let Some(stack) = MailStack::start().await else {
        return;
    };
    let imap = stack.ports.imap;
    let api = Api::sign_up(&stack).await;
    let orgs = api.get("/v1/organizations").await;
    let org = orgs["items"][0]["id"].as_str().unwrap().to_string();
    let acme = api.create_service(&org, Some("acme.test"), "premium").await;
    let password = "purple tandem 1121 rides uphill";
    let id = api.create_address(&acme, "bench", password).await;
    let hash: i64 = stack
        .sql_i64(
            "SELECT COUNT(*) FROM mail_passwords WHERE address = 'bench@acme.test' \
             AND password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'",
        )
        .await;
    assert_eq!(
        hash, 1,
        "the address is not hashed with the production parameters"
    );

    let seconds = 5;
    for concurrency in [1, 2, 4, 8] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let start = Instant::now();
                        assert!(imap_login_ok(imap, "bench@acme.test", password).await);
                        latencies.push(start.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        latencies.sort();
        eprintln!(
            "IMAP LOGIN+LOGOUT, concurrency {concurrency}: {:.1}/s, p50 {:?}, p95 {:?}",
            latencies.len() as f64 / seconds as f64,
            latencies[latencies.len() / 2],
            latencies[latencies.len() * 95 / 100],
        );
    }

    let mut delays = Vec::new();
    for round in 0..10 {
        let new_password = format!("green tandem round {round} rides uphill");
        let sent = Instant::now();
        let (status, body) = api
            .call(
                Method::PUT,
                &format!("/v1/addresses/{id}/password"),
                &api.token,
                Some(json!({ "new_password": new_password })),
            )
            .await;
        Api::expect(status, body, 200, "change the password");
        let answered = sent.elapsed();
        while !imap_login_ok(imap, "bench@acme.test", &new_password).await {
            assert!(sent.elapsed() < Duration::from_secs(5));
        }
        delays.push((sent.elapsed(), answered));
    }
    delays.sort();
    eprintln!(
        "password change → first successful IMAP login (from sending the PUT; the PUT itself took): {:?}",
        delays
    );
}
