//! Bulk CSV import of addresses.

use serde_json::Value;

use crate::addresses::premium;
use crate::helpers::{
    into_test_response, spawn_app, spawn_app_with, Backend, TestApp, TestResponse, TestUser,
};
use crate::mail_services::create_service;
use crate::on_both_backends;

on_both_backends!(
    the_template_with_semicolons_and_a_bom_creates_every_row,
    named_headers_report_every_row_and_atomic_writes_nothing_on_error,
    partial_import_creates_the_valid_rows_and_reports_the_others,
    dry_run_validates_everything_and_writes_nothing,
    generated_passwords_are_returned_once,
    limits_are_checked_before_writing,
    bad_files_get_problems_naming_the_column,
    racing_imports_never_exceed_the_pack,
    racing_imports_for_the_starter_packs_only_address_create_one,
    racing_partial_imports_share_the_last_slot_of_a_free_service,
    a_multipart_file_field_imports_like_a_csv_body,
    multipart_imports_are_refused_without_a_file_or_beyond_the_size_limit,
);

pub async fn import(
    app: &TestApp,
    user: &TestUser,
    service: &str,
    query: &str,
    csv: &str,
) -> TestResponse {
    let res = app
        .client
        .post(app.url(&format!(
            "/v1/mail-services/{service}/addresses/import{query}"
        )))
        .bearer_auth(&user.token)
        .header("content-type", "text/csv; charset=utf-8")
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    into_test_response(res).await
}

fn outcomes(report: &Value) -> Vec<(u64, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn the_template_with_semicolons_and_a_bom_creates_every_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let csv = "\u{feff}Adresse;Mot de passe;Redirection;Conserver une copie\r\njulie;violet umbrella marching north;julie@home.example;1\r\nmarc;orange kettle singing loudly;;\r\nelise;lemon tree dancing slowly\r\n";
    let res = import(&app, &alice, &service, "", csv).await;
    let report = res.assert_status(201).clone();
    assert_eq!(report["layout"], "template");
    assert_eq!(report["committed"], true);
    assert_eq!(report["summary"]["created"], 3);
    assert_eq!(
        outcomes(&report),
        vec![
            (2, "created".into()),
            (3, "created".into()),
            (4, "created".into())
        ]
    );
    assert_eq!(report["rows"][0]["address"], "julie@famille.example");
    assert!(report["rows"][0]["generated_password"].is_null());
    let service_now = app
        .get(&format!("/v1/mail-services/{service}"), &alice.token)
        .await;
    assert_eq!(service_now.assert_status(200)["address_count"], 3);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 3);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM forwards WHERE target = 'julie@home.example' AND keep_copy = false").await,
        1
    );
    // Passwords are real argon2id hashes: attaching with one works.
    app.post(
        "/v1/me/addresses",
        &alice.token,
        serde_json::json!({ "address": "marc@famille.example", "password": "orange kettle singing loudly" }),
    )
    .await
    .assert_status(200);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE action = 'address.created'")
            .await,
        3
    );
}

async fn named_headers_report_every_row_and_atomic_writes_nothing_on_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    crate::addresses::create_for_me(&app, &alice, &service, "taken").await;
    let csv = "display_name,address,password\n\"Julie, compta\",julie@famille.example,violet umbrella marching north\nX,jo%hn@famille.example,violet umbrella marching north\nY,taken@famille.example,violet umbrella marching north\nZ,julie@famille.example,orange kettle singing loudly\nW,weak@famille.example,password123\nV,far@elsewhere.example,violet umbrella marching north\n";
    let res = import(&app, &alice, &service, "", csv).await;
    // Refused: a 422 problem that is also the whole report, each invalid row's errors named.
    let report = res.assert_problem(422, "validation_failed").body.clone();
    assert!(
        res.error_fields()
            .contains(&"rows[1].local_part".to_string()),
        "{}",
        res.text
    );
    assert!(res.error_fields().contains(&"rows[4].password".to_string()));
    assert_eq!(report["layout"], "named");
    assert_eq!(report["committed"], false);
    assert!(report["message"].as_str().unwrap().contains("atomic"));
    assert_eq!(
        outcomes(&report),
        vec![
            (2, "skipped".into()),
            (3, "invalid".into()),
            (4, "invalid".into()),
            (5, "invalid".into()),
            (6, "invalid".into()),
            (7, "invalid".into()),
        ]
    );
    let rows = report["rows"].as_array().unwrap();
    assert!(rows[1]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("'%' at position 3"));
    assert_eq!(rows[2]["errors"][0]["message"], "exists already");
    assert_eq!(rows[3]["errors"][0]["message"], "repeats line 2");
    assert_eq!(rows[4]["errors"][0]["field"], "password");
    assert!(rows[5]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("not a domain"));
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 1);
}

