//! The change feed: `GET …/events?after=` pages oldest first in the order events become
//! final, never skipping one, even when transactions commit out of order (PostgreSQL), or
//! while two instances write and a follower reads; and its server-sent-events stream,
//! resumed with `Last-Event-ID`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use postier::repo::events::{Actor, Scope};
use postier::service::audit::{self, Change};
use sea_orm::TransactionTrait;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp, TestUser};
use crate::on_both_backends;
use crate::webhooks::rename;

on_both_backends!(
    the_feed_pages_oldest_first_and_refuses_positions_it_did_not_give,
    a_follower_sees_every_event_once_while_two_instances_write,
    the_event_stream_sends_new_events_and_resumes_after_last_event_id,
);

/// One feed page: the events and the cursor to pass next.
async fn feed(app: &TestApp, user: &TestUser, query: &str) -> (Vec<Value>, String) {
    let res = app
        .get(
            &format!("/v1/organizations/{}/events?{query}", user.org_id),
            &user.token,
        )
        .await;
    let body = res.assert_status(200);
    (
        body["items"].as_array().unwrap().clone(),
        body["next_cursor"]
            .as_str()
            .expect("a feed cursor")
            .to_string(),
    )
}

/// The names organizations were renamed to, in order.
fn targets(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter(|e| e["action"] == "organization.renamed")
        .map(|e| e["details"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Follows the feed from `cursor` until `count` events came (on PostgreSQL an event waits
/// until every transaction older than its own, in any database of the server, has ended:
/// other tests' transactions may hold it back a moment). Answers them and the next cursor.
async fn feed_until(
    app: &TestApp,
    user: &TestUser,
    mut cursor: String,
    count: usize,
) -> (Vec<Value>, String) {
    let mut got = Vec::new();
    for _ in 0..400 {
        let (items, next) = feed(app, user, &format!("cursor={cursor}")).await;
        got.extend(items);
        cursor = next;
        if got.len() >= count {
            return (got, cursor);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the feed gave {} events, not {count}", got.len());
}

fn start() -> String {
    postier::repo::encode_cursor("feed:0")
}

async fn the_feed_pages_oldest_first_and_refuses_positions_it_did_not_give(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    for name in ["one", "two", "three"] {
        rename(&app, &alice, name).await;
    }
    // sign-up (account, organization, session) and three renames
    let (all, cursor) = feed_until(&app, &alice, start(), 6).await;
    let actions: Vec<_> = all.iter().map(|e| e["action"].clone()).collect();
    assert_eq!(
        actions[..2],
        [json!("account.created"), json!("organization.created")]
    );
    assert_eq!(targets(&all), ["one", "two", "three"]);
    let (page, _) = feed(&app, &alice, "after=0&limit=2").await;
    assert_eq!(page.len(), 2);
    assert_eq!(page[1]["id"], all[1]["id"]);
    // At the head: nothing, and the same place to ask from again.
    let (none, again) = feed(&app, &alice, &format!("cursor={cursor}")).await;
    assert!(none.is_empty());
    assert_eq!(again, cursor);
    rename(&app, &alice, "four").await;
    let (new, _) = feed_until(&app, &alice, cursor, 1).await;
    assert_eq!(targets(&new), ["four"]);
    // `after` takes any item's position.
    let position = all[3]["position"].as_str().unwrap();
    let (after, _) = feed(&app, &alice, &format!("after={position}")).await;
    assert_eq!(after[0]["id"], all[4]["id"]);

    // The history is unchanged: newest first, with a cursor that ends.
    let res = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    let history = res.assert_status(200);
    assert_eq!(history["items"][0]["details"]["name"], "four");
    assert_eq!(history["next_cursor"], Value::Null);

    let path = format!("/v1/organizations/{}/events", alice.org_id);
    for (query, field) in [
        ("after=12", "after"),
        ("after=a.b", "after"),
        ("after=-1.2", "after"),
        ("after=0&cursor=abc", "after"),
    ] {
        let res = app.get(&format!("{path}?{query}"), &alice.token).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec![field], "{query}");
    }
    // An address's history is a feed too.
    let service =
        crate::mail_services::create_service(&app, &alice, Some("feed.example"), "premium").await;
    let address = app
        .post(
            &format!("/v1/mail-services/{}/addresses", service["id"].as_str().unwrap()),
            &alice.token,
            json!({ "local_part": "julie", "for": "several_users", "password": crate::addresses::STRONG }),
        )
        .await;
    let address_id = address.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/addresses/{address_id}/events?after=0");
    let mut first = Value::Null;
    for _ in 0..400 {
        let res = app.get(&path, &alice.token).await;
        first = res.assert_status(200)["items"][0].clone();
        if !first.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(first["action"], "address.created");
}

/// PostgreSQL only: there, transactions of several connections write at once and a UUIDv7
/// made before commit does not say when the row became visible. (SQLite takes its write
/// lock at `begin`: the second writer waits for the first.)
#[tokio::test]
async fn the_feed_waits_for_a_transaction_that_commits_after_a_later_one() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: POSTIER_TEST_POSTGRES_URL is not set");
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let alice = app.user("alice@example.com").await;
    // Past the sign-up's events.
    let (_, mut cursor) = feed_until(&app, &alice, start(), 3).await;
    let db = app.db();
    let actor = Actor {
        account_id: Some(alice.account_id),
        ip: None,
    };
    let scope = Scope::organization(alice.org_id);
    let change = |name: &str| Change::OrganizationRenamed { name: name.into() };
    // The first writer starts, and stays open while a second one writes and commits.
    let first = db.begin().await.unwrap();
    audit::record(
        &first,
        chrono::Utc::now(),
        &actor,
        scope,
        &change("first"),
        "first",
    )
    .await
    .unwrap();
    let second = db.begin().await.unwrap();
    audit::record(
        &second,
        chrono::Utc::now(),
        &actor,
        scope,
        &change("second"),
        "second",
    )
    .await
    .unwrap();
    second.commit().await.unwrap();
    // Visible, but not handed out while an older transaction may still add an event before
    // it: a cursor past "second" would skip "first".
    let (items, next) = feed(&app, &alice, &format!("cursor={cursor}")).await;
    assert!(items.is_empty(), "{items:?}");
    assert_eq!(next, cursor);
    let res = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    assert_eq!(res.assert_status(200)["items"][0]["target"], "second");
    first.commit().await.unwrap();
    // Once both are final, both come, in the order of their transactions. (Other tests'
    // transactions on the same server may hold the horizon a moment longer.)
    let mut got = Vec::new();
    for _ in 0..200 {
        let (items, next) = feed(&app, &alice, &format!("cursor={cursor}")).await;
        got.extend(targets(&items));
        cursor = next;
        if got.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got, ["first", "second"]);
}

async fn a_follower_sees_every_event_once_while_two_instances_write(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let other = app.spawn_instance(|_| {}).await;
    let bases = [
        app.address.clone(),
        format!("http://127.0.0.1:{}", other.port),
    ];
    let (_, start) = feed_until(&app, &alice, start(), 3).await;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = bases[w % 2].clone();
            let token = alice.token.clone();
            let org = alice.org_id;
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0..15 {
                    let res = client
                        .patch(format!("{base}/v1/organizations/{org}"))
                        .bearer_auth(&token)
                        .json(&json!({ "name": format!("w{w}-{i}") }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status().as_u16(), 200);
                }
            })
        })
        .collect();
    // The follower reads while they write, with small pages.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = start;
    let mut writers_done = false;
    let mut handles = Some(writers);
    for _ in 0..2000 {
        let (items, next) = feed(&app, &alice, &format!("cursor={cursor}&limit=7")).await;
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        cursor = next;
        if !writers_done && handles.as_ref().unwrap().iter().all(|h| h.is_finished()) {
            for h in handles.take().unwrap() {
                h.await.unwrap();
            }
            writers_done = true;
        }
        if writers_done && seen.len() >= 60 && items.is_empty() {
            break;
        }
        if items.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(writers_done);
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an event came twice");
    let res = app
        .get(
            &format!("/v1/organizations/{}/events?limit=200", alice.org_id),
            &alice.token,
        )
        .await;
    let written: BTreeSet<String> = res.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "organization.renamed")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(written.len(), 60);
    assert_eq!(unique, written, "the follower missed an event");
}

/// Reads server-sent events from a streaming answer until `count` arrived.
async fn read_events(res: &mut reqwest::Response, count: usize) -> Vec<HashMap<String, String>> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(20), res.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream went on");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let fields: HashMap<String, String> = block
                .lines()
                .filter(|l| !l.starts_with(':'))
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if fields.contains_key("event") {
                events.push(fields);
            }
        }
    }
    events
}

