//! The SSRF gate: which addresses a webhook may reach.
//!
//! A webhook URL comes from a customer, so without a gate it could point the server at its own
//! loopback services, the cloud metadata endpoint or the internal network. The gate applies
//! twice: [`check_url_on_save`] when a channel is saved (the URL, then the addresses its name
//! resolves to then), [`check_url`] again before every send (literal IP addresses never reach a
//! resolver), and [`GatedResolver`] on every DNS answer at send time, so a name that resolves
//! to a forbidden address (DNS rebinding included) is refused too. On-premise installations may
//! exempt networks (`integration.allowed_networks`; [`allowed_networks_hint`] says how).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::{DeploymentMode, Settings};

/// Which URLs and addresses webhooks may use.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    /// Only `https` URLs (SaaS mode).
    pub https_only: bool,
    /// Networks exempt from the gate (on-premise configuration).
    pub allowed: Vec<IpNet>,
}

/// A URL or address the gate refuses; the message is safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRejected {
    /// Not an absolute URL.
    #[error("`{0}` is not a valid URL")]
    Invalid(String),
    /// A scheme other than http(s), or http where https is required.
    #[error("the URL must use {0}")]
    Scheme(&'static str),
    /// User name or password inside the URL.
    #[error("the URL must not contain credentials")]
    Credentials,
    /// The host is, or resolves only to, a forbidden address.
    #[error("address not allowed: {0} is a {1} address")]
    Address(String, &'static str),
}

/// Networks no webhook may reach, with the reason shown to users.
const FORBIDDEN: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved or broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::/96", "IPv4-compatible"),
    ("64:ff9b::/96", "NAT64"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

impl NetworkPolicy {
    /// The policy the settings describe: https only in SaaS mode, exemptions on-premise.
    /// `allowed_networks` were validated at start; an unparsable entry is ignored.
    pub fn from_settings(settings: &Settings) -> NetworkPolicy {
        NetworkPolicy {
            https_only: settings.mode == DeploymentMode::Saas,
            allowed: settings
                .integration
                .allowed_networks
                .iter()
                .filter_map(|net| net.parse().ok())
                .collect(),
        }
    }

    /// Checks one address.
    ///
    /// # Errors
    /// The address is in a forbidden range and not in an allowed network.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), UrlRejected> {
        // An IPv4-mapped IPv6 address reaches the IPv4 host, so the exemptions apply to both forms.
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
        {
            return Ok(());
        }
        match forbidden_reason(ip) {
            Some(reason) => Err(UrlRejected::Address(ip.to_string(), reason)),
            None => Ok(()),
        }
    }

    /// Whether an address may be reached.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.check_ip(ip).is_ok()
    }
}

fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    FORBIDDEN.iter().find_map(|(net, reason)| {
        let net: IpNet = net.parse().expect("the forbidden list holds valid CIDRs (unit tested)");
        net.contains(&ip).then_some(*reason)
    })
}

/// Checks a webhook (or OAuth2 token) URL without resolving it: scheme, no credentials, and,
/// when the host is a literal address or `localhost`, that address. Names are checked again on
/// every send by [`GatedResolver`].
///
/// # Errors
/// What is wrong with the URL, in words fit for a 400 response.
pub fn check_url(url: &str, policy: &NetworkPolicy) -> Result<url::Url, UrlRejected> {
    let parsed = url::Url::parse(url).map_err(|_| UrlRejected::Invalid(url.to_string()))?;
    match (parsed.scheme(), policy.https_only) {
        ("https", _) | ("http", false) => {}
        (_, true) => return Err(UrlRejected::Scheme("https")),
        (_, false) => return Err(UrlRejected::Scheme("http or https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRejected::Credentials);
    }
    match parsed.host() {
        None => return Err(UrlRejected::Invalid(url.to_string())),
        Some(url::Host::Ipv4(v4)) => policy.check_ip(IpAddr::V4(v4))?,
        Some(url::Host::Ipv6(v6)) => policy.check_ip(IpAddr::V6(v6))?,
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                policy.check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                policy.check_ip(IpAddr::V6(Ipv6Addr::LOCALHOST))?;
            }
            // The URL parser reads an address with more than one trailing dot
            // (`10.0.0.1..`) as a name; a resolver may still read it as the address.
            if let Ok(ip) = name.parse::<IpAddr>() {
                policy.check_ip(ip)?;
            }
        }
    }
    Ok(parsed)
}