async fn partial_import_creates_the_valid_rows_and_reports_the_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let csv = "local_part,password\njulie,violet umbrella marching north\nbad..dots,violet umbrella marching north\nmarc,orange kettle singing loudly\n";
    let res = import(&app, &alice, &service, "?atomic=false", csv).await;
    let report = res.assert_status(201).clone();
    assert_eq!(report["committed"], true);
    assert_eq!(
        outcomes(&report),
        vec![
            (2, "created".into()),
            (3, "invalid".into()),
            (4, "created".into())
        ]
    );
    assert_eq!(report["summary"]["created"], 2);
    assert_eq!(report["summary"]["invalid"], 1);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 2);
}

async fn dry_run_validates_everything_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let csv = "local_part;password\njulie;violet umbrella marching north\nmarc;\n";
    let res = import(&app, &alice, &service, "?dry_run=true", csv).await;
    let report = res.assert_status(200).clone();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["committed"], false);
    assert_eq!(
        outcomes(&report),
        vec![(2, "would_create".into()), (3, "invalid".into())]
    );
    assert_eq!(report["rows"][1]["errors"][0]["field"], "password");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 0);
}

async fn generated_passwords_are_returned_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let csv = "local_part,password\njulie,\npaul,violet umbrella marching north\n";
    let res = import(&app, &alice, &service, "?generate_passwords=true", csv).await;
    let report = res.assert_status(201).clone();
    let generated = report["rows"][0]["generated_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 20);
    assert!(report["rows"][1]["generated_password"].is_null());
    app.post(
        "/v1/me/addresses",
        &alice.token,
        serde_json::json!({ "address": "julie@famille.example", "password": generated }),
    )
    .await
    .assert_status(200);
    // Never stored or logged in clear.
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM events WHERE CAST(details AS TEXT) LIKE '%{generated}%'"
        ))
        .await,
        0
    );
}

async fn limits_are_checked_before_writing(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.daily_address_creations = 3).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let csv = "local_part,password\na,violet umbrella marching north\nb,violet umbrella marching north\nc,violet umbrella marching north\nd,violet umbrella marching north\n";
    let res = import(&app, &alice, &service, "", csv).await;
    // Valid rows without room: a 409 problem carrying the report.
    let report = res
        .assert_problem(409, "address_limit_reached")
        .body
        .clone();
    assert_eq!(report["committed"], false);
    assert!(report["message"].as_str().unwrap().contains("room for 3"));
    assert!(report["detail"].as_str().unwrap().contains("room for 3"));
    assert_eq!(report["summary"]["skipped"], 4);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 0);
    let res = import(&app, &alice, &service, "?atomic=false", csv).await;
    let report = res.assert_status(201).clone();
    assert_eq!(
        outcomes(&report),
        vec![
            (2, "created".into()),
            (3, "created".into()),
            (4, "created".into()),
            (5, "skipped".into())
        ]
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 3);
    // The starter pack's single address.
    let starter = create_service(&app, &alice, Some("starter.example"), "starter").await;
    let starter = starter["id"].as_str().unwrap();
    let res = import(
        &app,
        &alice,
        starter,
        "",
        "local_part,password\nx,violet umbrella marching north\ny,violet umbrella marching north\n",
    )
    .await;
    assert_eq!(
        res.assert_problem(409, "address_limit_reached").body["committed"],
        false
    );
}

async fn bad_files_get_problems_naming_the_column(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.import_max_rows = 5;
        c.import_max_bytes = 4096;
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let res = import(&app, &alice, &service, "", "local_part,passwd\nx,y\n").await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["header.passwd"]);
    assert!(res.body["detail"].as_str().unwrap().contains("passwd"));
    import(&app, &alice, &service, "", "")
        .await
        .assert_problem(422, "validation_failed");
    let mut many = String::from("local_part,password\n");
    for i in 0..6 {
        many.push_str(&format!("u{i},violet umbrella marching north\n"));
    }
    import(&app, &alice, &service, "", &many)
        .await
        .assert_problem(413, "payload_too_large");
    let huge = format!("local_part,password\n{}\n", "x".repeat(5000));
    import(&app, &alice, &service, "", &huge)
        .await
        .assert_problem(413, "payload_too_large");
    let res = app
        .client
        .post(app.url(&format!("/v1/mail-services/{service}/addresses/import")))
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    into_test_response(res)
        .await
        .assert_problem(415, "unsupported_media_type");
    let res = app
        .client
        .post(app.url(&format!("/v1/mail-services/{service}/addresses/import")))
        .bearer_auth(&alice.token)
        .header("content-type", "text/csv")
        .body(b"local_part,password\n\xff\xfe,x\n".to_vec())
        .send()
        .await
        .unwrap();
    into_test_response(res)
        .await
        .assert_problem(400, "malformed_request");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 0);
}