async fn the_event_stream_sends_new_events_and_resumes_after_last_event_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let stream = format!("/v1/organizations/{}/events/stream", alice.org_id);
    // From the newest event of the log on (without `after`, a stream starts at the newest
    // final event, which on a busy PostgreSQL server may be a moment older).
    let res = app
        .get(
            &format!("/v1/organizations/{}/events", alice.org_id),
            &alice.token,
        )
        .await;
    let newest = res.assert_status(200)["items"][0]["position"]
        .as_str()
        .unwrap()
        .to_string();
    let mut res = app
        .client
        .get(app.url(&format!("{stream}?after={newest}")))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    rename(&app, &alice, "one").await;
    rename(&app, &alice, "two").await;
    let events = read_events(&mut res, 2).await;
    assert_eq!(events[0]["event"], "organization.renamed");
    let data: Value = serde_json::from_str(&events[1]["data"]).unwrap();
    assert_eq!(data["details"]["name"], "two");
    assert_eq!(data["position"], events[1]["id"]);
    let last_id = events[0]["id"].clone();
    drop(res);

    rename(&app, &alice, "three").await;
    let mut res = app
        .client
        .get(app.url(&stream))
        .bearer_auth(&alice.token)
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    let resumed = read_events(&mut res, 2).await;
    let names: Vec<Value> = resumed
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e["data"]).unwrap()["details"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("two"), json!("three")]);

    let res = app
        .client
        .get(app.url(&stream))
        .bearer_auth(&alice.token)
        .header("last-event-id", "nonsense")
        .send()
        .await
        .unwrap();
    crate::helpers::into_test_response(res)
        .await
        .assert_problem(422, "validation_failed");
    let bob = app.user("bob@example.com").await;
    app.get(&stream, &bob.token)
        .await
        .assert_problem(404, "not_found");
}
