#![allow(dead_code)]
//! The test harness: the real server on a random port with a fresh database per test
//! (SQLite in a temporary directory, or a new PostgreSQL database dropped afterwards), a
//! reqwest client and typed helpers for the common steps.

use std::sync::Once;

use postier::clock::Clock;
use postier::config::{Argon2Config, Config};
use postier::startup::Application;
use postier::state::AppState;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

/// Generates `sqlite` and `postgres` tests running the same async fn on each backend.
/// The PostgreSQL one runs when `POSTIER_TEST_POSTGRES_URL` is set (always in CI).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                if $crate::helpers::postgres_url().is_some() {
                    super::$name($crate::helpers::Backend::Postgres).await
                } else {
                    eprintln!("skipped: POSTIER_TEST_POSTGRES_URL is not set");
                }
            }
        }
    )* };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_url() -> Option<String> {
    std::env::var("POSTIER_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

static TRACING: Once = Once::new();

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let config = Config {
                log: "debug".into(),
                ..Config::default()
            };
            postier::telemetry::init(&config);
        }
    });
}

/// A fresh PostgreSQL database, dropped when the test ends.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin_url = postgres_url().expect("POSTIER_TEST_POSTGRES_URL");
        let name = format!("postier_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        admin
            .execute_raw(Statement::from_string(
                admin.get_database_backend(),
                format!("CREATE DATABASE \"{name}\""),
            ))
            .await
            .expect("create the test database");
        admin.close().await.ok();
        let mut url = url::Url::parse(&admin_url).expect("a PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        Self {
            admin_url,
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_raw(Statement::from_string(
                            admin.get_database_backend(),
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                        ))
                        .await;
                    admin.close().await.ok();
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub backend: Backend,
    pub address: String,
    pub port: u16,
    /// The Postfix policy service's port, when the test configured `policy_listen`.
    pub policy_port: Option<u16>,
    pub client: reqwest::Client,
    pub state: actix_web::web::Data<AppState>,
    pub clock: Clock,
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
}

/// The configuration every test starts from: cheap argon2, a temporary data dir, port 0.
pub fn test_config(backend: Backend, dir: &std::path::Path, pg: Option<&PgDatabase>) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        database_url: match backend {
            Backend::Sqlite => None,
            Backend::Postgres => pg.map(|p| p.url.clone()),
        },
        database_max_connections: 5,
        // Tests link made-up domains; the ownership proof has its own tests (`dns`).
        domain_ownership: postier::config::DomainOwnership::Trust,
        workers: 2,
        shutdown_timeout_secs: 1,
        // Polling tests send many requests: the limiter runs (its headers are on every
        // authenticated answer) with a budget they never reach; `rate_limits.rs` sets
        // small ones.
        rate_limit: postier::config::RateLimitConfig {
            requests: 1_000_000,
            ..Default::default()
        },
        argon2: Argon2Config {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 4,
            max_queued: 64,
        },
        ..Config::default()
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, customise: impl FnOnce(&mut Config)) -> TestApp {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = match backend {
        Backend::Postgres => Some(PgDatabase::create().await),
        Backend::Sqlite => None,
    };
    let mut config = test_config(backend, dir.path(), pg.as_ref());
    customise(&mut config);
    let clock = Clock::system();
    let app = Application::build_with_clock(config, clock.clone())
        .await
        .expect("build the application");
    let port = app.port();
    let policy_port = app.policy_port();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        backend,
        address: format!("http://127.0.0.1:{port}"),
        port,
        policy_port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        state,
        clock,
        dir,
        pg,
    }
}

/// A signed-up account with a logged-in session.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub login: String,
    pub password: String,
    pub account_id: Uuid,
    pub token: String,
    pub refresh_token: String,
    /// The personal organization created at sign-up.
    pub org_id: Uuid,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    /// Asserts the status and, for errors, the problem+json shape and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(
            content_type, "application/problem+json",
            "body: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
        assert_eq!(
            self.body["type"],
            format!("urn:postier:problem:{code}"),
            "body: {}",
            self.text
        );
        self
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        &self.body
    }

    /// The `field`s of a validation problem.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Another Postier instance on a test app's database and data dir (a restart, or a second
/// instance behind the same load balancer): fresh in-memory state, the same clock.
pub struct OtherInstance {
    pub port: u16,
    pub policy_port: Option<u16>,
    pub state: actix_web::web::Data<AppState>,
}