async fn racing_imports_never_exceed_the_pack(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.daily_address_creations = 5).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let client = app.client.clone();
            let url = app.url(&format!(
                "/v1/mail-services/{service}/addresses/import?atomic=false"
            ));
            let token = alice.token.clone();
            let mut csv = String::from("local_part,password\n");
            for i in 0..3 {
                csv.push_str(&format!("f{n}u{i},violet umbrella marching north\n"));
            }
            tokio::spawn(async move {
                let res = client
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "text/csv")
                    .body(csv)
                    .send()
                    .await
                    .unwrap();
                let body: Value = res.json().await.unwrap();
                body["summary"]["created"].as_u64().unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap();
    }
    assert_eq!(created, 5);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 5);
}

/// Sends one CSV import of `service` without waiting in line (for races).
async fn send_import(
    app: &TestApp,
    user: &TestUser,
    service: &str,
    query: &str,
    csv: String,
) -> TestResponse {
    let res = app
        .client
        .post(app.url(&format!(
            "/v1/mail-services/{service}/addresses/import{query}"
        )))
        .bearer_auth(&user.token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    into_test_response(res).await
}

async fn mail_service_address_count(app: &TestApp, service: &str) -> i64 {
    use postier::entity::address;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let service: uuid::Uuid = service.parse().unwrap();
    let rows = address::Entity::find()
        .filter(address::Column::MailServiceId.eq(service))
        .count(app.db())
        .await
        .unwrap();
    i64::try_from(rows).unwrap()
}

async fn racing_imports_for_the_starter_packs_only_address_create_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let starter = create_service(&app, &alice, Some("starter.example"), "starter").await;
    let starter = starter["id"].as_str().unwrap().to_string();
    for round in 0..3 {
        let first = format!("local_part,password\nfirst{round},violet umbrella marching north\n");
        let second = format!("local_part,password\nsecond{round},violet umbrella marching north\n");
        let (a, b) = tokio::join!(
            send_import(&app, &alice, &starter, "", first),
            send_import(&app, &alice, &starter, "", second),
        );
        if round == 0 {
            // The slot is free: exactly one import takes it, the other writes nothing.
            let mut statuses = [a.status.as_u16(), b.status.as_u16()];
            statuses.sort_unstable();
            assert_eq!(statuses, [201, 409], "{} / {}", a.text, b.text);
            let (won, lost) = if a.status.as_u16() == 201 {
                (&a, &b)
            } else {
                (&b, &a)
            };
            assert_eq!(won.body["committed"], true);
            assert_eq!(won.body["summary"]["created"], 1);
            assert_eq!(lost.body["committed"], false);
            assert_eq!(lost.body["summary"]["created"], 0);
            assert_eq!(lost.body["rows"][0]["outcome"], "skipped");
            assert!(lost.body["message"]
                .as_str()
                .unwrap()
                .contains("room for 0"));
        } else {
            // Full: neither writes.
            for res in [&a, &b] {
                assert_eq!(
                    res.assert_problem(409, "address_limit_reached").body["committed"],
                    false
                );
                assert_eq!(res.body["summary"]["created"], 0);
            }
        }
        assert_eq!(mail_service_address_count(&app, &starter).await, 1);
        let service = app
            .get(&format!("/v1/mail-services/{starter}"), &alice.token)
            .await;
        assert_eq!(service.assert_status(200)["address_count"], 1);
    }
}

