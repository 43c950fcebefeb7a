//! The textual distinguished name of a certificate subject (`CN=..., O=..., C=...`): split at
//! unescaped commas, unescaped, and checked against the attributes and bounds the wallet
//! accepts.

use super::{snippet, KeyError};

/// Longest distinguished name accepted by [`super::self_signed_certificate`].
const MAX_DN_LEN: usize = 1024;

/// An attribute accepted in a certificate subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DnAttribute {
    CommonName,
    Organization,
    OrganizationalUnit,
    Country,
    Locality,
    StateOrProvince,
}

impl DnAttribute {
    /// The attribute for a short name such as `CN`, in any letter case.
    fn from_short_name(name: &str) -> Option<Self> {
        let attribute = match name.to_ascii_uppercase().as_str() {
            "CN" => DnAttribute::CommonName,
            "O" => DnAttribute::Organization,
            "OU" => DnAttribute::OrganizationalUnit,
            "C" => DnAttribute::Country,
            "L" => DnAttribute::Locality,
            "ST" => DnAttribute::StateOrProvince,
            _ => return None,
        };
        Some(attribute)
    }

    /// The canonical short name.
    fn short_name(self) -> &'static str {
        match self {
            DnAttribute::CommonName => "CN",
            DnAttribute::Organization => "O",
            DnAttribute::OrganizationalUnit => "OU",
            DnAttribute::Country => "C",
            DnAttribute::Locality => "L",
            DnAttribute::StateOrProvince => "ST",
        }
    }

    /// Upper bound on the value length in characters (RFC 5280, appendix A).
    fn max_len(self) -> usize {
        match self {
            DnAttribute::CommonName | DnAttribute::Organization | DnAttribute::OrganizationalUnit => 64,
            DnAttribute::Country => 2,
            DnAttribute::Locality | DnAttribute::StateOrProvince => 128,
        }
    }

    /// The matching certificate generator attribute type.
    pub(super) fn dn_type(self) -> rcgen::DnType {
        match self {
            DnAttribute::CommonName => rcgen::DnType::CommonName,
            DnAttribute::Organization => rcgen::DnType::OrganizationName,
            DnAttribute::OrganizationalUnit => rcgen::DnType::OrganizationalUnitName,
            DnAttribute::Country => rcgen::DnType::CountryName,
            DnAttribute::Locality => rcgen::DnType::LocalityName,
            DnAttribute::StateOrProvince => rcgen::DnType::StateOrProvinceName,
        }
    }
}

/// Splits and validates a textual distinguished name into its attributes,
/// in the order given.
pub(super) fn parse_distinguished_name(dn: &str) -> Result<Vec<(DnAttribute, String)>, KeyError> {
    let invalid = |message: String| KeyError::InvalidDistinguishedName(message);

    if dn.chars().count() > MAX_DN_LEN {
        return Err(invalid(format!("longer than {MAX_DN_LEN} characters")));
    }
    if dn.trim().is_empty() {
        return Err(invalid("the name must not be empty".to_owned()));
    }

    let mut attributes: Vec<(DnAttribute, String)> = Vec::new();
    for component in split_components(dn)? {
        let RawComponent { name, value } = component;
        let name = name.trim();
        if name.is_empty() {
            return Err(invalid("every component must look like NAME=value".to_owned()));
        }
        let attribute = DnAttribute::from_short_name(name).ok_or_else(|| {
            invalid(format!(
                "unsupported attribute \"{}\" (allowed: CN, O, OU, C, L, ST)",
                snippet(name)
            ))
        })?;
        let label = attribute.short_name();
        if attributes.iter().any(|(seen, _)| *seen == attribute) {
            return Err(invalid(format!("{label} may appear only once")));
        }

        let mut value = String::from_utf8(value)
            .map_err(|_| invalid(format!("the escaped bytes in {label} are not valid UTF-8")))?;
        if value.is_empty() {
            return Err(invalid(format!("{label} must not be empty")));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid(format!("{label} must not contain control characters")));
        }
        if attribute == DnAttribute::Country {
            if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(invalid("C must be a two-letter country code such as NL".to_owned()));
            }
            value.make_ascii_uppercase();
        }
        let max_len = attribute.max_len();
        if value.chars().count() > max_len {
            return Err(invalid(format!("{label} is longer than {max_len} characters")));
        }
        attributes.push((attribute, value));
    }

    if !attributes
        .iter()
        .any(|(attribute, _)| *attribute == DnAttribute::CommonName)
    {
        return Err(invalid("a common name (CN) is required".to_owned()));
    }
    Ok(attributes)
}

