//! The SSRF guard. Alert content is attacker-influenced, so URLs built from
//! it must not reach the function's own network: by default requests to
//! loopback, private, link-local (including the instance metadata service),
//! unique-local, CGNAT, multicast and reserved addresses are refused —
//! checked on IP literals before sending and on every DNS answer when
//! connecting (so DNS rebinding is covered), on every redirect hop. The
//! Lambda Runtime API address is refused always. `HTTP_ALLOW_HOSTS` and
//! `HTTP_ALLOW_PRIVATE` opt in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Name, Resolve, Resolving};
use reqwest::Url;

use super::request::{display_url, HttpError};

/// Which destinations the client may reach.
#[derive(Debug, Clone, Default)]
pub struct HttpPolicy {
    /// Reach non-public addresses too (local development, tests).
    pub allow_private: bool,
    /// Hosts (exact, or `*.suffix`) and IP literals reachable whatever they resolve to.
    pub allow_hosts: Vec<String>,
    /// The Lambda Runtime API (`host:port`), refused always.
    pub runtime_api: Option<String>,
}

/// Refuses the Runtime API, and non-public IP literals unless allowed.
/// Host names are checked by the resolver when connecting.
pub(super) async fn check_destination(policy: &HttpPolicy, url: &Url) -> Result<(), HttpError> {
    let refused = |reason: String| HttpError::Refused {
        url: display_url(url),
        reason,
    };
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(0);
    if let Some(api) = &policy.runtime_api {
        if let Ok(api_addrs) = tokio::net::lookup_host(api.as_str()).await {
            let api_addrs: Vec<SocketAddr> = api_addrs.collect();
            let target: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(addrs) => addrs.collect(),
                Err(_) => Vec::new(),
            };
            if target.iter().any(|t| api_addrs.contains(t)) {
                return Err(refused("the Lambda Runtime API is never a destination".to_string()));
            }
        }
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if !policy.allow_private && !policy.host_allowed(&host) && !is_public(ip) {
            return Err(refused(format!(
                "{ip} is not a public address (set HTTP_ALLOW_HOSTS or HTTP_ALLOW_PRIVATE to allow it)"
            )));
        }
    }
    Ok(())
}

impl HttpPolicy {
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allow_hosts.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => host == pattern,
            }
        })
    }
}

/// Resolves names, keeping only addresses the policy allows.
pub(super) struct GuardedResolver {
    pub(super) policy: Arc<HttpPolicy>,
}

/// A resolution refused by the SSRF guard.
#[derive(Debug)]
pub(super) struct RefusedAddress(pub(super) String);

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedAddress {}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if policy.allow_private || policy.host_allowed(&host) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                addrs.into_iter().partition(|a| is_public(a.ip()));
            if public.is_empty() {
                let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                return Err(Box::new(RefusedAddress(format!(
                    "{host} resolves only to non-public addresses ({}); set HTTP_ALLOW_HOSTS or HTTP_ALLOW_PRIVATE to allow it",
                    list.join(", ")
                ))) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `ip` is a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return is_public_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            // 6to4 (2002::/16) embeds an IPv4 address too.
            if s[0] == 0x2002 {
                return is_public_v4(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48: its mapping is the network's own
                || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32: a tunnel to an address it hides
                || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation 2001:db8::/32
                || (s[0] == 0x3fff && (s[1] & 0xf000) == 0) // documentation 3fff::/20
                || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7, incl. fd00:ec2::254
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0))
            // IPv4-compatible
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || o[0] == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, incl. 169.254.169.254
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 192 && o[1] == 0 && o[2] == 2) // documentation (TEST-NET-1)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100) // documentation (TEST-NET-2)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113) // documentation (TEST-NET-3)
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast (deprecated)
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] >= 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_non_public_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.170",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.254",
            "192.88.99.1",
            "2001:db8::1",
            "3fff::1",
            "3fff:fff::1",
            "64:ff9b:1::a9fe:a9fe",
            "100::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must not be public");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "5.205.62.253",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "3fff:1000::1",
            "3ffe::1",
            "64:ff9b:2::1",
            "198.17.255.1",
            "198.20.0.1",
            "203.0.114.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} must be public");
        }
    }

    #[test]
    fn allow_hosts_match_exactly_or_by_suffix() {
        let policy = HttpPolicy {
            allow_hosts: vec!["intel.internal".into(), "*.corp.example".into()],
            ..HttpPolicy::default()
        };
        assert!(policy.host_allowed("intel.internal"));
        assert!(policy.host_allowed("Jira.Corp.Example"));
        assert!(!policy.host_allowed("corp.example"));
        assert!(!policy.host_allowed("evilintel.internal"));
    }
}
