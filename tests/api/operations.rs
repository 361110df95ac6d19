//! Operations endpoints, error rendering of every kind, the OpenAPI document, and the binary
//! itself (configuration errors, the zero-configuration data dir, graceful shutdown).

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{into_test_response, spawn_app, Backend, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    health_and_readiness_answer_ok,
    malformed_json_returns_400_problem,
    wrong_media_type_returns_415_problem,
    unknown_field_returns_422_naming_the_field,
    missing_field_returns_422_naming_the_field,
    body_too_large_returns_413_problem,
    unknown_route_returns_404_and_wrong_method_405_with_allow,
    a_literal_segment_is_its_own_resource_and_allow_lists_only_its_methods,
    request_id_is_echoed_or_generated,
    served_openapi_document_is_the_generated_one,
    docs_are_served_without_any_download,
    a_second_instance_does_not_accept_the_first_ones_tokens,
    nul_characters_are_refused_with_422_naming_the_field,
    a_json_body_that_is_not_an_object_returns_422_naming_the_body,
    served_openapi_document_states_the_configured_password_minimum,
);

async fn health_and_readiness_answer_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(res.assert_status(200)["status"], "ok");
    let res = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(res.assert_status(200)["status"], "ok");
}

async fn malformed_json_returns_400_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .post(app.url("/v1/accounts"))
        .header("content-type", "application/json")
        .body("{\"login\": ")
        .send()
        .await
        .unwrap();
    into_test_response(res)
        .await
        .assert_problem(400, "malformed_request");
}

async fn wrong_media_type_returns_415_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .post(app.url("/v1/accounts"))
        .header("content-type", "text/plain")
        .body("login=a")
        .send()
        .await
        .unwrap();
    into_test_response(res)
        .await
        .assert_problem(415, "unsupported_media_type");
}

async fn unknown_field_returns_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .post_anon(
            "/v1/accounts",
            json!({ "login": "a@example.com", "password": PASSWORD, "admin": true }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["admin"]);
}

async fn missing_field_returns_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .post_anon("/v1/accounts", json!({ "login": "a@example.com" }))
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["password"]);
    let res = app
        .post_anon("/v1/accounts", json!({ "login": 42, "password": PASSWORD }))
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["login"]);
}

async fn body_too_large_returns_413_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge = "x".repeat(200 * 1024);
    let res = app
        .post_anon(
            "/v1/accounts",
            json!({ "login": "a@example.com", "password": huge }),
        )
        .await;
    res.assert_problem(413, "payload_too_large");
}

async fn unknown_route_returns_404_and_wrong_method_405_with_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .request(Method::GET, "/v1/nothing-here", None, None)
        .await;
    res.assert_problem(404, "route_not_found");
    let res = app.request(Method::PUT, "/v1/accounts", None, None).await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(res.headers["allow"], "POST");
    let res = app
        .request(
            Method::POST,
            "/v1/organizations/0190a0a0-0000-7000-8000-000000000000",
            None,
            None,
        )
        .await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(res.headers["allow"], "GET, PATCH");
}

async fn a_literal_segment_is_its_own_resource_and_allow_lists_only_its_methods(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("alice@example.com").await;
    // `/v1/invitations/{id}` has GET and DELETE: they are not `accept`'s methods.
    for (method, path) in [
        (Method::OPTIONS, "/v1/invitations/accept"),
        (Method::DELETE, "/v1/invitations/accept"),
        (Method::GET, "/v1/invitations/accept"),
        (Method::DELETE, "/v1/invitations/decline"),
        (Method::GET, "/v1/member-invitations/accept"),
        (Method::DELETE, "/v1/share-links/redeem"),
    ] {
        let res = app
            .request(method.clone(), path, Some(&user.token), None)
            .await;
        res.assert_problem(405, "method_not_allowed");
        assert_eq!(res.headers["allow"], "POST", "{method} {path}");
    }
    // A malformed id names no resource at all.
    let res = app
        .request(
            Method::DELETE,
            "/v1/invitations/not-an-id",
            Some(&user.token),
            None,
        )
        .await;
    res.assert_problem(404, "not_found");
    let res = app
        .request(
            Method::OPTIONS,
            "/v1/invitations/0190a0a0-0000-7000-8000-000000000000",
            None,
            None,
        )
        .await;
    res.assert_problem(405, "method_not_allowed");
    assert!(!res.headers["allow"].to_str().unwrap().contains("POST"));
}

async fn request_id_is_echoed_or_generated(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok());
    // A header that could forge log lines is replaced, not echoed.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b\"c");
}

async fn served_openapi_document_is_the_generated_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.request(Method::GET, "/openapi.json", None, None).await;
    let served = res.assert_status(200);
    let generated = serde_json::to_value(postier::openapi::build()).unwrap();
    assert_eq!(served, &generated);
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