impl TestApp {
    /// Builds and starts another instance on this app's database, configured like a fresh
    /// test app and then by `customise`.
    pub async fn spawn_instance(&self, customise: impl FnOnce(&mut Config)) -> OtherInstance {
        let mut config = test_config(self.backend, self.dir.path(), self.pg.as_ref());
        customise(&mut config);
        let app = Application::build_with_clock(config, self.clock.clone())
            .await
            .expect("build another instance");
        let instance = OtherInstance {
            port: app.port(),
            policy_port: app.policy_port(),
            state: app.state(),
        };
        tokio::spawn(app.run_until_stopped());
        instance
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        into_test_response(res).await
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::PUT, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> TestResponse {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    pub async fn post_anon(&self, path: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, None, Some(body)).await
    }

    pub async fn sign_up(&self, login: &str, password: &str) -> TestResponse {
        self.post_anon(
            "/v1/accounts",
            json!({ "login": login, "password": password }),
        )
        .await
    }

    pub async fn login(&self, login: &str, password: &str) -> TestResponse {
        self.post_anon(
            "/v1/sessions",
            json!({ "login": login, "password": password }),
        )
        .await
    }

    /// Signs up `login` with [`PASSWORD`], verifies the login and logs in. The login is
    /// marked verified in the database directly (the e-mailed link itself is tested in
    /// `verification.rs`): the verification e-mail of the sign-up still goes out.
    pub async fn user(&self, login: &str) -> TestUser {
        let user = self.unverified_user(login).await;
        self.db()
            .execute_raw(Statement::from_string(
                self.db().get_database_backend(),
                format!(
                    "UPDATE accounts SET login_verified = TRUE WHERE login = '{}'",
                    user.login.to_lowercase().trim()
                ),
            ))
            .await
            .expect("verify the login");
        // Its session was read (and cached) before: as the verification endpoint does, let
        // this instance read the account again.
        self.state.sessions.forget_account(user.account_id);
        user
    }

    /// Signs up `login` with [`PASSWORD`] and logs in, leaving the login unverified.
    pub async fn unverified_user(&self, login: &str) -> TestUser {
        let account = self.sign_up(login, PASSWORD).await;
        let account = account.assert_status(201).clone();
        let session = self.login(login, PASSWORD).await;
        let session = session.assert_status(200).clone();
        let token = session["access_token"].as_str().expect("token").to_string();
        let orgs = self.get("/v1/organizations", &token).await;
        let org_id = orgs.assert_status(200)["items"][0]["id"]
            .as_str()
            .expect("org id")
            .parse()
            .expect("uuid");
        TestUser {
            login: login.to_string(),
            password: PASSWORD.to_string(),
            account_id: account["id"].as_str().expect("id").parse().expect("uuid"),
            token,
            refresh_token: session["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_string(),
            org_id,
        }
    }

    /// Makes `member` a member of `org_id` with `role` the way the API does it: `inviter`
    /// invites the member's login, and the member (whose login is verified) accepts from
    /// its invitations.
    pub async fn add_member_to(
        &self,
        org_id: Uuid,
        inviter: &TestUser,
        member: &TestUser,
        role: &str,
    ) {
        let res = self
            .post(
                &format!("/v1/organizations/{org_id}/members"),
                &inviter.token,
                serde_json::json!({ "login": member.login, "role": role }),
            )
            .await;
        let invitation = res.assert_status(202)["id"]
            .as_str()
            .expect("invitation id")
            .to_string();
        self.post(
            &format!("/v1/member-invitations/{invitation}/accept"),
            &member.token,
            serde_json::json!({}),
        )
        .await
        .assert_status(200);
    }

    /// [`TestApp::add_member_to`] the owner's personal organization.
    pub async fn add_member(&self, owner: &TestUser, member: &TestUser, role: &str) {
        self.add_member_to(owner.org_id, owner, member, role).await
    }

    /// Follows the verification link the test SMTP server received for `login` (the latest
    /// one), as its owner would.
    pub async fn verify_by_email(&self, smtp: &crate::smtp_server::TestSmtp, login: &str) {
        let token = latest_token(smtp, login, "Subject: Confirm your").await;
        self.post_anon("/v1/accounts/verify", serde_json::json!({ "token": token }))
            .await
            .assert_status(200);
    }

    /// The user with a new session (after the clock moved past its access token).
    pub async fn relogin(&self, user: &TestUser) -> TestUser {
        let session = self.login(&user.login, &user.password).await;
        let session = session.assert_status(200).clone();
        TestUser {
            token: session["access_token"].as_str().expect("token").to_string(),
            refresh_token: session["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_string(),
            ..user.clone()
        }
    }

    /// A fresh access token whose `auth_time` is now (step-up).
    pub async fn reauth(&self, user: &TestUser) -> String {
        let res = self
            .post(
                "/v1/sessions/reauth",
                &user.token,
                json!({ "password": user.password }),
            )
            .await;
        res.assert_status(200)["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Runs a scalar SQL query (for assertions on database state).
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        let row = self
            .db()
            .query_one_raw(Statement::from_string(
                self.db().get_database_backend(),
                sql,
            ))
            .await
            .expect("query")
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("an integer")
    }
}

/// The `token=` of the latest message to `recipient` whose data contains `fragment`
/// (waiting for it, at most 10 s).
pub async fn latest_token(
    smtp: &crate::smtp_server::TestSmtp,
    recipient: &str,
    fragment: &str,
) -> String {
    for _ in 0..200 {
        let found = smtp
            .received()
            .into_iter()
            .rev()
            .find(|m| m.to == vec![recipient.to_string()] && m.data.contains(fragment));
        if let Some(mail) = found {
            return token_in(&mail.data);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no message to {recipient} containing {fragment:?}");
}

/// The value of the first `token=` in a text (an e-mailed link).
pub fn token_in(text: &str) -> String {
    text.split("token=")
        .nth(1)
        .expect("a token= in the text")
        .split(|c: char| c.is_whitespace() || c == '"' || c == '&')
        .next()
        .expect("a token")
        .to_string()
}

pub async fn into_test_response(res: reqwest::Response) -> TestResponse {
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    TestResponse {
        status,
        headers,
        body,
        text,
    }
}
