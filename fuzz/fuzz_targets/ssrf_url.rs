//! The SSRF gate (`check_url` and `NetworkPolicy::check_ip`) that every webhook and OAuth2
//! token URL passes when a channel is saved and before each send.
//!
//! Input: the first line is the deployment mode (`saas` or `on-premise`) followed by the
//! allowed networks (CIDR, on-premise only), separated by spaces; the URL follows.
//!
//! Checked, against an independent statement of the internal address classes: an accepted URL
//! never names an internal address (as an IP literal, a spelling the URL parser turns into
//! one, or `localhost`) unless an allowed network holds it; it has an allowed scheme and no
//! credentials; checking its serialised form again gives the same URL; and no internal address
//! outside the allowed networks passes `check_ip`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use business_wallet::channels::webhook::ssrf::{check_url, NetworkPolicy, UrlRejected};
use business_wallet_fuzz::{is_internal, split_line};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, url) = split_line(data);
    let first = String::from_utf8_lossy(first);
    let mut words = first.split(' ');
    let https_only = words.next() == Some("saas");
    // Settings validation allows exemptions on-premise only.
    let allowed: Vec<IpNet> = if https_only {
        Vec::new()
    } else {
        words.filter_map(|w| w.parse().ok()).collect()
    };
    let policy = NetworkPolicy { https_only, allowed };

    // Addresses straight from the input bytes.
    let mut octets = [0u8; 16];
    for (slot, byte) in octets.iter_mut().zip(url.iter().rev()) {
        *slot = *byte;
    }
    let v4 = Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]);
    for ip in [IpAddr::V4(v4), IpAddr::V6(Ipv6Addr::from(octets))] {
        check_address(&policy, ip);
    }

    let Ok(url) = std::str::from_utf8(url) else { return };
    // The channel checks and stores the trimmed URL.
    let url = url.trim();
    match check_url(url, &policy) {
        Ok(parsed) => {
            match (parsed.scheme(), https_only) {
                ("https", _) | ("http", false) => {}
                (scheme, _) => panic!("accepted scheme {scheme} (https only: {https_only}): {url}"),
            }
            assert!(parsed.username().is_empty() && parsed.password().is_none(), "{url}");
            match parsed.host().expect("an accepted URL has a host") {
                url::Host::Ipv4(v4) => assert_reachable(&policy, IpAddr::V4(v4), url),
                url::Host::Ipv6(v6) => assert_reachable(&policy, IpAddr::V6(v6), url),
                url::Host::Domain(name) => {
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    if let Ok(ip) = name.parse::<IpAddr>() {
                        assert_reachable(&policy, ip, url);
                    }
                    if name == "localhost" || name.ends_with(".localhost") {
                        assert_reachable(&policy, IpAddr::V4(Ipv4Addr::LOCALHOST), url);
                        assert_reachable(&policy, IpAddr::V6(Ipv6Addr::LOCALHOST), url);
                    }
                }
            }
            // The request goes to the URL in its serialised form: it passes the same way.
            assert_eq!(check_url(parsed.as_str(), &policy).as_ref(), Ok(&parsed), "{url}");
        }
        Err(UrlRejected::Address(address, reason)) => {
            let ip: IpAddr = address.parse().expect("a refused address is an IP address");
            assert!(!policy.allows(ip), "{address} was refused ({reason}) yet is allowed");
        }
        Err(rejected) => assert!(!rejected.to_string().is_empty()),
    }
});

/// Whether an allowed network holds the address (or the IPv4 address it maps).
fn exempt(policy: &NetworkPolicy, ip: IpAddr) -> bool {
    let mapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    policy
        .allowed
        .iter()
        .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
}

fn assert_reachable(policy: &NetworkPolicy, ip: IpAddr, url: &str) {
    assert!(
        !is_internal(ip) || exempt(policy, ip),
        "accepted {url:?}, which leads to the internal address {ip}"
    );
}

fn check_address(policy: &NetworkPolicy, ip: IpAddr) {
    let outcome = policy.check_ip(ip);
    assert_eq!(outcome.is_ok(), policy.allows(ip));
    if is_internal(ip) && !exempt(policy, ip) {
        assert!(
            matches!(outcome, Err(UrlRejected::Address(..))),
            "the internal address {ip} passes the gate"
        );
    }
    if exempt(policy, ip) {
        assert_eq!(outcome, Ok(()), "{ip} is in an allowed network");
    }
}
