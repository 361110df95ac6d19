//! Who may talk to the policy service: only the configured client networks, a capped number of
//! connections per client, and no connection idling past the idle timeout. Each test plays the
//! attacker over the policy socket, as a client that is not an MTA would.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::policy::{
    counted, new_owner, policy_app_with, postfix_request, recipients, send, sender_on, Policy,
};

on_both_backends!(
    a_client_outside_the_policy_networks_is_closed_at_once_and_spends_no_budget,
    an_idle_or_dribbling_policy_connection_is_closed_after_the_idle_timeout,
    a_client_holding_its_cap_of_policy_connections_gets_no_more,
);

/// An `END-OF-MESSAGE` for 400 recipients: what spends an address's 24 h budget.
fn spending_request(login: &str) -> Vec<u8> {
    let mut request = String::new();
    for (name, value) in postfix_request("END-OF-MESSAGE", login, login, "", 400, "1.0") {
        request.push_str(&format!("{name}={value}\n"));
    }
    request.push('\n');
    request.into_bytes()
}

/// Whether a new connection to `port` gets an answer to a request within two seconds.
async fn answered(port: u16, login: &str) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let (read, mut write) = stream.into_split();
    let request = postfix_request("RCPT", login, login, "r@elsewhere.test", 0, "2.0");
    let mut text = String::new();
    for (name, value) in request {
        text.push_str(&format!("{name}={value}\n"));
    }
    text.push('\n');
    if write.write_all(text.as_bytes()).await.is_err() {
        return false;
    }
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut line)).await,
        Ok(Ok(n)) if n > 0 && line.starts_with("action=")
    )
}

fn port_of(app: &TestApp) -> u16 {
    app.policy_port.expect("the policy service is on")
}

async fn a_client_outside_the_policy_networks_is_closed_at_once_and_spends_no_budget(
    backend: Backend,
) {
    // The MTAs live in 10.0.0.0/8 and on ::1; the test client connects from 127.0.0.1.
    let app = policy_app_with(backend, |config| {
        config.policy_clients = vec!["10.0.0.0/8".into(), "::1".into()];
    })
    .await;
    let owner = new_owner(&app).await;
    let alice = sender_on(&app, &owner, "starter", "alice@example.test").await;
    let login = "alice@example.test";

    let started = Instant::now();
    let mut attacker = Policy::connect(port_of(&app)).await;
    // The write may already fail (the server closed the socket): either way nothing is read.
    let _ = attacker.writer.write_all(&spending_request(login)).await;
    assert!(attacker.closed_by_server().await, "no answer, only a close");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed at once, not after a timeout: {:?}",
        started.elapsed()
    );
    assert!(!answered(port_of(&app), login).await);
    assert_eq!(counted(&app, alice).await, 0, "nothing was spent");
}

async fn an_idle_or_dribbling_policy_connection_is_closed_after_the_idle_timeout(backend: Backend) {
    let app = policy_app_with(backend, |config| {
        config.policy_idle_timeout_secs = 1;
    })
    .await;
    let owner = new_owner(&app).await;
    sender_on(&app, &owner, "starter", "alice@example.test").await;
    let login = "alice@example.test";

    // A connection in use is not closed: requests every half second for twice the timeout.
    let mut busy = Policy::to(&app).await;
    for _ in 0..4 {
        assert!(send(&mut busy, login, login, &recipients(1))
            .await
            .delivered());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Then it falls silent, and is closed.
    let started = Instant::now();
    assert!(busy.closed_by_server().await);
    assert!(started.elapsed() < Duration::from_secs(3));

    // A client that sends half a request and then a byte now and then (slowloris) gets no
    // longer than the timeout for the whole request.
    let mut dribbler = Policy::to(&app).await;
    let started = Instant::now();
    let dribble = async {
        for byte in b"request=smtpd_access_policy\nprotocol_state=RCPT\n" {
            if dribbler.writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    dribble.await;
    assert!(dribbler.closed_by_server().await);
    // Dribbling all of it would take almost 10 s; the server cut it after about one.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

async fn a_client_holding_its_cap_of_policy_connections_gets_no_more(backend: Backend) {
    let app = policy_app_with(backend, |config| {
        config.policy_max_connections_per_client = 2;
    })
    .await;
    let owner = new_owner(&app).await;
    sender_on(&app, &owner, "starter", "alice@example.test").await;
    let login = "alice@example.test";
    let port = port_of(&app);

    let mut first = Policy::to(&app).await;
    let mut second = Policy::to(&app).await;
    for client in [&mut first, &mut second] {
        assert!(send(client, login, login, &recipients(1)).await.delivered());
    }
    let mut third = Policy::connect(port).await;
    let _ = third.writer.write_all(&spending_request(login)).await;
    assert!(third.closed_by_server().await, "past the cap: closed");

    // The two held connections still work; once one ends, its place is free again.
    assert!(send(&mut second, login, login, &recipients(1))
        .await
        .delivered());
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !answered(port, login).await {
        assert!(
            Instant::now() < deadline,
            "the freed place was never given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
