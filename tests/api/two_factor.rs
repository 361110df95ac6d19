//! Two-factor login (TOTP, RFC 6238): enrolment, the login challenge and its code, recovery
//! codes, replays, step-up, turning it off, throttling. Codes are computed with `totp-lite`,
//! an implementation independent of the one Postier uses, at the app's (movable) clock.

use std::time::Duration;

use serde_json::{json, Value};
use totp_lite::Sha1;

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestUser, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    enrolment_shows_the_secret_once_and_turns_on_only_with_a_valid_code,
    with_two_factor_on_a_login_needs_the_challenge_and_a_code_accepted_once,
    a_recovery_code_replaces_a_totp_code_once,
    step_up_needs_the_code_and_turning_two_factor_off_needs_a_recent_proof,
    wrong_second_factor_codes_are_throttled_like_passwords,
);

/// RFC 4648 base32 (no padding), as authenticator apps read the secret.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base32") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// The code of `secret` (base32) at the app's clock, shifted by `steps` of 30 seconds.
fn code(app: &TestApp, secret: &str, steps: i64) -> String {
    let at = app.clock.now().timestamp() + steps * 30;
    totp_lite::totp_custom::<Sha1>(30, 6, &base32_decode(secret), at as u64)
}

/// A code that no step within the accepted drift has.
fn wrong_code(app: &TestApp, secret: &str) -> String {
    let near: Vec<String> = (-1..=1).map(|s| code(app, secret, s)).collect();
    ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap()
        .to_string()
}

/// Enrols an authenticator for `user` and answers its secret and recovery codes; the clock
/// then moves on one step, so that the next code is a fresh one.
pub async fn enrol(app: &TestApp, user: &TestUser) -> (String, Vec<String>) {
    let res = app.post("/v1/me/totp", &user.token, json!({})).await;
    let secret = res.assert_status(201)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .post(
            "/v1/me/totp/confirm",
            &user.token,
            json!({ "code": code(app, &secret, 0) }),
        )
        .await;
    let codes = res.assert_status(200)["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    app.clock.advance(Duration::from_secs(30));
    (secret, codes)
}

/// Logs in with the password and answers the `second_factor_required` problem.
async fn challenge(app: &TestApp, user: &TestUser) -> Value {
    let res = app.login(&user.login, &user.password).await;
    res.assert_problem(401, "second_factor_required");
    res.body.clone()
}

async fn second_factor(
    app: &TestApp,
    challenge: &Value,
    code: &str,
) -> crate::helpers::TestResponse {
    app.post_anon(
        "/v1/sessions/second-factor",
        json!({ "challenge": challenge["challenge"], "code": code }),
    )
    .await
}

async fn enrolment_shows_the_secret_once_and_turns_on_only_with_a_valid_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let other = app.login(&alice.login, PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Enrolling needs a recent password proof.
    app.clock.advance(Duration::from_secs(601));
    app.post("/v1/me/totp", &alice.token, json!({}))
        .await
        .assert_problem(403, "reauthentication_required");
    let token = app.reauth(&alice).await;
    let res = app.post("/v1/me/totp", &token, json!({})).await;
    let started = res.assert_status(201).clone();
    let secret = started["secret"].as_str().unwrap().to_string();
    assert_eq!(base32_decode(&secret).len(), 20);
    assert_eq!(
        started["otpauth_uri"],
        format!("otpauth://totp/Postier:alice%40example.com?secret={secret}&issuer=Postier")
    );
    // The secret is stored sealed: not as it was shown.
    let stored = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM totp_credentials WHERE secret_sealed LIKE '%{secret}%'"
        ))
        .await;
    assert_eq!(stored, 0);
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.assert_status(200)["two_factor_enabled"], false);
    // Not on before a valid code comes back: the password alone still logs in.
    app.login(&alice.login, PASSWORD).await.assert_status(200);
    let wrong = &wrong_code(&app, &secret);
    app.post("/v1/me/totp/confirm", &token, json!({ "code": wrong }))
        .await
        .assert_problem(403, "second_factor_incorrect");
    let res = app
        .post(
            "/v1/me/totp/confirm",
            &token,
            json!({ "code": code(&app, &secret, 0) }),
        )
        .await;
    let codes = res.assert_status(200)["recovery_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(codes.len(), 10);
    let mut unique: Vec<&str> = codes.iter().map(|c| c.as_str().unwrap()).collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    assert!(unique
        .iter()
        .all(|c| c.len() == 19 && c.matches('-').count() == 3));
    // Stored as hashes only.
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM recovery_codes").await,
        10
    );
    for c in &unique {
        let plain = app
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM recovery_codes WHERE code_hash LIKE '%{c}%'"
            ))
            .await;
        assert_eq!(plain, 0);
    }
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.assert_status(200)["two_factor_enabled"], true);
    // The sessions that proved the password only end.
    app.get("/v1/me", &other)
        .await
        .assert_problem(401, "unauthenticated");
    app.post("/v1/me/totp", &token, json!({}))
        .await
        .assert_problem(409, "totp_already_enabled");
    app.post(
        "/v1/me/totp/confirm",
        &token,
        json!({ "code": code(&app, &secret, 0) }),
    )
    .await
    .assert_problem(409, "totp_already_enabled");
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &token,
        )
        .await;
    let events = events.assert_status(200).clone();
    assert_eq!(events["items"][0]["action"], "account.totp_enabled");
    let text = events.to_string();
    assert!(!text.contains(&secret));
    assert!(unique.iter().all(|c| !text.contains(c)));
}

