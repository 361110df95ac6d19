//! Who may talk to the policy service: the configured client networks
//! (`POSTIER_POLICY_CLIENTS`, loopback by default) and at most
//! `POSTIER_POLICY_MAX_CONNECTIONS_PER_CLIENT` connections per client address. The protocol has
//! no authentication, and whoever can speak it can spend any address's 24 h budget with made-up
//! `END-OF-MESSAGE` requests: the network is the only credential, so it is checked before a
//! single byte is read. Owns no socket and no decision.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (text, None),
        };
        let base: IpAddr = ip
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network (a.b.c.d/n)"))?;
        let width = match base {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => width,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= width)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {width}"))?,
        };
        Ok(Network {
            base: canonical(base),
            prefix,
        })
    }
}

impl Network {
    /// Whether `ip` lies in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, canonical(ip)) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                same_prefix(&base.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                same_prefix(&base.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// `::ffff:127.0.0.1` (an IPv4 client of a listener on `[::]`) → `127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// Parses the configured networks; the error names the first bad entry.
pub(crate) fn parse_networks(entries: &[String]) -> Result<Vec<Network>, String> {
    entries.iter().map(|entry| entry.parse()).collect()
}

/// Why a connection was closed before being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client is in none of the configured networks.
    NotAllowed,
    /// The client already holds its maximum of connections.
    TooManyConnections,
}

/// The admission rules of one running policy service, shared by its connections.
#[derive(Debug)]
pub struct Admission {
    networks: Vec<Network>,
    per_client: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Unix second of the last refusal logged, so that a flood of refused connections cannot
    /// flood the log: at most one line a second, with the count of those left out.
    logged_at: AtomicU64,
    unlogged: AtomicU64,
}

/// One admitted connection's place in its client's count, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(networks: Vec<Network>, per_client: usize) -> Admission {
        Admission {
            networks,
            per_client: per_client.max(1),
            open: Arc::default(),
            logged_at: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }

    /// The rules configured by `POSTIER_POLICY_CLIENTS` and
    /// `POSTIER_POLICY_MAX_CONNECTIONS_PER_CLIENT` (validated by [`Config::validate`]; an
    /// entry that does not parse is left out, which can only narrow who is admitted).
    pub fn from_config(config: &Config) -> Admission {
        let networks = config
            .policy_clients
            .iter()
            .filter_map(|entry| entry.parse().ok())
            .collect();
        Admission::new(networks, config.policy_max_connections_per_client)
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let ip = canonical(ip);
        if !self.networks.iter().any(|network| network.contains(ip)) {
            return Err(Refusal::NotAllowed);
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.per_client {
            return Err(Refusal::TooManyConnections);
        }
        *count += 1;
        Ok(Slot {
            ip,
            open: self.open.clone(),
        })
    }

    /// Logs a refused client (its address and the reason, nothing it sent), at most once a
    /// second.
    pub fn log_refusal(&self, ip: IpAddr, refusal: Refusal) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let last = self.logged_at.load(Ordering::Relaxed);
        if last == now
            || self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        let client = canonical(ip);
        match refusal {
            Refusal::NotAllowed => tracing::warn!(
                %client,
                also_refused = unlogged,
                "policy service: connection refused, the client is not in POSTIER_POLICY_CLIENTS"
            ),
            Refusal::TooManyConnections => tracing::warn!(
                %client,
                limit = self.per_client,
                also_refused = unlogged,
                "policy service: connection refused, the client holds too many connections"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Network {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        assert!(net("127.0.0.0/8").contains(ip("127.1.2.3")));
        assert!(!net("127.0.0.0/8").contains(ip("128.0.0.1")));
        assert!(net("10.1.2.0/23").contains(ip("10.1.3.255")));
        assert!(!net("10.1.2.0/23").contains(ip("10.1.4.0")));
        assert!(net("::1").contains(ip("::1")));
        assert!(!net("::1").contains(ip("::2")));
        assert!(net("fd00::/8").contains(ip("fd12::1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn an_ipv4_mapped_client_is_judged_as_ipv4() {
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(!net("::1").contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn bad_networks_are_refused_with_the_entry() {
        for bad in ["localhost", "10.0.0.0/33", "::/129", "10.0.0.0/x", ""] {
            let err = bad.parse::<Network>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn admission_checks_the_network_then_the_per_client_cap() {
        let admission = Admission::new(vec![net("127.0.0.0/8")], 2);
        assert_eq!(
            admission.admit(ip("192.0.2.1")).unwrap_err(),
            Refusal::NotAllowed
        );
        let first = admission.admit(ip("127.0.0.1")).unwrap();
        let _second = admission.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(
            admission.admit(ip("127.0.0.1")).unwrap_err(),
            Refusal::TooManyConnections
        );
        // Another client of the network has its own count.
        let _other = admission.admit(ip("127.0.0.2")).unwrap();
        drop(first);
        admission.admit(ip("127.0.0.1")).unwrap();
    }
}
