//! Issues 8 and 14 end to end: a real Postfix + Dovecot driven by Postier (README "Running a
//! real mail server on Postier"): addresses, passwords, sending limits, and the mail clients'
//! credentials (device passwords over IMAP, POP3 and SMTP; mailbox tokens over XOAUTH2 and
//! OAUTHBEARER). Everything goes through Postier's API and real IMAP/POP3/SMTP clients; the
//! harness is `mail_stack`. Runs when Postfix, Dovecot, PostgreSQL and root are there, and
//! must run when `POSTIER_TEST_MAILSTACK=1` (CI).

use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::Mechanism;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::mail_stack::{
    count_in_inbox, imap_bearer_ok, imap_login_ok, imaps_bearer_ok, imaps_login_ok, pop3s_login_ok,
    submit, submit_bearer, submit_with, wait_for_message, wait_for_message_within, Bearer,
    MailStack, Pop3, FREE_DOMAIN,
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

    async fn delete(&self, path: &str, want: u16) -> Value {
        let (status, body) = self.call(Method::DELETE, path, &self.token, None).await;
        Self::expect(status, body, want, path)
    }

    async fn patch(&self, path: &str, body: Value, want: u16) -> Value {
        let (status, body) = self
            .call(Method::PATCH, path, &self.token, Some(body))
            .await;
        Self::expect(status, body, want, path)
    }

    /// A device password of the caller on the address: `(id, password)`.
    async fn device_password(&self, address_id: &str, body: Value) -> (String, String) {
        let created = self
            .post(
                &format!("/v1/addresses/{address_id}/device-passwords"),
                body,
                201,
            )
            .await;
        (
            created["id"].as_str().unwrap().to_string(),
            created["password"].as_str().unwrap().to_string(),
        )
    }

    /// A mailbox token of the caller for the address.
    async fn mailbox_token(&self, address_id: &str, body: Value) -> String {
        let issued = self
            .post(
                &format!("/v1/addresses/{address_id}/mailbox-tokens"),
                body,
                201,
            )
            .await;
        issued["token"].as_str().unwrap().to_string()
    }

    /// Gives `other` an access to the address with `permissions` (a share link it redeems).
    async fn share_with(&self, address_id: &str, other: &Api, permissions: Value) {
        let link = self
            .post(
                &format!("/v1/addresses/{address_id}/share-links"),
                json!({ "permissions": permissions }),
                201,
            )
            .await;
        other
            .post(
                "/v1/share-links/redeem",
                json!({ "token": link["token"] }),
                200,
            )
            .await;
    }

    /// Signs the owner up and logs in.
    async fn sign_up(stack: &MailStack) -> Api {
        Api::sign_up_as(stack, OWNER).await
    }

    /// Signs `login` up (with the owner's password) and logs in.
    async fn sign_up_as(stack: &MailStack, login: &str) -> Api {
        let client = reqwest::Client::new();
        let credentials = json!({ "login": login, "password": OWNER_PASSWORD });
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

/// Issue 14: the credentials of mail clients and of the webmail on the real daemons.
#[tokio::test]
async fn mail_clients_reach_the_mailbox_with_device_passwords_and_mailbox_tokens() {
    let started = Instant::now();
    let Some(stack) = MailStack::start().await else {
        return;
    };
    let p = stack.ports;
    let owner = Api::sign_up(&stack).await;
    let orgs = owner.get("/v1/organizations").await;
    let org = orgs["items"][0]["id"].as_str().unwrap().to_string();
    let acme = owner
        .create_service(&org, Some("acme.test"), "premium")
        .await;
    let address_password = "purple tandem 1121 rides uphill";
    let alice = owner.create_address(&acme, "alice", address_password).await;
    owner
        .create_address(&acme, "bob", "purple tandem 2222 rides uphill")
        .await;
    let a = "alice@acme.test";

    // 0. The generated Postfix tells senders of a message still undelivered after a few hours
    //    (the seed), and returns it after 5 days.
    assert_eq!(stack.postconf("delay_warning_time"), "4h");
    assert_eq!(stack.postconf("maximal_queue_lifetime"), "5d");
    assert_eq!(stack.postconf("bounce_queue_lifetime"), "5d");

    // 1. A device password (every protocol by default) logs in to IMAP, POP3 and SMTP AUTH
    //    beside the address password.
    let (device, printer) = owner
        .device_password(&alice, json!({ "label": "Phone" }))
        .await;
    assert!(imap_login_ok(p.imap, a, &printer).await);
    assert!(imaps_login_ok(p.imaps, a, &printer).await);
    assert!(pop3s_login_ok(p.pop3s, a, &printer).await);
    assert!(imap_login_ok(p.imap, a, address_password).await);
    submit(p.submission, a, &printer, a, &[a], "e2e-device-smtp")
        .await
        .unwrap();
    wait_for_message(p.imap, a, &printer, "e2e-device-smtp").await;
    // POP3 (995, TLS) retrieves the delivered message; plain POP3 is served where configured.
    let mut pop = Pop3::connect_tls(p.pop3s).await;
    assert!(pop.login(a, &printer).await);
    let n = pop.count().await;
    assert!(n >= 1);
    let retrieved = pop.retr(n).await;
    assert!(
        retrieved.contains("Subject: e2e-device-smtp"),
        "{retrieved}"
    );
    pop.quit().await;
    let mut pop = Pop3::connect(p.pop3).await;
    assert!(pop.login(a, address_password).await);
    pop.quit().await;
    // Its id with another secret, or on another address, is refused.
    let forged = format!("{}{}", &printer[..13], "x".repeat(50));
    assert!(!imap_login_ok(p.imap, a, &forged).await);
    assert!(!imap_login_ok(p.imap, "bob@acme.test", &printer).await);
    // The mail servers report its last use back within a minute.
    let deadline = Instant::now() + Duration::from_secs(10);
    let last_used = loop {
        let list = owner
            .get(&format!("/v1/addresses/{alice}/device-passwords"))
            .await;
        let item = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == device.as_str())
            .unwrap()
            .clone();
        if !item["last_used"].is_null() {
            break item["last_used"].clone();
        }
        assert!(Instant::now() < deadline, "no last use reported: {item}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(last_used["ip"], "127.0.0.1", "{last_used}");
    assert!(["imap", "pop3", "smtp"].contains(&last_used["protocol"].as_str().unwrap()));

    // 2. Protocols limit it: a scanner that only sends cannot read.
    let (_, scanner) = owner
        .device_password(&alice, json!({ "label": "Scanner", "protocols": ["smtp"] }))
        .await;
    assert!(!imap_login_ok(p.imap, a, &scanner).await);
    assert!(!pop3s_login_ok(p.pop3s, a, &scanner).await);
    submit(p.submission, a, &scanner, a, &[a], "e2e-scanner")
        .await
        .unwrap();
    let (_, reader) = owner
        .device_password(&alice, json!({ "label": "Reader", "protocols": ["imap"] }))
        .await;
    assert!(submit(p.submission, a, &reader, a, &[a], "e2e-x")
        .await
        .is_err());
    assert!(!pop3s_login_ok(p.pop3s, a, &reader).await);

    // 3. Revocation applies at the next login; so does expiry.
    let revoked_at = Instant::now();
    owner
        .delete(&format!("/v1/device-passwords/{device}"), 204)
        .await;
    assert!(
        !imap_login_ok(p.imap, a, &printer).await,
        "the first IMAP login after the revocation was accepted"
    );
    eprintln!(
        "revocation → first refused IMAP login: {:?}",
        revoked_at.elapsed()
    );
    assert!(!pop3s_login_ok(p.pop3s, a, &printer).await);
    assert!(submit(p.submission, a, &printer, a, &[a], "e2e-x")
        .await
        .is_err());
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (_, brief) = owner
        .device_password(&alice, json!({ "label": "Guest", "expires_at": soon }))
        .await;
    assert!(imap_login_ok(p.imap, a, &brief).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !imap_login_ok(p.imap, a, &brief).await,
        "an expired device password logged in"
    );
    let revoked = owner
        .delete(&format!("/v1/addresses/{alice}/device-passwords"), 200)
        .await;
    assert_eq!(revoked["revoked"], 3, "{revoked}");
    assert!(submit(p.submission, a, &scanner, a, &[a], "e2e-x")
        .await
        .is_err());
    assert!(!imap_login_ok(p.imap, a, &reader).await);
    assert!(imap_login_ok(p.imap, a, address_password).await);

    // 4. The webmail: another account with an access reaches the mailbox with mailbox tokens,
    //    never with its own password, over XOAUTH2 and OAUTHBEARER.
    let webmail = Api::sign_up_as(&stack, "julie@isp.example").await;
    owner
        .share_with(&alice, &webmail, json!(["send_email"]))
        .await;
    let token = webmail.mailbox_token(&alice, json!({})).await;
    for mechanism in [Bearer::Xoauth2, Bearer::Oauthbearer] {
        assert!(
            imap_bearer_ok(p.imap, mechanism, a, &token).await,
            "{mechanism:?}"
        );
        assert!(
            imaps_bearer_ok(p.imaps, mechanism, a, &token).await,
            "{mechanism:?}"
        );
        // Bound to its address, and only through the bearer mechanisms.
        assert!(!imap_bearer_ok(p.imap, mechanism, "bob@acme.test", &token).await);
        assert!(!imap_bearer_ok(p.imap, mechanism, a, address_password).await);
    }
    assert!(!imap_login_ok(p.imap, a, &token).await);
    assert!(!imap_login_ok(p.imap, a, OWNER_PASSWORD).await);
    assert!(!pop3s_login_ok(p.pop3s, a, &token).await);
    // Postfix submission accepts it: XOAUTH2 with STARTTLS (587), OAUTHBEARER on 465.
    submit_with(
        Mechanism::Xoauth2,
        p.submission,
        a,
        &token,
        a,
        &[a],
        "e2e-xoauth2",
    )
    .await
    .unwrap();
    submit_bearer(
        Bearer::Oauthbearer,
        p.submissions,
        a,
        &token,
        a,
        &[a],
        "e2e-oauthbearer",
    )
    .await
    .unwrap();
    submit_bearer(
        Bearer::Xoauth2,
        p.submissions,
        a,
        &token,
        a,
        &[a],
        "e2e-xoauth2-465",
    )
    .await
    .unwrap();
    for subject in ["e2e-xoauth2", "e2e-oauthbearer", "e2e-xoauth2-465"] {
        wait_for_message(p.imap, a, address_password, subject).await;
    }
    // The policy service counted them under the address.
    assert!(owner.sent_last_24h(&alice).await >= 5);
    // A read-only token cannot send.
    let read_only = webmail
        .mailbox_token(&alice, json!({ "scopes": ["imap"] }))
        .await;
    assert!(imap_bearer_ok(p.imap, Bearer::Xoauth2, a, &read_only).await);
    let refused = submit_bearer(
        Bearer::Oauthbearer,
        p.submissions,
        a,
        &read_only,
        a,
        &[a],
        "e2e-x",
    )
    .await
    .unwrap_err();
    assert!(refused.starts_with("535"), "{refused}");
    // An expired token is refused (its expiry moved into the past, as time would).
    let expired = webmail.mailbox_token(&alice, json!({})).await;
    assert!(imap_bearer_ok(p.imap, Bearer::Xoauth2, a, &expired).await);
    stack
        .sql(&format!(
            "UPDATE mailbox_tokens SET expires_at = now() - interval '1 second' \
             WHERE token_hash = encode(sha256('{expired}'::text::bytea), 'hex')"
        ))
        .await;
    assert!(!imap_bearer_ok(p.imap, Bearer::Xoauth2, a, &expired).await);
    assert!(imap_bearer_ok(p.imap, Bearer::Xoauth2, a, &token).await);

    // 5. Losing send_email stops sending at the next login, reading goes on; losing the
    //    access stops everything, device passwords included.
    let webmail_id = webmail.get("/v1/me").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, julies_phone) = webmail
        .device_password(&alice, json!({ "label": "Julie's phone" }))
        .await;
    assert!(imap_login_ok(p.imap, a, &julies_phone).await);
    owner
        .patch(
            &format!("/v1/addresses/{alice}/users/{webmail_id}"),
            json!({ "permissions": [] }),
            200,
        )
        .await;
    assert!(submit_with(
        Mechanism::Xoauth2,
        p.submission,
        a,
        &token,
        a,
        &[a],
        "e2e-x"
    )
    .await
    .is_err());
    assert!(submit(p.submission, a, &julies_phone, a, &[a], "e2e-x")
        .await
        .is_err());
    assert!(imap_bearer_ok(p.imap, Bearer::Oauthbearer, a, &token).await);
    assert!(imap_login_ok(p.imap, a, &julies_phone).await);
    owner
        .delete(&format!("/v1/addresses/{alice}/users/{webmail_id}"), 204)
        .await;
    assert!(!imap_bearer_ok(p.imap, Bearer::Oauthbearer, a, &token).await);
    assert!(!imap_bearer_ok(p.imap, Bearer::Xoauth2, a, &read_only).await);
    assert!(!imap_login_ok(p.imap, a, &julies_phone).await);
    let (status, _) = webmail
        .call(
            Method::POST,
            &format!("/v1/addresses/{alice}/mailbox-tokens"),
            &webmail.token,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
    // No secret ever reached the logs of the daemons.
    for log in ["dovecot.log", "postfix.log"] {
        let text = std::fs::read_to_string(stack.dir.join("log").join(log)).unwrap();
        for secret in [&token, &read_only, &printer, &scanner, &julies_phone] {
            assert!(!text.contains(secret.as_str()), "a secret is in {log}");
        }
    }
    eprintln!("mail clients test done in {:?}", started.elapsed());
}

/// Issue 14 (seed: delays are told): a message that cannot leave is announced to its sender
/// while it is retried, then returned with a final notice. Postfix's timings are shortened
/// for the test (6 s and 20 s instead of 4 h and 5 days, retries every 2 s); the default
/// values are asserted by the test above.
#[tokio::test]
async fn a_message_that_cannot_leave_is_announced_to_its_sender_then_returned() {
    // A relay that refuses every connection: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let relay = format!("[127.0.0.1]:{closed}");
    let options = ["--delay-warning-time", "6s", "--queue-lifetime", "20s"];
    let Some(stack) = MailStack::start_with(&relay, &options).await else {
        return;
    };
    assert_eq!(stack.postconf("delay_warning_time"), "6s");
    assert_eq!(stack.postconf("maximal_queue_lifetime"), "20s");
    stack.postfix_set(&[
        "queue_run_delay = 2s",
        "minimal_backoff_time = 2s",
        "maximal_backoff_time = 4s",
    ]);
    let p = stack.ports;
    let owner = Api::sign_up(&stack).await;
    let orgs = owner.get("/v1/organizations").await;
    let org = orgs["items"][0]["id"].as_str().unwrap().to_string();
    let acme = owner
        .create_service(&org, Some("acme.test"), "premium")
        .await;
    let password = "purple tandem 1121 rides uphill";
    owner.create_address(&acme, "alice", password).await;
    let a = "alice@acme.test";
    submit(
        p.submission,
        a,
        password,
        a,
        &["someone@faraway.test"],
        "e2e-far-away",
    )
    .await
    .unwrap();
    let within = Duration::from_secs(60);
    wait_for_message_within(p.imap, a, password, "Delayed Mail", within).await;
    wait_for_message_within(p.imap, a, password, "Undelivered Mail Returned", within).await;
    // Both notices, as the sender reads them (POP3).
    let mut pop = Pop3::connect_tls(p.pop3s).await;
    assert!(pop.login(a, password).await);
    let mut notices = Vec::new();
    for n in 1..=pop.count().await {
        notices.push(pop.retr(n).await);
    }
    pop.quit().await;
    let find = |subject: &str| {
        notices
            .iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .unwrap_or_else(|| panic!("no {subject:?} among {notices:?}"))
            .clone()
    };
    let delayed = find("Delayed Mail (still being retried)");
    assert!(delayed.contains("THIS IS A WARNING ONLY"), "{delayed}");
    assert!(delayed.contains("Action: delayed"), "{delayed}");
    assert!(delayed.contains("Will-Retry-Until:"), "{delayed}");
    assert!(delayed.contains("someone@faraway.test"));
    let returned = find("Undelivered Mail Returned to Sender");
    assert!(returned.contains("Action: failed"), "{returned}");
    assert!(returned.contains("Subject: e2e-far-away"), "{returned}");
}

/// Logins per second for `seconds` at `concurrency` clients, each login being `login()`
/// (which must succeed), printed with its latency percentiles under `what`.
async fn login_rate<F, Fut>(what: &'static str, concurrency: usize, seconds: u64, login: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let login = login.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    assert!(login().await, "{what}: a login was refused");
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
        "{what}, concurrency {concurrency}: {:.1}/s, p50 {:?}, p95 {:?}",
        latencies.len() as f64 / seconds as f64,
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 95 / 100],
    );
}

/// Measurements for the README (run by hand, not in CI):
/// `cargo test --test api mail_stack_measurements -- --ignored --nocapture`.
/// IMAP LOGIN+LOGOUT per second through Dovecot for an address hashed with Postier's
/// production argon2 parameters (m=19456, t=2, p=1), with a device password (same
/// parameters) and with a mailbox token (XOAUTH2), at several concurrencies; the time from
/// `PUT /v1/addresses/{id}/password` to the first successful IMAP login, and from
/// `DELETE /v1/device-passwords/{id}` to the first refused one.
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
    let user = "bench@acme.test";
    let (_, device) = api.device_password(&id, json!({ "label": "bench" })).await;
    let token = api.mailbox_token(&id, json!({ "scopes": ["imap"] })).await;
    let production = stack
        .sql_i64(
            "SELECT (SELECT COUNT(*) FROM mail_passwords WHERE address = 'bench@acme.test' \
             AND password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%') \
             + (SELECT COUNT(*) FROM device_passwords \
                WHERE password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%')",
        )
        .await;
    assert_eq!(
        production, 2,
        "the address or its device password is not hashed with the production parameters"
    );

    let seconds = 5;
    for concurrency in [1, 2, 4, 8] {
        login_rate(
            "IMAP LOGIN+LOGOUT, address password",
            concurrency,
            seconds,
            move || imap_login_ok(imap, user, password),
        )
        .await;
    }
    for concurrency in [1, 8] {
        let device = device.clone();
        login_rate(
            "IMAP LOGIN+LOGOUT, device password",
            concurrency,
            seconds,
            move || {
                let device = device.clone();
                async move { imap_login_ok(imap, user, &device).await }
            },
        )
        .await;
    }
    for concurrency in [1, 8] {
        let token = token.clone();
        login_rate(
            "IMAP AUTHENTICATE XOAUTH2+LOGOUT, mailbox token",
            concurrency,
            seconds,
            move || {
                let token = token.clone();
                async move { imap_bearer_ok(imap, Bearer::Xoauth2, user, &token).await }
            },
        )
        .await;
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

    // A refused login costs what Dovecot takes to refuse (no failed-login delay here).
    let started = Instant::now();
    assert!(!imap_login_ok(imap, user, "pst_nothing0_wrong").await);
    eprintln!(
        "a refused IMAP login (wrong password): {:?}",
        started.elapsed()
    );
    let mut delays = Vec::new();
    for round in 0..10 {
        let (device_id, secret) = api
            .device_password(&id, json!({ "label": format!("round {round}") }))
            .await;
        assert!(imap_login_ok(imap, user, &secret).await);
        let sent = Instant::now();
        api.delete(&format!("/v1/device-passwords/{device_id}"), 204)
            .await;
        let answered = sent.elapsed();
        // The very first login after the answer is refused (the e2e test asserts it).
        assert!(!imap_login_ok(imap, user, &secret).await);
        delays.push((sent.elapsed(), answered));
    }
    delays.sort();
    eprintln!(
        "revocation → first refused IMAP login (from sending the DELETE; the DELETE itself took): {:?}",
        delays
    );
}
