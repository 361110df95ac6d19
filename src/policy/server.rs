//! The policy service's TCP listener: one task per Postfix connection, each reading requests
//! one after the other on its persistent connection and writing one reply per request. A
//! client outside the configured networks, or past its cap of connections, is closed before
//! anything is read ([`super::clients`]). A connection that breaks the protocol or stays idle
//! past the idle timeout is logged and closed; the others carry on. Also runs
//! the janitor that sweeps the caches (old counts are pruned with every other counter by
//! `startup`). Owns no decision logic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::clients::{Admission, Slot};
use super::decide::Engine;
use super::protocol::{self, Request};

/// Connections served at once; more are closed at once (Postfix retries, then applies
/// `smtpd_policy_service_default_action`). Each smtpd process holds one connection.
pub const MAX_CONNECTIONS: usize = 4096;
/// How often caches are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A running policy service.
pub struct PolicyServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
    janitor: JoinHandle<()>,
    connections: Arc<Semaphore>,
}

/// Who may connect and for how long a connection may idle (`POSTIER_POLICY_CLIENTS`,
/// `POSTIER_POLICY_MAX_CONNECTIONS_PER_CLIENT`, `POSTIER_POLICY_IDLE_TIMEOUT_SECS`).
#[derive(Debug)]
pub struct Limits {
    pub admission: Admission,
    /// A connection without a complete request for this long is closed. Shorter than
    /// Postfix's own `smtpd_policy_service_max_idle` (300 s) on purpose: a connection held
    /// open by something that is not an MTA costs a slot only briefly, and Postfix simply
    /// reconnects when it finds its idle connection closed.
    pub idle_timeout: Duration,
}

impl Limits {
    pub fn from_config(config: &crate::config::Config) -> Limits {
        Limits {
            admission: Admission::from_config(config),
            idle_timeout: Duration::from_secs(config.policy_idle_timeout_secs),
        }
    }
}

impl PolicyServer {
    /// Listens on `addr` and serves the clients `limits` admits with `engine` on the current
    /// runtime.
    pub async fn start(
        addr: SocketAddr,
        engine: Arc<Engine>,
        limits: Limits,
    ) -> std::io::Result<PolicyServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, stopped) = watch::channel(false);
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let accept_loop = tokio::spawn(accept_loop(
            listener,
            engine.clone(),
            connections.clone(),
            Arc::new(limits),
            stopped.clone(),
        ));
        let janitor = tokio::spawn(janitor(engine, stopped));
        tracing::info!(%local_addr, "policy service listening");
        if local_addr.ip().is_unspecified() {
            tracing::warn!(
                %local_addr,
                "the policy service has no authentication: make sure only the MTAs can reach it \
                 (POSTIER_POLICY_CLIENTS admits by network only)"
            );
        }
        Ok(PolicyServer {
            local_addr,
            shutdown,
            accept_loop,
            janitor,
            connections,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes idle connections, and waits (up to `grace`) for requests in
    /// flight to be answered.
    pub async fn stop(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let _ = self.accept_loop.await;
        let _ = self.janitor.await;
        let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(grace, self.connections.acquire_many(all)).await;
        if drained.is_err() {
            tracing::warn!("policy service: connections still busy at shutdown");
        }
        tracing::info!("policy service stopped");
    }
}

async fn accept_loop(
    listener: TcpListener,
    engine: Arc<Engine>,
    connections: Arc<Semaphore>,
    limits: Arc<Limits>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop_requested(&mut stopped) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Dropping the stream closes it: the refused client gets no byte.
                let slot = match limits.admission.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        limits.admission.log_refusal(peer.ip(), refusal);
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "policy service: too many connections; closing this one");
                    continue;
                };
                let engine = engine.clone();
                let stopped = stopped.clone();
                let idle_timeout = limits.idle_timeout;
                tokio::spawn(async move {
                    serve(stream, peer, &engine, idle_timeout, stopped).await;
                    drop(permit);
                    drop::<Slot>(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "policy service: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection until the peer closes it, breaks the protocol, stays idle too long
/// or the service stops.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    engine: &Engine,
    idle_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    // Replies are tiny and awaited by Postfix: never let Nagle hold them back.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "policy service: cannot set TCP_NODELAY");
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(8 * 1024, read);
    let mut line = Vec::with_capacity(256);
    let mut request = Request::default();
    let mut reply = Vec::with_capacity(256);
    tracing::debug!(%peer, "policy connection opened");
    loop {
        let read = tokio::select! {
            _ = stop_requested(&mut stopped) => break,
            read = tokio::time::timeout(
                idle_timeout,
                protocol::read_request(&mut reader, &mut line, &mut request),
            ) => read,
        };
        match read {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => break,
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "policy service: protocol error; closing this connection");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "policy service: idle connection closed");
                break;
            }
        }
        let action = engine.decide(&request).await;
        reply.clear();
        action.encode(&mut reply);
        if let Err(e) = write.write_all(&reply).await {
            tracing::debug!(%peer, error = %e, "policy service: cannot reply; connection closed");
            break;
        }
    }
    let _ = write.shutdown().await;
    tracing::debug!(%peer, "policy connection closed");
}

/// Resolves once the service is asked to stop (or its handle is gone).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn janitor(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = stop_requested(&mut stopped) => return,
            _ = sweep.tick() => engine.sweep(),
        }
    }
}
