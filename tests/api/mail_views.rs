//! The views the mail servers read (migration `create_mail_views`), on both backends, over
//! rows written straight into the tables: what each view shows, and that `down()` removes
//! them and `up()` brings them back; and a migration that refuses to run over data it would
//! break.

use chrono::Utc;
use migration::MigratorTrait;
use postier::entity::{address, alias, domain, forward, mail_service, organization};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set, Statement};
use uuid::Uuid;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(
    mail_views_show_what_postfix_and_dovecot_need,
    mail_views_are_removed_by_down_and_restored_by_up,
    upgrading_stops_with_a_reason_while_an_organization_has_two_free_services,
    the_schema_refuses_unknown_names_and_permission_bits,
);

const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

async fn service(db: &DatabaseConnection, org: Uuid, pack: &str, domain: &str) -> Uuid {
    let id = Uuid::now_v7();
    mail_service::ActiveModel {
        id: Set(id),
        organization_id: Set(org),
        pack: Set(serde_json::from_value(serde_json::json!(pack)).unwrap()),
        domain: Set(domain.into()),
        default_permissions: Set(Default::default()),
        revision: Set(0),
        address_count: Set(0),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
    id
}

async fn link(db: &DatabaseConnection, service: Uuid, name: &str, is_main: bool) {
    domain::ActiveModel {
        name: Set(name.into()),
        mail_service_id: Set(service),
        is_main: Set(is_main),
        dkim_selector: Set("postier".into()),
        dkim_private_key: Set(String::new()),
        dkim_public_key: Set(String::new()),
        created_at: Set(Utc::now()),
        ownership_token: Set(None),
        // Proven: the views route mail for proven domains only (tests/api/domain_ownership.rs).
        proven_at: Set(Some(Utc::now())),
    }
    .insert(db)
    .await
    .unwrap();
}

async fn add(
    db: &DatabaseConnection,
    service: Uuid,
    addr: &str,
    kind: &str,
    hash: Option<&str>,
) -> Uuid {
    let id = Uuid::now_v7();
    let (local, domain) = addr.split_once('@').unwrap();
    address::ActiveModel {
        id: Set(id),
        mail_service_id: Set(service),
        address: Set(addr.into()),
        local_part: Set(local.into()),
        domain: Set(domain.into()),
        kind: Set(serde_json::from_value(serde_json::json!(kind)).unwrap()),
        display_name: Set(None),
        password_hash: Set(hash.map(str::to_string)),
        unified: Set(false),
        created_by: Set(None),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
    id
}

async fn alias_of(db: &DatabaseConnection, address_id: Uuid, alias: &str) {
    alias::ActiveModel {
        alias: Set(alias.into()),
        address_id: Set(address_id),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
}

async fn forward_to(
    db: &DatabaseConnection,
    address_id: Uuid,
    target: &str,
    keep_copy: bool,
    confirmed: bool,
) {
    forward::ActiveModel {
        id: Set(Uuid::now_v7()),
        address_id: Set(address_id),
        target: Set(target.into()),
        keep_copy: Set(keep_copy),
        confirmed_at: Set(confirmed.then(Utc::now)),
        token_hash: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
}

/// Rows of a query as sorted `a|b` strings.
async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    let mut out: Vec<String> = rows
        .iter()
        .map(|row| {
            let first: String = row.try_get_by_index(0).unwrap();
            match row.try_get_by_index::<String>(1) {
                Ok(second) => format!("{first}|{second}"),
                Err(_) => first,
            }
        })
        .collect();
    out.sort();
    out
}

async fn mail_views_show_what_postfix_and_dovecot_need(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = app.db();
    let org = Uuid::now_v7();
    organization::ActiveModel {
        id: Set(org),
        name: Set("acme".into()),
        personal: Set(false),
        personal_account_id: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
    let premium = service(db, org, "premium", "acme.test").await;
    link(db, premium, "acme.test", true).await;
    link(db, premium, "other.test", false).await;
    // A free service lives on the shared free domain, which has no `domains` row.
    let free = service(db, org, "free", "free.test").await;
    let alice = add(db, premium, "alice@acme.test", "personal", Some(HASH)).await;
    let bob = add(db, premium, "bob@other.test", "shared", None).await;
    let noreply = add(db, premium, "noreply@acme.test", "no_reply", Some(HASH)).await;
    add(db, premium, "catchall@acme.test", "catchall", Some(HASH)).await;
    let carol = add(db, free, "carol@free.test", "personal", Some(HASH)).await;
    // Not an argon2id PHC string: nobody logs in with it.
    let dan = add(db, free, "dan@free.test", "personal", Some("!disabled")).await;
    // An address on a domain its service does not host is served by nobody.
    add(db, free, "eve@acme.test", "personal", Some(HASH)).await;
    alias_of(db, alice, "info@acme.test").await;
    alias_of(db, bob, "team@acme.test").await;
    alias_of(db, noreply, "news@acme.test").await;
    // Forwarding: only confirmed targets receive; without keep-copy the mailbox gets nothing.
    forward_to(db, alice, "alice@elsewhere.example", true, true).await;
    forward_to(db, alice, "unconfirmed@elsewhere.example", true, false).await;
    forward_to(db, carol, "carol@elsewhere.example", false, true).await;
    forward_to(db, dan, "dan@elsewhere.example", false, false).await;

    assert_eq!(
        rows(db, "SELECT domain FROM mail_domains").await,
        ["acme.test", "free.test", "other.test"]
    );
    assert_eq!(
        rows(db, "SELECT address FROM mail_mailboxes").await,
        [
            "alice@acme.test",
            "bob@other.test",
            "carol@free.test",
            "catchall@acme.test",
            "dan@free.test"
        ]
    );
    let ids = rows(
        db,
        "SELECT mailbox_id FROM mail_mailboxes WHERE address = 'alice@acme.test'",
    )
    .await;
    assert_eq!(ids, [alice.simple().to_string()]);
    assert_eq!(
        rows(db, "SELECT address FROM mail_send_only").await,
        ["noreply@acme.test"]
    );
    assert_eq!(
        rows(db, "SELECT source, destination FROM mail_aliases").await,
        [
            "@acme.test|catchall@acme.test",
            "alice@acme.test|alice@acme.test",
            "alice@acme.test|alice@elsewhere.example",
            "bob@other.test|bob@other.test",
            "carol@free.test|carol@elsewhere.example",
            "catchall@acme.test|catchall@acme.test",
            "dan@free.test|dan@free.test",
            "info@acme.test|alice@acme.test",
            "team@acme.test|bob@other.test",
        ]
    );
    assert_eq!(
        rows(db, "SELECT sender, login FROM mail_senders").await,
        [
            "alice@acme.test|alice@acme.test",
            "bob@other.test|bob@other.test",
            "carol@free.test|carol@free.test",
            "dan@free.test|dan@free.test",
            "info@acme.test|alice@acme.test",
            "news@acme.test|noreply@acme.test",
            "noreply@acme.test|noreply@acme.test",
            "team@acme.test|bob@other.test",
        ]
    );
    assert_eq!(
        rows(db, "SELECT address, password_hash FROM mail_passwords").await,
        [
            format!("alice@acme.test|{HASH}"),
            format!("carol@free.test|{HASH}"),
            format!("catchall@acme.test|{HASH}"),
            format!("noreply@acme.test|{HASH}"),
        ]
    );
    // IMAP needs a mailbox, SMTP the right to send.
    assert_eq!(
        rows(db, "SELECT address FROM mail_passwords WHERE receives").await,
        ["alice@acme.test", "carol@free.test", "catchall@acme.test"]
    );
    assert_eq!(
        rows(db, "SELECT address FROM mail_passwords WHERE sends").await,
        ["alice@acme.test", "carol@free.test", "noreply@acme.test"]
    );
}

async fn mail_views_are_removed_by_down_and_restored_by_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = app.db();
    let count_views = "SELECT COUNT(*) FROM mail_domains";
    assert_eq!(app.scalar_i64(count_views).await, 0);
    // Roll back this migration and any registered after it.
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let position = names
        .iter()
        .position(|n| n == "m20261128_000001_create_mail_views")
        .unwrap();
    let steps = u32::try_from(names.len() - position).unwrap();
    migration::Migrator::down(db, Some(steps)).await.unwrap();
    assert!(db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            count_views
        ))
        .await
        .is_err());
    migration::Migrator::up(db, None).await.unwrap();
    assert_eq!(app.scalar_i64(count_views).await, 0);
}

async fn upgrading_stops_with_a_reason_while_an_organization_has_two_free_services(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let db = app.db();
    let alice = app.user("alice@example.com").await;
    // Back to before the one-free-service rule, when two were allowed.
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let position = names
        .iter()
        .position(|n| n == "m20261128_000004_one_free_service_per_organization")
        .unwrap();
    let steps = u32::try_from(names.len() - position).unwrap();
    migration::Migrator::down(db, Some(steps)).await.unwrap();
    service(db, alice.org_id, "free", "free.example").await;
    let second = service(db, alice.org_id, "free", "free.example").await;
    let err = migration::Migrator::up(db, None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("1 organization(s) hold more than one free mail service"),
        "{err}"
    );
    mail_service::Entity::delete_by_id(second)
        .exec(db)
        .await
        .unwrap();
    migration::Migrator::up(db, None).await.unwrap();
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM mail_services WHERE pack = 'free'")
            .await,
        1
    );
}

async fn the_schema_refuses_unknown_names_and_permission_bits(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = app.db();
    let alice = app.user("alice@example.com").await;
    let service_id = service(db, alice.org_id, "premium", "acme.test").await;
    link(db, service_id, "acme.test", true).await;
    add(db, service_id, "a@acme.test", "personal", None).await;
    // One account, organization, service and address exist: no row needs choosing.
    let refused = [
        "UPDATE addresses SET kind = 'robot'",
        "UPDATE mail_services SET pack = 'gold'",
        "UPDATE mail_services SET default_permissions = 4096",
        "UPDATE mail_services SET default_permissions = -1",
        "UPDATE memberships SET role = 'king'",
    ];
    for sql in &refused {
        let err = db
            .execute_raw(Statement::from_string(db.get_database_backend(), *sql))
            .await
            .expect_err(sql);
        assert!(err.to_string().contains("_check"), "{sql}: {err}");
    }
    // Known values still pass, and nothing refused was written.
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "UPDATE mail_services SET default_permissions = 4095, pack = 'starter'",
    ))
    .await
    .unwrap();
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM addresses WHERE kind = 'personal'")
            .await,
        1
    );
}