/// Why the gate refuses a webhook URL when a channel is saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaveRefusal {
    /// The URL itself: its form, its scheme or its literal address.
    #[error("{0}")]
    Url(UrlRejected),
    /// An address that its host name resolves to now.
    #[error("{host} resolves to {address}: {reason}")]
    Resolved {
        /// The host name of the URL.
        host: String,
        /// The forbidden address.
        address: IpAddr,
        /// Why it is forbidden.
        reason: UrlRejected,
    },
}

impl SaveRefusal {
    /// The gate's reason.
    pub fn reason(&self) -> &UrlRejected {
        match self {
            SaveRefusal::Url(reason) | SaveRefusal::Resolved { reason, .. } => reason,
        }
    }
}

/// The gate on save: the URL ([`check_url`]), then every address its host name resolves to now;
/// one forbidden address is enough to refuse (at send time the [`GatedResolver`] checks the
/// addresses again). A name that does not resolve yet is accepted: sending to it fails until it
/// does.
///
/// # Errors
/// The URL, or an address its name resolves to, is forbidden.
pub async fn check_url_on_save(url: &str, policy: &NetworkPolicy) -> Result<url::Url, SaveRefusal> {
    let parsed = check_url(url, policy).map_err(SaveRefusal::Url)?;
    if let Some(url::Host::Domain(host)) = parsed.host() {
        let port = parsed.port_or_known_default().unwrap_or(443);
        if let Ok(addresses) = tokio::net::lookup_host((host, port)).await {
            for address in addresses {
                policy.check_ip(address.ip()).map_err(|reason| SaveRefusal::Resolved {
                    host: host.to_string(),
                    address: address.ip(),
                    reason,
                })?;
            }
        }
    }
    Ok(parsed)
}

/// For an address the gate refused on premise, how to allow it: the setting, and the network
/// to put in it (all of 127.0.0.0/8 for an IPv4 loopback address, the address alone otherwise).
/// Nothing in SaaS mode, where no network can be allowed.
pub fn allowed_networks_hint(rejected: &UrlRejected, policy: &NetworkPolicy) -> String {
    let UrlRejected::Address(address, _) = rejected else {
        return String::new();
    };
    if policy.https_only {
        return String::new();
    }
    let network = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) if v4.is_loopback() => "127.0.0.0/8".to_string(),
        Ok(std::net::IpAddr::V4(v4)) => format!("{v4}/32"),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) if v4.is_loopback() => "127.0.0.0/8".to_string(),
            Some(v4) => format!("{v4}/32"),
            None => format!("{v6}/128"),
        },
        Err(_) => return String::new(),
    };
    format!(
        " (to allow it, e.g. for a receiver on this machine, add its network to the setting \
         `integration.allowed_networks`: BW_INTEGRATION__ALLOWED_NETWORKS='[\"{network}\"]', or \
         allowed_networks = [\"{network}\"] under [integration] in business-wallet.toml)"
    )
}

/// A DNS resolver for reqwest that resolves with the system resolver (through tokio) and drops
/// every address the policy forbids. When nothing is left the lookup fails with
/// [`AddressNotAllowed`], which the webhook channel turns into a non-retryable outcome.
#[derive(Debug, Clone)]
pub struct GatedResolver {
    policy: Arc<NetworkPolicy>,
}