async fn docs_are_served_without_any_download(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 308);
    let res = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    let res = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

async fn a_second_instance_does_not_accept_the_first_ones_tokens(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app(backend).await;
    let user = first.user("alice@example.com").await;
    first.get("/v1/me", &user.token).await.assert_status(200);
    let now = second.clock.now();
    assert!(second.state.jwt.verify(&user.token, now).is_err());
    second
        .get("/v1/me", &user.token)
        .await
        .assert_problem(401, "unauthenticated");
}

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = postier::openapi::build().to_pretty_json().unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test committed_openapi` and commit it"
    );
}

#[test]
fn every_operation_has_an_operation_id_a_summary_and_problem_errors() {
    let api = serde_json::to_value(postier::openapi::build()).unwrap();
    for (path, item) in api["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{method} {path} {status} is not a problem document"
                    );
                }
            }
        }
    }
}

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postier"));
    for (key, _) in std::env::vars() {
        if key.starts_with("POSTIER_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn invalid_configuration_stops_the_process_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary()
        .current_dir(dir.path())
        .env("POSTIER_JWT_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("POSTIER_JWT_SECRET"), "{stderr}");

    let output = binary()
        .current_dir(dir.path())
        .env("POSTIER_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("POSTIER_LISTEN"));

    let output = binary()
        .current_dir(dir.path())
        .env("POSTIER_ARGON2__MEMORY_KIB", "lots")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("POSTIER_ARGON2__MEMORY_KIB"));
}

#[test]
fn openapi_command_prints_the_document() {
    let output = binary().arg("openapi").output().unwrap();
    assert!(output.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Served {
    child: std::process::Child,
    base: String,
}

impl Served {
    fn start(dir: &std::path::Path, port: u16, extra: &[(&str, &str)]) -> Self {
        Self::start_logging(dir, port, extra, None)
    }

    /// Like `start`, with standard output and error both written to `log` when given.
    fn start_logging(
        dir: &std::path::Path,
        port: u16,
        extra: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Self {
        let mut cmd = binary();
        cmd.current_dir(dir)
            .env("POSTIER_LISTEN", format!("127.0.0.1:{port}"))
            .env("POSTIER_ARGON2__MEMORY_KIB", "256")
            .env("POSTIER_ARGON2__ITERATIONS", "1");
        match log {
            Some(path) => {
                let file = std::fs::File::create(path).unwrap();
                cmd.stdout(file.try_clone().unwrap()).stderr(file);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(res) = client.get(format!("{}/readyz", self.base)).send().await {
                if res.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("postier did not become ready");
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe_free_kill(self.child.id());
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_free_kill(pid: u32) {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
}

#[tokio::test]
async fn serve_with_no_configuration_keeps_database_and_secret_in_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut served = Served::start(dir.path(), port, &[]);
    served.wait_ready().await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/v1/accounts", served.base))
        .json(&json!({ "login": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let session: serde_json::Value = client
        .post(format!("{}/v1/sessions", served.base))
        .json(&json!({ "login": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap().to_string();
    assert!(served.terminate().success());

    let secret = dir.path().join("data/jwt_secret");
    assert!(dir.path().join("data/postier.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(dir.path().join("data"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the data dir is private");
    }

    // Restarted on the same data dir: the account and the token are still good.
    let mut served = Served::start(dir.path(), port, &[]);
    served.wait_ready().await;
    let res = client
        .get(format!("{}/v1/me", served.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(served.terminate().success());
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Production argon2 cost and one hash at a time: the logins below queue for a while.
    let mut served = Served::start(
        dir.path(),
        port,
        &[
            ("POSTIER_ARGON2__MEMORY_KIB", "19456"),
            ("POSTIER_ARGON2__ITERATIONS", "2"),
            ("POSTIER_ARGON2__MAX_CONCURRENT", "1"),
        ],
    );
    served.wait_ready().await;
    let client = reqwest::Client::new();
    let base = served.base.clone();
    let logins: Vec<_> = (0..6)
        .map(|i| {
            let client = client.clone();
            let base = base.clone();
            tokio::spawn(async move {
                client
                    .post(format!("{base}/v1/sessions"))
                    .json(
                        &json!({ "login": format!("nobody{i}@example.com"), "password": PASSWORD }),
                    )
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let status = tokio::task::spawn_blocking(move || served.terminate())
        .await
        .unwrap();
    for login in logins {
        assert_eq!(login.await.unwrap().unwrap(), 401);
    }
    assert!(status.success());
}

async fn nul_characters_are_refused_with_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .post_anon(
            "/v1/sessions",
            json!({ "login": "a\u{0}@example.com", "password": "x" }),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["login"]);
    let res = app
        .post_anon(
            "/v1/accounts",
            json!({ "login": "a@example.com", "password": PASSWORD, "display_name": "A\u{0}" }),
        )
        .await;
    assert_eq!(res.error_fields(), vec!["display_name"]);
    let user = app.user("b@example.com").await;
    let res = app
        .get(
            &format!("/v1/organizations/{}/events?cursor=a%00", user.org_id),
            &user.token,
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["cursor"]);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM accounts").await, 1);
}

#[tokio::test]
async fn logs_carry_the_request_id_and_never_a_password_or_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("postier.log");
    let port = free_port();
    let mut served = Served::start_logging(
        dir.path(),
        port,
        &[("POSTIER_LOG_FORMAT", "json")],
        Some(&log),
    );
    served.wait_ready().await;
    let client = reqwest::Client::new();
    let base = served.base.clone();
    let wrong = "a wrong password for the logs";
    let post = |path: &str, id: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .header("x-request-id", id)
            .json(&body)
            .send()
    };
    let res = post(
        "/v1/accounts",
        "req-signup-1",
        json!({ "login": "alice@example.com", "password": PASSWORD }),
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let res = post(
        "/v1/sessions",
        "req-wrong-2",
        json!({ "login": "alice@example.com", "password": wrong }),
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let session: serde_json::Value = post(
        "/v1/sessions",
        "req-login-3",
        json!({ "login": "alice@example.com", "password": PASSWORD }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = session["access_token"].as_str().unwrap().to_string();
    let refresh = session["refresh_token"].as_str().unwrap().to_string();
    let rotated: serde_json::Value = post(
        "/v1/sessions/refresh",
        "req-refresh-4",
        json!({ "refresh_token": refresh }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let res = client
        .get(format!("{base}/v1/me"))
        .header("x-request-id", "req-me-5")
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(served.terminate().success());

    let text = std::fs::read_to_string(&log).unwrap();
    // Every request is logged as JSON, with the id the client sent.
    for id in [
        "req-signup-1",
        "req-wrong-2",
        "req-login-3",
        "req-refresh-4",
        "req-me-5",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("no log line carries {id}:\n{text}"));
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    for secret in [
        PASSWORD,
        wrong,
        access.as_str(),
        refresh.as_str(),
        rotated["access_token"].as_str().unwrap(),
        rotated["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "a secret is in the logs:\n{text}");
    }
}

/// PostgreSQL only: SQLite is a file the process holds open, it cannot become unreachable.
#[tokio::test]
async fn readiness_answers_503_while_the_database_refuses_connections() {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let Some(admin_url) = crate::helpers::postgres_url() else {
        eprintln!("skipped: POSTIER_TEST_POSTGRES_URL is not set");
        return;
    };
    let app = spawn_app(Backend::Postgres).await;
    let name = app.pg.as_ref().unwrap().name.clone();
    let admin = Database::connect(&admin_url).await.unwrap();
    let run = |sql: String| {
        let admin = &admin;
        async move {
            admin
                .execute_raw(Statement::from_string(admin.get_database_backend(), sql))
                .await
                .unwrap();
        }
    };
    app.request(Method::GET, "/readyz", None, None)
        .await
        .assert_status(200);
    run(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await;
    run(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let res = app.request(Method::GET, "/readyz", None, None).await;
    res.assert_problem(503, "service_unavailable");
    // Liveness does not depend on the database.
    app.request(Method::GET, "/healthz", None, None)
        .await
        .assert_status(200);
    run(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;
    // The pool reconnects by itself.
    let mut ready = false;
    for _ in 0..50 {
        if app
            .request(Method::GET, "/readyz", None, None)
            .await
            .status
            .as_u16()
            == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "readiness never came back");
    admin.close().await.ok();
}

async fn a_json_body_that_is_not_an_object_returns_422_naming_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    // serde reads a struct from an array too: `["a@example.com", "…"]` must not sign up.
    let res = app
        .post_anon("/v1/accounts", json!(["a@example.com", PASSWORD]))
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["body"]);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM accounts").await, 0);
}

async fn served_openapi_document_states_the_configured_password_minimum(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |c| c.password_min_length = 16).await;
    let res = app.request(Method::GET, "/openapi.json", None, None).await;
    let served = res.assert_status(200);
    assert_eq!(
        served["components"]["schemas"]["NewPassword"]["minLength"],
        16
    );
    assert_eq!(
        served["components"]["schemas"]["NewPassword"]["maxLength"],
        128
    );
    // The committed document (and `postier openapi`) states the default.
    let generated = serde_json::to_value(postier::openapi::build()).unwrap();
    assert_eq!(
        generated["components"]["schemas"]["NewPassword"]["minLength"],
        12
    );
}