/// One `name=value` component of a distinguished name, the value already
/// unescaped (as bytes, since hex escapes may form UTF-8 sequences) and
/// trimmed of unescaped surrounding spaces.
struct RawComponent {
    name: String,
    value: Vec<u8>,
}

/// Splits a distinguished name at unescaped commas and resolves escapes.
fn split_components(dn: &str) -> Result<Vec<RawComponent>, KeyError> {
    let invalid = |message: &str| KeyError::InvalidDistinguishedName(message.to_owned());

    let mut components = Vec::new();
    let mut name = String::new();
    let mut value: Vec<u8> = Vec::new();
    let mut in_value = false;
    // Length of `value` up to its last character that is not an unescaped
    // space: everything after it is trailing padding.
    let mut significant_len = 0;
    let mut chars = dn.chars().peekable();

    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if !in_value {
                    return Err(invalid("attribute names must not contain a backslash"));
                }
                let escaped = chars
                    .next()
                    .ok_or_else(|| invalid("the name ends with a lone backslash"))?;
                if matches!(escaped, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' | '#' | ' ') {
                    value.push(escaped as u8);
                } else if let (Some(high), Some(low)) =
                    (escaped.to_digit(16), chars.peek().and_then(|next| next.to_digit(16)))
                {
                    chars.next();
                    value.push((high * 16 + low) as u8);
                } else {
                    return Err(invalid(
                        "a backslash must be followed by one of , + \" \\ < > ; = # space, \
                         or by two hex digits",
                    ));
                }
                significant_len = value.len();
            }
            ',' => {
                if !in_value {
                    return Err(invalid(
                        "every component must look like NAME=value (empty component or \
                         missing '=')",
                    ));
                }
                value.truncate(significant_len);
                components.push(RawComponent {
                    name: std::mem::take(&mut name),
                    value: std::mem::take(&mut value),
                });
                in_value = false;
                significant_len = 0;
            }
            '=' if !in_value => in_value = true,
            '+' if in_value => {
                return Err(invalid(
                    "multi-valued names are not supported; write a literal '+' as \\+",
                ))
            }
            ';' if in_value => return Err(invalid("separate components with ',' and write a literal ';' as \\;")),
            _ if in_value => {
                if c == ' ' && value.is_empty() {
                    continue;
                }
                let mut buffer = [0u8; 4];
                value.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                if c != ' ' {
                    significant_len = value.len();
                }
            }
            _ => name.push(c),
        }
    }

    if !in_value {
        return Err(invalid(
            "every component must look like NAME=value (empty component or missing '=')",
        ));
    }
    value.truncate(significant_len);
    components.push(RawComponent { name, value });
    Ok(components)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::self_signed_certificate;

    #[test]
    fn distinguished_name_escapes_and_options() {
        let certificate = self_signed_certificate(
            " cn = Acme\\, Issuer , o=Acme B.V.,ou=Credentials,l=Den Haag,st=Zuid-Holland,c=nl",
        )
        .unwrap();
        assert!(
            certificate.subject.contains("CN=Acme, Issuer"),
            "{}",
            certificate.subject
        );
        assert!(certificate.subject.contains("OU=Credentials"));
        assert!(certificate.subject.contains("L=Den Haag"));
        assert!(certificate.subject.contains("ST=Zuid-Holland"));
        assert!(certificate.subject.contains("C=NL"));

        let parsed = parse_distinguished_name("CN=\\C3\\A9t\\ ,O=a\\+b").unwrap();
        assert_eq!(
            parsed,
            vec![
                (DnAttribute::CommonName, "ét ".to_owned()),
                (DnAttribute::Organization, "a+b".to_owned()),
            ]
        );
    }

    #[test]
    fn distinguished_name_rejects_bad_input() {
        let too_long = format!("CN={}", "a".repeat(1100));
        let long_cn = format!("CN={}", "a".repeat(65));
        for dn in [
            "",
            "O=Acme B.V.,C=NL",
            "XX=1",
            "CN=Acme,XX=1",
            "CN=Acme,C=Netherlands",
            "CN=Acme,C=N1",
            "CN=",
            "CN=Acme,O=",
            "CN=Acme,O= ",
            "CN=Acme,,O=Acme",
            "CN=Acme,",
            "CN=Acme,O",
            "CN=Acme,CN=Other",
            "CN=Acme+O=Acme",
            "CN=Acme;O=Acme",
            "CN=Acme\\",
            "CN=Acme\\q",
            "CN=\\FF",
            "CN=Acme\u{7}",
            "serialNumber=1,CN=Acme",
            long_cn.as_str(),
            too_long.as_str(),
        ] {
            assert!(
                matches!(self_signed_certificate(dn), Err(KeyError::InvalidDistinguishedName(_))),
                "{dn}"
            );
        }
    }
}
