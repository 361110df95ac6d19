#![allow(dead_code)]
//! A real webhook receiver for tests: an HTTP server (actix-web) on 127.0.0.1, port chosen
//! by the OS, that records every request and answers as told (a status, a body, a delay, a
//! redirect). Beside it, two verifiers of Standard Webhooks signatures written apart from
//! Postier's: one here in Rust, and the `standardwebhooks` package from PyPI (the reference
//! library), run in a virtualenv under /var/tmp.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    Body(u16, String),
    Redirect(String),
    /// Waits, then answers 200.
    Slow(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    next: Mutex<VecDeque<Answer>>,
    default: Mutex<Option<Answer>>,
}

pub struct Receiver {
    pub port: u16,
    inner: web::Data<Inner>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, inner: web::Data<Inner>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    inner.received.lock().unwrap().push(Received {
        path: req.path().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let answer = inner
        .next
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| inner.default.lock().unwrap().clone())
        .unwrap_or(Answer::Status(200));
    match answer {
        Answer::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish()
        }
        Answer::Body(code, text) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).body(text)
        }
        Answer::Redirect(to) => HttpResponse::Found()
            .insert_header(("location", to))
            .finish(),
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            HttpResponse::Ok().body("ok")
        }
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = web::Data::new(Inner::default());
        let data = inner.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(handle))
        })
        .workers(2)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            port,
            inner,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers the next requests so, in order, then as by default.
    pub fn answer_next(&self, answers: Vec<Answer>) {
        self.inner.next.lock().unwrap().extend(answers);
    }

    pub fn answer_by_default(&self, answer: Answer) {
        *self.inner.default.lock().unwrap() = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `done` holds for what arrived at `path` (at most `secs` seconds).
    pub async fn wait_until(
        &self,
        path: &str,
        secs: u64,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received_at(path);
            if done(&got) {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "the receiver did not get what was expected at {path}; it got: {:#?}",
                    got.iter().map(|r| &r.body).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until at least `count` requests arrived at `path`.
    pub async fn wait_for(&self, path: &str, count: usize) -> Vec<Received> {
        self.wait_until(path, 30, |got| got.len() >= count).await
    }
}

/// The Standard Webhooks check, written from the specification: base64 HMAC-SHA256 of
/// `id.timestamp.body` keyed by the secret's bytes, matched against any `v1,` signature.
pub fn signed_by(secret: &str, message: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            message.header("webhook-id"),
            message.header("webhook-timestamp"),
            message.body
        )
        .as_bytes(),
    );
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    message
        .header("webhook-signature")
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

const VENV: &str = "/var/tmp/postier-standardwebhooks-venv";
const PACKAGE: &str = "standardwebhooks==1.1.0";

/// The Python of a virtualenv holding the `standardwebhooks` package, made once per machine
/// (.ci/run makes it first). `flock` serializes the check-and-install across tests.
fn standardwebhooks_python() -> String {
    let script = format!(
        "{VENV}/bin/python -c 'import standardwebhooks' 2>/dev/null || \
         {{ rm -rf {VENV} && python3 -m venv {VENV} && \
            {VENV}/bin/pip install --quiet --disable-pip-version-check {PACKAGE}; }}"
    );
    let status = std::process::Command::new("flock")
        .args([
            "/var/tmp/postier-standardwebhooks.lock",
            "sh",
            "-c",
            &script,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "installing {PACKAGE} in {VENV} failed");
    format!("{VENV}/bin/python")
}

/// Verifies each `(secret, message)` with the reference library; answers, per message,
/// `Ok` or the library's refusal.
pub fn verify_with_standardwebhooks(cases: &[(&str, &Received)]) -> Vec<Result<(), String>> {
    let python = standardwebhooks_python();
    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|(secret, message)| {
            serde_json::json!({
                "secret": secret,
                "body": message.body,
                "headers": {
                    "webhook-id": message.header("webhook-id"),
                    "webhook-timestamp": message.header("webhook-timestamp"),
                    "webhook-signature": message.header("webhook-signature"),
                },
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.json");
    std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();
    let script = r#"
import json, sys
from standardwebhooks import Webhook
for case in json.load(open(sys.argv[1])):
    try:
        Webhook(case["secret"]).verify(case["body"], case["headers"])
        print("ok")
    except Exception as e:
        print("refused: " + type(e).__name__ + ": " + str(e))
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            if line == "ok" {
                Ok(())
            } else {
                Err(line.to_string())
            }
        })
        .collect()
}
