//! `did:web` identifiers: a host name (with optional port and path) checked against the DNS
//! syntax and written in the method's form.

use super::{snippet, KeyError};

/// Longest host name allowed by DNS.
const MAX_HOST_LEN: usize = 253;
/// Longest single DNS label.
const MAX_LABEL_LEN: usize = 63;
/// Longest input accepted by [`did_web`], host plus path.
const MAX_DID_WEB_INPUT_LEN: usize = 1024;

/// Builds the `did:web` identifier of a domain.
///
/// The input is a host name, optionally followed by `:port` and by `/`
/// separated path segments, for example `acme.example`, `localhost:8443` or
/// `acme.example/users/alice`. The host is lowercased and must be a DNS
/// name (at most 253 characters, labels of 1 to 63 letters, digits or
/// hyphens, no hyphen at either end; internationalised names in their
/// `xn--` form). The port is written as `%3A` and the path segments, each
/// made of letters, digits, `.`, `-` and `_`, are joined with `:`. A single
/// trailing `/` is ignored. Scheme prefixes such as `https://`, whitespace
/// and empty input are refused.
pub fn did_web(domain: &str) -> Result<String, KeyError> {
    let invalid = |message: &str| KeyError::InvalidDomain(message.to_owned());

    if domain.is_empty() {
        return Err(invalid("the domain must not be empty"));
    }
    if domain.len() > MAX_DID_WEB_INPUT_LEN {
        return Err(KeyError::InvalidDomain(format!(
            "longer than {MAX_DID_WEB_INPUT_LEN} characters"
        )));
    }
    if domain.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("the domain must not contain spaces or control characters"));
    }
    if domain.contains("://") {
        return Err(invalid("give the host name only, without a scheme such as https://"));
    }
    if domain.starts_with("did:") {
        return Err(invalid("give a host name, not a DID"));
    }

    let (authority, path) = match domain.split_once('/') {
        Some((authority, path)) => (authority, path.strip_suffix('/').unwrap_or(path)),
        None => (domain, ""),
    };
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };

    let host = host.to_ascii_lowercase();
    validate_host(&host)?;

    let mut did = format!("did:web:{host}");
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(invalid("the port must be a number from 1 to 65535"));
        }
        did.push_str("%3A");
        did.push_str(port);
    }
    if !path.is_empty() {
        for segment in path.split('/') {
            validate_path_segment(segment)?;
            did.push(':');
            did.push_str(segment);
        }
    }
    Ok(did)
}

/// Checks a lowercased host name against the DNS syntax rules.
fn validate_host(host: &str) -> Result<(), KeyError> {
    if host.is_empty() {
        return Err(KeyError::InvalidDomain("the host name must not be empty".to_owned()));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(KeyError::InvalidDomain(format!(
            "the host name is longer than {MAX_HOST_LEN} characters"
        )));
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(KeyError::InvalidDomain(
                "the host name has an empty label (leading, trailing or double dot)".to_owned(),
            ));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(KeyError::InvalidDomain(format!(
                "the label \"{}\" is longer than {MAX_LABEL_LEN} characters",
                snippet(label)
            )));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(KeyError::InvalidDomain(format!(
                "the label \"{}\" may only contain letters, digits and hyphens \
                 (use the xn-- form for internationalised names)",
                snippet(label)
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(KeyError::InvalidDomain(format!(
                "the label \"{}\" must not start or end with a hyphen",
                snippet(label)
            )));
        }
    }
    Ok(())
}

/// Checks one path segment of a did:web domain.
fn validate_path_segment(segment: &str) -> Result<(), KeyError> {
    if segment.is_empty() {
        return Err(KeyError::InvalidDomain("the path has an empty segment".to_owned()));
    }
    if segment == "." || segment == ".." {
        return Err(KeyError::InvalidDomain(
            "the path must not contain \".\" or \"..\" segments".to_owned(),
        ));
    }
    if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(KeyError::InvalidDomain(format!(
            "the path segment \"{}\" may only contain letters, digits, '.', '-' and '_'",
            snippet(segment)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_web_examples() {
        assert_eq!(did_web("acme.example").unwrap(), "did:web:acme.example");
        assert_eq!(did_web("localhost:8443").unwrap(), "did:web:localhost%3A8443");
        assert_eq!(
            did_web("acme.example/users/alice").unwrap(),
            "did:web:acme.example:users:alice"
        );
        assert_eq!(did_web("Acme.Example/").unwrap(), "did:web:acme.example");
        assert_eq!(
            did_web("xn--bcher-kva.example:443/Team_1").unwrap(),
            "did:web:xn--bcher-kva.example%3A443:Team_1"
        );
    }

    #[test]
    fn did_web_rejects_bad_domains() {
        let long_label = "a".repeat(64);
        let long_name = ["a".repeat(60).as_str(); 5].join(".");
        assert_eq!(long_name.len(), 304);
        for domain in [
            "https://x",
            "",
            "a b",
            " acme.example",
            "acme.example:",
            "acme.example:0",
            "acme.example:70000",
            "acme.example:https",
            "acme..example",
            ".acme.example",
            "acme.example.",
            "-acme.example",
            "acme_corp.example",
            "bücher.example",
            "acme.example//alice",
            "acme.example/../alice",
            "acme.example/al%20ice",
            "did:web:acme.example",
            long_label.as_str(),
            long_name.as_str(),
            "a".repeat(300).as_str(),
        ] {
            assert!(matches!(did_web(domain), Err(KeyError::InvalidDomain(_))), "{domain}");
        }
    }
}
