//! CORS: preflights from the configured origins are answered, other origins and an
//! unconfigured server get no CORS header at all.

use reqwest::Method;

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_preflight_from_an_allowed_origin_gets_the_cors_headers,
    a_preflight_from_another_origin_gets_no_cors_headers,
    without_cors_origins_no_answer_has_cors_headers,
);

const APP: &str = "https://app.example";

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/v1/me"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "PATCH")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, idempotency-key, if-match, if-none-match",
        )
        .send()
        .await
        .unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
}

async fn a_preflight_from_an_allowed_origin_gets_the_cors_headers(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.cors_origins = vec![APP.into(), "http://localhost:5173".into()];
    })
    .await;
    let res = preflight(&app, APP).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(header(&res, "access-control-allow-origin").unwrap(), APP);
    let methods = header(&res, "access-control-allow-methods").unwrap();
    for method in ["get", "post", "put", "patch", "delete"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = header(&res, "access-control-allow-headers").unwrap();
    for name in [
        "authorization",
        "content-type",
        "idempotency-key",
        "if-match",
        "if-none-match",
    ] {
        assert!(headers.contains(name), "{headers}");
    }
    // Bearer tokens, no cookies: never credentials mode.
    assert_eq!(header(&res, "access-control-allow-credentials"), None);
    assert!(header(&res, "vary").unwrap().contains("origin"));
    // The call itself: the page may read the headers clients rely on.
    let user = app.user("alice@example.com").await;
    let res = app
        .client
        .get(app.url("/v1/me"))
        .header("Origin", APP)
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(header(&res, "access-control-allow-origin").unwrap(), APP);
    let exposed = header(&res, "access-control-expose-headers").unwrap();
    for name in [
        "etag",
        "location",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
    ] {
        assert!(exposed.contains(name), "{exposed}");
    }
}

async fn a_preflight_from_another_origin_gets_no_cors_headers(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.cors_origins = vec![APP.into()]).await;
    let res = preflight(&app, "https://evil.example").await;
    assert!(!res.status().is_success());
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert_eq!(header(&res, "access-control-allow-methods"), None);
    // A call with that origin is answered (its browser withholds it from the page).
    let user = app.user("alice@example.com").await;
    let res = app
        .client
        .get(app.url("/v1/me"))
        .header("Origin", "https://evil.example")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), None);
}

async fn without_cors_origins_no_answer_has_cors_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = preflight(&app, APP).await;
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    assert_eq!(header(&res, "access-control-allow-methods"), None);
    let user = app.user("alice@example.com").await;
    let res = app
        .client
        .get(app.url("/v1/me"))
        .header("Origin", APP)
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-")));
}