async fn racing_partial_imports_share_the_last_slot_of_a_free_service(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.add_member_to(alice.org_id, &alice, &bob, "admin").await;
    // One address per member: two, one taken already.
    let free = create_service(&app, &alice, None, "free").await;
    let free = free["id"].as_str().unwrap().to_string();
    assert_eq!(free_capacity(&app, &alice, &free).await, (0, 2));
    let res = import(
        &app,
        &alice,
        &free,
        "",
        "local_part,password\nalice.first,violet umbrella marching north\n",
    )
    .await;
    assert_eq!(res.assert_status(201)["summary"]["created"], 1);
    assert_eq!(free_capacity(&app, &alice, &free).await, (1, 1));
    let csv = |who: &str| {
        format!(
            "local_part,password\n{who}.a,violet umbrella marching north\n{who}.b,violet umbrella marching north\n"
        )
    };
    let (a, b) = tokio::join!(
        send_import(&app, &alice, &free, "?atomic=false", csv("alice")),
        send_import(&app, &bob, &free, "?atomic=false", csv("bob")),
    );
    let created: Vec<u64> = [&a, &b]
        .iter()
        .map(|r| {
            assert!(
                r.status.as_u16() == 201 || r.status.as_u16() == 409,
                "{}",
                r.text
            );
            r.body["summary"]["created"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(created.iter().sum::<u64>(), 1, "{} / {}", a.text, b.text);
    let skipped: u64 = [&a, &b]
        .iter()
        .map(|r| r.body["summary"]["skipped"].as_u64().unwrap())
        .sum();
    assert_eq!(skipped, 3);
    assert_eq!(mail_service_address_count(&app, &free).await, 2);
    assert_eq!(free_capacity(&app, &alice, &free).await, (2, 0));
}

/// (addresses held, slots left) of a free service, as its reader and the database see it.
async fn free_capacity(app: &TestApp, user: &TestUser, service: &str) -> (i64, i64) {
    let res = app
        .get(&format!("/v1/mail-services/{service}"), &user.token)
        .await;
    let held = res.assert_status(200)["address_count"].as_i64().unwrap();
    assert_eq!(held, mail_service_address_count(app, service).await);
    let members = app
        .get(
            &format!("/v1/organizations/{}/members", user.org_id),
            &user.token,
        )
        .await;
    let members = members.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .len() as i64;
    (held, members - held)
}

const BOUNDARY: &str = "postier-test-boundary";

/// A `multipart/form-data` body with one part per `(name, content)`, as a browser form or a
/// generated client sends it.
fn multipart(parts: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, content) in parts {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"addresses.csv\"\r\nContent-Type: text/csv\r\n\r\n{content}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    body
}

async fn import_multipart(
    app: &TestApp,
    user: &TestUser,
    service: &str,
    query: &str,
    body: String,
) -> TestResponse {
    let res = app
        .client
        .post(app.url(&format!(
            "/v1/mail-services/{service}/addresses/import{query}"
        )))
        .bearer_auth(&user.token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    into_test_response(res).await
}

async fn a_multipart_file_field_imports_like_a_csv_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let csv = "local_part;password\njulie;violet umbrella marching north\nmarc;orange kettle singing loudly\n";
    let res = import_multipart(&app, &alice, &service, "", multipart(&[("file", csv)])).await;
    let report = res.assert_status(201).clone();
    assert_eq!(report["committed"], true);
    assert_eq!(
        outcomes(&report),
        vec![(2, "created".into()), (3, "created".into())]
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM addresses WHERE local_part IN ('julie', 'marc')")
            .await,
        2
    );
    // A refused multipart import answers like a refused CSV body: 422 with the report.
    let csv = "local_part,password\npaul,violet umbrella marching north\njulie,orange kettle singing loudly\n";
    let res = import_multipart(&app, &alice, &service, "", multipart(&[("file", csv)])).await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["rows[1].address"]);
    assert_eq!(res.body["committed"], false);
    assert_eq!(
        outcomes(&res.body),
        vec![(2, "skipped".into()), (3, "invalid".into())]
    );
    assert_eq!(
        res.body["rows"][1]["errors"][0]["message"],
        "exists already"
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 2);
}

async fn multipart_imports_are_refused_without_a_file_or_beyond_the_size_limit(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.import_max_bytes = 4096).await;
    let alice = app.user("alice@example.com").await;
    let service = premium(&app, &alice).await;
    let csv = "local_part,password\njulie,violet umbrella marching north\n";
    let res = import_multipart(&app, &alice, &service, "", multipart(&[("csv", csv)])).await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["csv"]);
    // A multipart body holds at least one part (RFC 2046): none is malformed.
    import_multipart(&app, &alice, &service, "", multipart(&[]))
        .await
        .assert_problem(400, "malformed_request");
    let res = import_multipart(
        &app,
        &alice,
        &service,
        "",
        multipart(&[("file", csv), ("file", csv)]),
    )
    .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["file"]);
    // Over the limit: refused as the file streams in (the declared length is within the
    // room left for the multipart envelope), and at once for a larger declared length.
    let huge = format!("local_part,password\n{}\n", "x".repeat(5000));
    import_multipart(&app, &alice, &service, "", multipart(&[("file", &huge)]))
        .await
        .assert_problem(413, "payload_too_large");
    let huger = format!("local_part,password\n{}\n", "x".repeat(40_000));
    import_multipart(&app, &alice, &service, "", multipart(&[("file", &huger)]))
        .await
        .assert_problem(413, "payload_too_large");
    import_multipart(&app, &alice, &service, "", "not multipart at all".into())
        .await
        .assert_problem(400, "malformed_request");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM addresses").await, 0);
}
