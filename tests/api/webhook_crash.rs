//! At least once, across a crash: two real `postier` processes on one PostgreSQL deliver to a
//! real receiver; one is killed with SIGKILL while deliveries are in flight, and every event
//! still reaches the receiver (the killed instance's leases run out and the other takes its
//! deliveries over).

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

use crate::helpers::{postgres_url, PgDatabase, PASSWORD};
use crate::webhook_receiver::{Answer, Receiver};

struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    fn start(dir: &std::path::Path, env: &[(&str, String)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postier"));
        for (key, _) in std::env::vars() {
            if key.starts_with("POSTIER_") {
                cmd.env_remove(key);
            }
        }
        std::fs::create_dir_all(dir).unwrap();
        cmd.current_dir(dir)
            .env("POSTIER_LISTEN", format!("127.0.0.1:{port}"))
            .env("POSTIER_ARGON2__MEMORY_KIB", "256")
            .env("POSTIER_ARGON2__ITERATIONS", "1")
            .env("POSTIER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(res) = client.get(format!("{}/readyz", self.base)).send().await {
                if res.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("postier did not become ready");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn renames(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    org: &str,
    names: Vec<String>,
) -> tokio::task::JoinHandle<usize> {
    let (client, base, token, org) = (
        client.clone(),
        base.to_string(),
        token.to_string(),
        org.to_string(),
    );
    tokio::spawn(async move {
        let mut done = 0;
        for name in names {
            let sent = client
                .patch(format!("{base}/v1/organizations/{org}"))
                .bearer_auth(&token)
                .json(&json!({ "name": name }))
                .send()
                .await;
            match sent {
                Ok(res) if res.status().is_success() => done += 1,
                // The instance was killed: the change either committed (and is delivered) or not.
                _ => break,
            }
        }
        done
    })
}

async fn scalar(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test]
async fn killing_an_instance_in_the_middle_of_deliveries_loses_no_event() {
    if postgres_url().is_none() {
        eprintln!("skipped: POSTIER_TEST_POSTGRES_URL is not set");
        return;
    }
    let pg = PgDatabase::create().await;
    let receiver = Receiver::start().await;
    // A slow receiver keeps deliveries in flight when the instance dies.
    receiver.answer_by_default(Answer::Slow(Duration::from_millis(40)));
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("POSTIER_DATABASE_URL", pg.url.clone()),
        ("POSTIER_WEBHOOK_ALLOW_HOSTS", "127.0.0.1".to_string()),
        ("POSTIER_WEBHOOK_TIMEOUT_SECS", "2".to_string()),
        ("POSTIER_WEBHOOK_CONCURRENCY", "4".to_string()),
    ];
    let mut doomed = Instance::start(&dir.path().join("a"), &env);
    doomed.wait_ready().await;
    let survivor = Instance::start(&dir.path().join("b"), &env);
    survivor.wait_ready().await;

    let client = reqwest::Client::new();
    let login = json!({ "login": "alice@example.com", "password": PASSWORD });
    let res = client
        .post(format!("{}/v1/accounts", doomed.base))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let session: serde_json::Value = client
        .post(format!("{}/v1/sessions", doomed.base))
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap().to_string();
    let orgs: serde_json::Value = client
        .get(format!("{}/v1/organizations", doomed.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = orgs["items"][0]["id"].as_str().unwrap().to_string();
    let res = client
        .post(format!("{}/v1/organizations/{org}/webhooks", doomed.base))
        .bearer_auth(&token)
        .json(&json!({ "url": receiver.url("/hook"), "event_types": ["organization.renamed"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);

    // Changes through the instance about to die, from four clients.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            renames(
                &client,
                &doomed.base,
                &token,
                &org,
                (0..60).map(|i| format!("a{w}-{i}")).collect(),
            )
        })
        .collect();
    receiver.wait_for("/hook", 30).await;
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let db = Database::connect(&pg.url).await.unwrap();
    let in_flight = scalar(
        &db,
        "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'",
    )
    .await;
    assert!(
        in_flight > 0,
        "the instance died after every delivery was done"
    );
    let mut through_doomed = 0;
    for writer in writers {
        through_doomed += writer.await.unwrap();
    }
    // More changes through the survivor, after the crash.
    let after = renames(
        &client,
        &survivor.base,
        &token,
        &org,
        (0..40).map(|i| format!("b-{i}")).collect(),
    );
    assert_eq!(after.await.unwrap(), 40);

    let events = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id::text AS id FROM events WHERE action = 'organization.renamed'",
        ))
        .await
        .unwrap();
    let expected: BTreeSet<String> = events
        .iter()
        .map(|r| r.try_get::<String>("", "id").unwrap())
        .collect();
    assert!(expected.len() >= through_doomed + 40);
    // Every event arrives, and every delivery ends delivered: those the killed instance held
    // are taken over once their leases run out.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (received, undelivered) = loop {
        let got: BTreeSet<String> = receiver
            .received_at("/hook")
            .iter()
            .map(|r| r.header("webhook-id").to_string())
            .collect();
        let undelivered = scalar(
            &db,
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status <> 'delivered'",
        )
        .await;
        if (expected.is_subset(&got) && undelivered == 0) || Instant::now() > deadline {
            break (got, undelivered);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let missing: Vec<_> = expected.difference(&received).collect();
    assert!(
        missing.is_empty(),
        "{} events never arrived: {missing:?}",
        missing.len()
    );
    assert_eq!(undelivered, 0);
    let total = receiver.received_at("/hook").len();
    eprintln!(
        "{} events, {} pending when killed, {total} requests received ({} duplicates)",
        expected.len(),
        in_flight,
        total - expected.len()
    );
    db.close().await.ok();
}