async fn with_two_factor_on_a_login_needs_the_challenge_and_a_code_accepted_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let (secret, _) = enrol(&app, &alice).await;
    // The password alone gives no tokens, only a challenge.
    let res = app.login(&alice.login, PASSWORD).await;
    res.assert_problem(401, "second_factor_required");
    assert!(res.body.get("access_token").is_none());
    assert_eq!(
        res.headers["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"postier\""
    );
    let first = res.body.clone();
    let challenge_text = first["challenge"].as_str().unwrap().to_string();
    assert_eq!(challenge_text.len(), 43);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM account_tokens WHERE token_hash = '{challenge_text}'"
        ))
        .await,
        0
    );
    // A wrong password still says nothing about the second factor.
    app.login(&alice.login, "not the password at all")
        .await
        .assert_problem(401, "invalid_credentials");
    let wrong = &wrong_code(&app, &secret);
    second_factor(&app, &first, wrong)
        .await
        .assert_problem(401, "second_factor_invalid");
    // One step of drift either way is accepted (the previous step was not used yet); the
    // wrong code did not spend the challenge.
    app.clock.advance(Duration::from_secs(30));
    let now = code(&app, &secret, -1);
    let res = second_factor(&app, &first, &now).await;
    let session = res.assert_status(200).clone();
    let token = session["access_token"].as_str().unwrap();
    app.get("/v1/me", token).await.assert_status(200);
    // The challenge is spent, and the code cannot be replayed within its window.
    second_factor(&app, &first, &code(&app, &secret, 0))
        .await
        .assert_problem(401, "second_factor_challenge_invalid");
    let again = challenge(&app, &alice).await;
    second_factor(&app, &again, &now)
        .await
        .assert_problem(401, "second_factor_invalid");
    second_factor(&app, &again, &code(&app, &secret, 0))
        .await
        .assert_status(200);
    // A challenge lives five minutes.
    app.clock.advance(Duration::from_secs(30));
    let late = challenge(&app, &alice).await;
    app.clock.advance(Duration::from_secs(301));
    second_factor(&app, &late, &code(&app, &secret, 0))
        .await
        .assert_problem(401, "second_factor_challenge_invalid");
    second_factor(
        &app,
        &json!({ "challenge": "not a challenge" }),
        &code(&app, &secret, 0),
    )
    .await
    .assert_problem(401, "second_factor_challenge_invalid");
    let events = app
        .scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'session.created'")
        .await;
    // Alice's first login, and the two that passed the second factor.
    assert_eq!(events, 3);
}