impl GatedResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: Arc<NetworkPolicy>) -> GatedResolver {
        GatedResolver { policy }
    }

    /// Resolves `host` and keeps the allowed addresses.
    ///
    /// # Errors
    /// The lookup failed, or every address was forbidden ([`AddressNotAllowed`]).
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        let mut refused = None;
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|addr| match self.policy.check_ip(addr.ip()) {
                Ok(()) => true,
                Err(reason) => {
                    refused.get_or_insert(reason);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            let reason = refused.map(|r| r.to_string()).unwrap_or_else(|| "no address".into());
            return Err(Box::new(AddressNotAllowed {
                host: host.to_string(),
                reason,
            }));
        }
        Ok(allowed)
    }
}

impl Resolve for GatedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Every address a name resolved to is forbidden by the SSRF gate.
#[derive(Debug, Clone, thiserror::Error)]
#[error("address not allowed: {host} resolves only to forbidden addresses ({reason})")]
pub struct AddressNotAllowed {
    /// The name that was looked up.
    pub host: String,
    /// Why the first refused address was refused.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_premise() -> NetworkPolicy {
        NetworkPolicy::default()
    }

    fn saas() -> NetworkPolicy {
        NetworkPolicy {
            https_only: true,
            allowed: Vec::new(),
        }
    }

    #[test]
    fn forbidden_list_parses() {
        for (net, _) in FORBIDDEN {
            net.parse::<IpNet>().unwrap();
        }
    }

    #[test]
    fn every_address_class_of_the_specification_is_refused() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://172.16.5.4/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/hook",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "https://[fc00::1]/hook",
            "https://[fd12:3456::1]/hook",
            "https://[fe80::1]/hook",
            "https://0.0.0.0/hook",
            "https://[::]/hook",
            "https://224.0.0.1/hook",
            "https://255.255.255.255/hook",
            "https://192.0.2.10/hook",
            "https://localhost/hook",
            "https://api.localhost./hook",
            // An address with trailing dots, which the URL parser leaves as a name.
            "https://10.0.254.0../hook",
            "https://127.0.0.1.../hook",
            // Alternative spellings normalise to the same address.
            "https://2130706433/hook",
            "https://0x7f.1/hook",
        ] {
            let err = check_url(url, &saas()).unwrap_err();
            assert!(matches!(err, UrlRejected::Address(..)), "{url}: {err}");
            assert!(err.to_string().starts_with("address not allowed"), "{url}: {err}");
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        for url in [
            "https://93.184.215.14/hook",
            "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook",
            "https://receiver.example.com/hooks?x=1",
        ] {
            check_url(url, &saas()).unwrap();
        }
    }

    #[test]
    fn saas_requires_https_and_urls_must_be_clean() {
        assert_eq!(
            check_url("http://receiver.example.com/hook", &saas()).unwrap_err(),
            UrlRejected::Scheme("https")
        );
        check_url("http://receiver.example.com/hook", &on_premise()).unwrap();
        assert_eq!(
            check_url("ftp://receiver.example.com/", &on_premise()).unwrap_err(),
            UrlRejected::Scheme("http or https")
        );
        assert_eq!(
            check_url("https://user:pw@receiver.example.com/", &saas()).unwrap_err(),
            UrlRejected::Credentials
        );
        assert!(matches!(check_url("not a url", &saas()), Err(UrlRejected::Invalid(_))));
    }

    #[test]
    fn allowed_networks_exempt_their_addresses_only() {
        let policy = NetworkPolicy {
            https_only: false,
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
        };
        check_url("http://127.0.0.1:8080/hook", &policy).unwrap();
        check_url("http://[::ffff:127.0.0.1]/hook", &policy).unwrap();
        assert!(check_url("http://10.0.0.1/hook", &policy).is_err());
        assert!(check_url("http://[::1]/hook", &policy).is_err());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        let gated = GatedResolver::new(Arc::new(on_premise()));
        let err = gated.lookup("localhost").await.unwrap_err();
        let err = err.downcast::<AddressNotAllowed>().expect("refused by the gate");
        assert!(err.to_string().contains("loopback"), "{err}");

        let open = GatedResolver::new(Arc::new(NetworkPolicy {
            https_only: false,
            allowed: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        }));
        let addrs = open.lookup("localhost").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
