//! Authorization never hides a failing database: when the query that decides who may see a
//! resource fails, the answer is a 500 problem (the cause logged), not a 404 or a 403 that
//! would tell the caller something false.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::addresses::{premium, STRONG};
use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    revoking_an_invitation_answers_500_when_the_membership_query_fails,
    answering_an_invitation_answers_500_when_the_membership_query_fails,
    revoking_a_share_link_answers_500_when_the_membership_query_fails,
);

/// Makes every query that reads memberships fail from now on (the table is renamed away).
async fn break_memberships(app: &TestApp) {
    let db = app.db();
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "ALTER TABLE memberships RENAME TO memberships_unreachable",
    ))
    .await
    .unwrap();
}

async fn shared_address(app: &TestApp, owner: &crate::helpers::TestUser) -> String {
    let service = premium(app, owner).await;
    let res = app
        .post(
            &format!("/v1/mail-services/{service}/addresses"),
            &owner.token,
            json!({ "local_part": "info", "for": "several_users", "password": STRONG }),
        )
        .await;
    res.assert_status(201)["id"].as_str().unwrap().to_string()
}

async fn revoking_an_invitation_answers_500_when_the_membership_query_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let address = shared_address(&app, &alice).await;
    let invitation = app
        .post(
            &format!("/v1/addresses/{address}/invitations"),
            &alice.token,
            json!({ "invitee": { "email": "guest@elsewhere.example" } }),
        )
        .await;
    let id = invitation.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    break_memberships(&app).await;
    let res = app
        .delete(&format!("/v1/invitations/{id}"), &alice.token)
        .await;
    res.assert_problem(500, "internal_error");
    // Nothing was revoked on the way.
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM invitations WHERE status = 'pending'")
            .await,
        1
    );
}

async fn answering_an_invitation_answers_500_when_the_membership_query_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let address = shared_address(&app, &alice).await;
    let invitation = app
        .post(
            &format!("/v1/addresses/{address}/invitations"),
            &alice.token,
            json!({ "invitee": { "email": "guest@elsewhere.example" } }),
        )
        .await;
    let id = invitation.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    break_memberships(&app).await;
    // Bob is a stranger to the invitation: with a working database he would get 404; with a
    // failing one he must not be told "not found".
    for path in [
        format!("/v1/invitations/{id}/accept"),
        format!("/v1/invitations/{id}/decline"),
    ] {
        app.post(&path, &bob.token, json!({}))
            .await
            .assert_problem(500, "internal_error");
    }
}

async fn revoking_a_share_link_answers_500_when_the_membership_query_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let address = shared_address(&app, &alice).await;
    let link = app
        .post(
            &format!("/v1/addresses/{address}/share-links"),
            &alice.token,
            json!({ "permissions": ["send_email"] }),
        )
        .await;
    let id = link.assert_status(201)["id"].as_str().unwrap().to_string();
    break_memberships(&app).await;
    app.delete(&format!("/v1/share-links/{id}"), &alice.token)
        .await
        .assert_problem(500, "internal_error");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM share_links WHERE revoked_at IS NULL")
            .await,
        1
    );
}