async fn a_recovery_code_replaces_a_totp_code_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let (_, codes) = enrol(&app, &alice).await;
    let first = challenge(&app, &alice).await;
    // Typed with spaces and capitals, it is the same code.
    let typed = codes[3].to_uppercase().replace('-', " ");
    second_factor(&app, &first, &typed).await.assert_status(200);
    let again = challenge(&app, &alice).await;
    second_factor(&app, &again, &codes[3])
        .await
        .assert_problem(401, "second_factor_invalid");
    let res = second_factor(&app, &again, &codes[4]).await;
    let token = res.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL")
            .await,
        8
    );
    let events = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &token,
        )
        .await;
    let used: Vec<Value> = events.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "account.recovery_code_used")
        .cloned()
        .collect();
    assert_eq!(used.len(), 2);
    assert_eq!(used[0]["details"]["remaining"], 8);
    assert!(!events.text.contains(&codes[3]) && !events.text.contains(&codes[4]));
}

async fn step_up_needs_the_code_and_turning_two_factor_off_needs_a_recent_proof(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let (secret, codes) = enrol(&app, &alice).await;
    let res = app
        .post(
            "/v1/sessions/reauth",
            &alice.token,
            json!({ "password": PASSWORD }),
        )
        .await;
    res.assert_problem(401, "second_factor_required");
    assert!(res.body.get("challenge").is_none());
    let wrong = &wrong_code(&app, &secret);
    app.post(
        "/v1/sessions/reauth",
        &alice.token,
        json!({ "password": PASSWORD, "code": wrong }),
    )
    .await
    .assert_problem(403, "second_factor_incorrect");
    app.post(
        "/v1/sessions/reauth",
        &alice.token,
        json!({ "password": "not the password at all", "code": code(&app, &secret, 0) }),
    )
    .await
    .assert_problem(403, "password_incorrect");
    // An old proof does not turn two-factor login off.
    app.clock.advance(Duration::from_secs(601));
    app.delete("/v1/me/totp", &alice.token)
        .await
        .assert_problem(403, "reauthentication_required");
    let res = app
        .post(
            "/v1/sessions/reauth",
            &alice.token,
            json!({ "password": PASSWORD, "code": code(&app, &secret, 0) }),
        )
        .await;
    let fresh = res.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete("/v1/me/totp", &fresh).await.assert_status(204);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM recovery_codes").await,
        0
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM totp_credentials")
            .await,
        0
    );
    app.delete("/v1/me/totp", &fresh)
        .await
        .assert_problem(409, "totp_not_enabled");
    // Off: the password alone logs in, and recovery codes mean nothing any more.
    app.login(&alice.login, PASSWORD).await.assert_status(200);
    app.post(
        "/v1/sessions/reauth",
        &fresh,
        json!({ "password": PASSWORD }),
    )
    .await
    .assert_status(200);
    let _ = codes;
    let actions = app
        .scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'account.totp_disabled'")
        .await;
    assert_eq!(actions, 1);
}

async fn wrong_second_factor_codes_are_throttled_like_passwords(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle.failures_per_login_and_ip = 3).await;
    let alice = app.user("alice@example.com").await;
    let (secret, _) = enrol(&app, &alice).await;
    let first = challenge(&app, &alice).await;
    let wrong = &wrong_code(&app, &secret);
    for _ in 0..3 {
        second_factor(&app, &first, wrong)
            .await
            .assert_problem(401, "second_factor_invalid");
    }
    // Even the right code is refused while the account is throttled.
    let res = second_factor(&app, &first, &code(&app, &secret, 0)).await;
    res.assert_problem(429, "too_many_requests");
    let retry: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60 + 60, "{retry}");
}
