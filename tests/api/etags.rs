//! `ETag` and `If-None-Match` on single resources: tags on GET and PATCH answers, 304 while
//! unchanged, a new tag after a change.

use serde_json::json;

use crate::addresses::{create_for_me, premium};
use crate::helpers::{into_test_response, spawn_app, Backend, TestApp, TestResponse};
use crate::on_both_backends;

on_both_backends!(
    get_returns_an_etag_and_304_while_if_none_match_names_it,
    patch_answers_the_new_etag_and_an_old_one_no_longer_matches,
);

async fn get_if_none_match(app: &TestApp, path: &str, token: &str, tag: &str) -> TestResponse {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .header("If-None-Match", tag)
        .send()
        .await
        .expect("request");
    into_test_response(res).await
}

fn etag(res: &TestResponse) -> String {
    res.headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_string()
}

async fn get_returns_an_etag_and_304_while_if_none_match_names_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let path = format!("/v1/addresses/{}", address["id"].as_str().unwrap());
    for path in [
        path.clone(),
        format!("/v1/mail-services/{service}"),
        format!("/v1/organizations/{}", alice.org_id),
    ] {
        let first = app.get(&path, &alice.token).await;
        first.assert_status(200);
        let tag = etag(&first);
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
        let again = app.get(&path, &alice.token).await;
        assert_eq!(etag(&again), tag);
        let cached = get_if_none_match(&app, &path, &alice.token, &tag).await;
        assert_eq!(cached.status.as_u16(), 304, "{path}");
        assert_eq!(etag(&cached), tag);
        assert!(cached.text.is_empty());
        let other = get_if_none_match(&app, &path, &alice.token, "\"other\"").await;
        other.assert_status(200);
        assert_eq!(other.text, first.text);
    }
}

async fn patch_answers_the_new_etag_and_an_old_one_no_longer_matches(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let address = create_for_me(&app, &alice, &service, "compta").await;
    let path = format!("/v1/addresses/{}", address["id"].as_str().unwrap());
    let before = etag(&app.get(&path, &alice.token).await);
    let patched = app
        .patch(
            &path,
            &alice.token,
            json!({ "display_name": "Comptabilité" }),
        )
        .await;
    patched.assert_status(200);
    let after = etag(&patched);
    assert_ne!(after, before);
    let read = app.get(&path, &alice.token).await;
    assert_eq!(read.body["display_name"], "Comptabilité");
    assert_eq!(etag(&read), after);
    let stale = get_if_none_match(&app, &path, &alice.token, &before).await;
    stale.assert_status(200);
    assert_eq!(stale.body["display_name"], "Comptabilité");
}
