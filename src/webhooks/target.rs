//! Which webhook targets Postier may reach. A URL must be `https` (plain `http` only for a
//! host named in `POSTIER_WEBHOOK_ALLOW_HOSTS`), and every address its host resolves to must
//! be a public unicast address, unless the allow-list names the host or that address.
//! Checked when an endpoint is saved and again at each delivery, on the addresses the
//! connection then uses: the sender's resolver ([`PinnedResolver`]) answers only checked
//! addresses, so a name that changes its answer in between (DNS rebinding) cannot lead the
//! request elsewhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

/// The allow-list, read once from the configuration, and where names are resolved: the
/// system's resolver (hosts file included), or `POSTIER_DNS_SERVER` when set.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetPolicy {
    hosts: Vec<String>,
    addresses: Vec<IpAddr>,
    dns_server: Option<SocketAddr>,
}

impl TargetPolicy {
    pub(crate) fn from_config(config: &crate::config::Config) -> Self {
        Self {
            dns_server: config.dns_server,
            ..Self::new(&config.webhook_allow_hosts)
        }
    }

    pub(crate) fn new(allow: &[String]) -> Self {
        let mut policy = Self::default();
        for entry in allow {
            let entry = entry.trim().trim_start_matches('[').trim_end_matches(']');
            match entry.parse::<IpAddr>() {
                Ok(ip) => policy.addresses.push(ip),
                Err(_) => policy.hosts.push(entry.to_ascii_lowercase()),
            }
        }
        policy
    }

    /// Whether the allow-list names this host (a name, or an address written as the host).
    fn names_host(&self, host: &Host<&str>) -> bool {
        match host {
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                self.hosts.contains(&name)
            }
            Host::Ipv4(ip) => self.addresses.contains(&IpAddr::V4(*ip)),
            Host::Ipv6(ip) => self.addresses.contains(&IpAddr::V6(*ip)),
        }
    }

    /// Whether a connection to `ip` for `host` is allowed.
    pub(crate) fn allows_address(&self, host: &str, ip: IpAddr) -> bool {
        is_public(ip)
            || self.addresses.contains(&ip)
            || self
                .hosts
                .contains(&host.trim_end_matches('.').to_ascii_lowercase())
    }

    /// The scheme and, for an address written in the URL, the address itself.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), String> {
        let host = url.host().ok_or("names no host")?;
        match url.scheme() {
            "https" => {}
            "http" if self.names_host(&host) => {}
            "http" => {
                return Err(format!(
                    "must be https:// (plain http only for hosts in POSTIER_WEBHOOK_ALLOW_HOSTS, and {host} is not one)"
                ))
            }
            other => return Err(format!("has the scheme {other}, not https")),
        }
        let literal = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            if !self.allows_address(&ip.to_string(), ip) {
                return Err(refused(ip));
            }
        }
        Ok(())
    }

    /// Checks the URL, then resolves its host (within `timeout`) and checks every address.
    pub(crate) async fn check_resolved(&self, url: &Url, timeout: Duration) -> Result<(), String> {
        self.check_url(url)?;
        let Some(Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        resolve_checked(self, name, timeout).await.map(|_| ())
    }
}

fn refused(ip: IpAddr) -> String {
    format!("reaches {ip}, a loopback, private, link-local or reserved address (allow it with POSTIER_WEBHOOK_ALLOW_HOSTS)")
}

/// Resolves `name` and answers its addresses when every one is allowed.
async fn resolve_checked(
    policy: &TargetPolicy,
    name: &str,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = match policy.dns_server {
        Some(server) => crate::dns::DnsChecker::new(Some(server), timeout)
            .lookup_ip(name)
            .await
            .map_err(|e| format!("does not resolve ({name}: {e})"))?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 443))
            .collect(),
        None => match tokio::time::timeout(timeout, tokio::net::lookup_host((name, 443))).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(e)) => return Err(format!("does not resolve ({name}: {e})")),
            Err(_) => return Err(format!("does not resolve in time ({name})")),
        },
    };
    if addrs.is_empty() {
        return Err(format!("does not resolve ({name} has no address)"));
    }
    if let Some(bad) = addrs.iter().find(|a| !policy.allows_address(name, a.ip())) {
        return Err(refused(bad.ip()));
    }
    Ok(addrs)
}

/// The sender's DNS resolver: the addresses it answers are the ones it checked, and the
/// connection uses exactly those.
#[derive(Debug, Clone)]
pub(crate) struct PinnedResolver {
    pub policy: Arc<TargetPolicy>,
    pub timeout: Duration,
}

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = resolve_checked(&this.policy, name.as_str(), this.timeout)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A public unicast address: not unspecified, loopback, private, shared (CGNAT),
/// link-local (cloud metadata at 169.254.169.254 and fd00:ec2::254 among them), multicast,
/// documentation, benchmarking or reserved; IPv4 inside IPv6 is judged as IPv4.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::from(
            (u32::from(segments[6]) << 16) | u32::from(segments[7]),
        ));
    }
    if segments[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::from(
            (u32::from(segments[1]) << 16) | u32::from(segments[2]),
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || segments[0] & 0xfe00 == 0xfc00 // unique local
        || segments[0] & 0xffc0 == 0xfe80 // link-local
        || segments[0] & 0xffc0 == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible, deprecated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn https_is_required_and_private_literals_refused_unless_allowed() {
        let none = TargetPolicy::new(&[]);
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(none.check_url(&url("https://93.184.215.14/hook")).is_ok());
        assert!(none.check_url(&url("http://93.184.215.14/hook")).is_err());
        assert!(none.check_url(&url("https://127.0.0.1/hook")).is_err());
        assert!(none.check_url(&url("https://[::1]/hook")).is_err());
        assert!(none
            .check_url(&url("https://169.254.169.254/latest"))
            .is_err());
        let allowed = TargetPolicy::new(&["127.0.0.1".into(), "Receiver.Internal".into()]);
        assert!(allowed
            .check_url(&url("http://127.0.0.1:9000/hook"))
            .is_ok());
        assert!(allowed
            .check_url(&url("http://receiver.internal/hook"))
            .is_ok());
        assert!(allowed.check_url(&url("http://10.0.0.1/hook")).is_err());
        assert!(allowed.allows_address("receiver.internal", ip("10.0.0.7")));
        assert!(allowed.allows_address("other.example", ip("127.0.0.1")));
        assert!(!allowed.allows_address("other.example", ip("127.0.0.2")));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_after_resolution() {
        let none = TargetPolicy::new(&[]);
        let url = Url::parse("https://localhost/hook").unwrap();
        let err = none
            .check_resolved(&url, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let allowed = TargetPolicy::new(&["localhost".into()]);
        assert!(allowed
            .check_resolved(&url, Duration::from_secs(5))
            .await
            .is_ok());
    }
}
