//! CloudEvents HTTP binary-mode helpers: reading `ce-*` headers and the
//! percent-encoding used for their values.

use std::collections::BTreeMap;
use std::fmt;

/// Prefix of the HTTP headers that carry CloudEvents attributes in binary mode.
const CE_PREFIX: &str = "ce-";

/// The CloudEvents context attributes of a binary-mode HTTP request.
///
/// Required attributes are plain `String`s; optional ones are `Option`s.
/// Any other `ce-*` header ends up in [`extensions`](Self::extensions), keyed
/// by the lowercase attribute name without the `ce-` prefix.
///
/// ```
/// use webhook_verify::parse_ce_headers;
///
/// let headers = [
///     ("ce-id", b"evt-1".as_slice()),
///     ("ce-source", b"/wallet".as_slice()),
///     ("ce-specversion", b"1.0".as_slice()),
///     ("ce-type", b"credential.issued".as_slice()),
/// ];
/// let event = parse_ce_headers(headers).unwrap();
/// assert_eq!(event.r#type, "credential.issued");
/// assert!(event.subject.is_none());
/// assert!(event.extensions.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudEventHeaders {
    /// `ce-id`: identifies the event. Stable across retries and replays of the
    /// same event, so it is the key to deduplicate on.
    pub id: String,
    /// `ce-source`: the context in which the event happened.
    pub source: String,
    /// `ce-specversion`: the CloudEvents specification version (`1.0`).
    pub specversion: String,
    /// `ce-type`: the kind of event.
    pub r#type: String,
    /// `ce-subject`: the subject of the event within its source, if any.
    pub subject: Option<String>,
    /// `ce-time`: when the event happened (RFC 3339), if given.
    pub time: Option<String>,
    /// `ce-dataschema`: URI of the schema the data adheres to, if given.
    pub dataschema: Option<String>,
    /// Media type of the data. In binary mode this comes from the
    /// `Content-Type` header; a `ce-datacontenttype` header is used only when
    /// `Content-Type` is absent.
    pub datacontenttype: Option<String>,
    /// All other `ce-*` headers (extension attributes), keyed by lowercase
    /// name without the `ce-` prefix, with decoded values.
    pub extensions: BTreeMap<String, String>,
}

/// Reads the CloudEvents attributes from the headers of a binary-mode request.
///
/// `headers` yields `(name, value)` pairs as most HTTP libraries expose them.
/// Header names are matched case-insensitively. Values of `ce-*` headers are
/// percent-decoded (see [`percent_decode_header_value`]); the `Content-Type`
/// value is taken as is. Headers that are neither `ce-*` nor `Content-Type`
/// are ignored.
///
/// Errors:
///
/// * a required attribute (`id`, `source`, `specversion`, `type`) is missing
///   or empty: [`CloudEventHeaderError::MissingAttribute`];
/// * the same `ce-*` attribute appears twice:
///   [`CloudEventHeaderError::DuplicateAttribute`];
/// * a header is named just `ce-`:
///   [`CloudEventHeaderError::InvalidAttributeName`];
/// * a value is not valid UTF-8 or has a broken percent escape:
///   [`CloudEventHeaderError::InvalidValue`].
///
/// The value of `specversion` is not checked; receivers that only understand
/// `1.0` should compare it themselves.
///
/// ```
/// use webhook_verify::parse_ce_headers;
///
/// let headers = vec![
///     ("Content-Type", b"application/json".as_slice()),
///     ("CE-ID", b"0d2d8f0e-6f3c-4b8e-9a3e-8a4c1f0b7c11".as_slice()),
///     ("ce-Source", b"/business-wallet/tenants/acme".as_slice()),
///     ("ce-specversion", b"1.0".as_slice()),
///     ("ce-type", b"credential.offer.accepted".as_slice()),
///     ("ce-subject", b"Jos%C3%A9%20Garc%C3%ADa".as_slice()),
///     ("ce-tenant", b"acme".as_slice()),
///     ("X-Credenco-Signature", b"t=1746094937,v1=...".as_slice()),
/// ];
/// let event = parse_ce_headers(headers).unwrap();
/// assert_eq!(event.id, "0d2d8f0e-6f3c-4b8e-9a3e-8a4c1f0b7c11");
/// assert_eq!(event.subject.as_deref(), Some("José García"));
/// assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
/// assert_eq!(event.extensions["tenant"], "acme");
/// ```
pub fn parse_ce_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<CloudEventHeaders, CloudEventHeaderError> {
    let mut attributes: BTreeMap<String, String> = BTreeMap::new();
    let mut content_type = None;

    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-type") {
            let value = std::str::from_utf8(value).map_err(|_| CloudEventHeaderError::InvalidValue {
                header: name.to_string(),
                source: PercentDecodeError::InvalidUtf8,
            })?;
            content_type = Some(value.trim().to_string());
            continue;
        }
        let Some(attribute) = strip_prefix_ignore_case(name, CE_PREFIX) else {
            continue;
        };
        let attribute = attribute.to_ascii_lowercase();
        if attribute.is_empty() {
            return Err(CloudEventHeaderError::InvalidAttributeName(name.to_string()));
        }
        let decoded = std::str::from_utf8(value)
            .map_err(|_| PercentDecodeError::InvalidUtf8)
            .and_then(|raw| percent_decode_header_value(raw.trim()))
            .map_err(|source| CloudEventHeaderError::InvalidValue {
                header: name.to_string(),
                source,
            })?;
        if attributes.contains_key(&attribute) {
            return Err(CloudEventHeaderError::DuplicateAttribute(attribute));
        }
        attributes.insert(attribute, decoded);
    }

    let mut required = |name: &'static str| match attributes.remove(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(CloudEventHeaderError::MissingAttribute(name)),
    };
    let id = required("id")?;
    let source = required("source")?;
    let specversion = required("specversion")?;
    let r#type = required("type")?;

    let subject = attributes.remove("subject");
    let time = attributes.remove("time");
    let dataschema = attributes.remove("dataschema");
    // A media type's surrounding whitespace means nothing (as in `Content-Type`, which header
    // parsing trims), so both spellings of the attribute read back the same.
    let ce_content_type = attributes
        .remove("datacontenttype")
        .map(|value| value.trim().to_string());

    Ok(CloudEventHeaders {
        id,
        source,
        specversion,
        r#type,
        subject,
        time,
        dataschema,
        datacontenttype: content_type.or(ce_content_type),
        extensions: attributes,
    })
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

/// Whether `byte` may appear unencoded in a CloudEvents header value.
fn is_unreserved(byte: u8) -> bool {
    matches!(byte, 0x21..=0x7E) && byte != b'"' && byte != b'%'
}

/// Percent-encodes a value for use in a `ce-*` header.
///
/// Each UTF-8 byte outside the printable ASCII range `0x21..=0x7E`, and each
/// space, `"` and `%`, is written as `%XX` (uppercase hex). All other
/// characters are kept as they are. This is the encoding the sender applies;
/// [`percent_decode_header_value`] reverses it.
///
/// ```
/// use webhook_verify::{percent_decode_header_value, percent_encode_header_value};
///
/// let encoded = percent_encode_header_value("50% \"off\" café");
/// assert_eq!(encoded, "50%25%20%22off%22%20caf%C3%A9");
/// assert_eq!(percent_decode_header_value(&encoded).unwrap(), "50% \"off\" café");
/// ```
pub fn percent_encode_header_value(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
    out
}

/// Decodes a percent-encoded `ce-*` header value.
///
/// Every `%XX` (hex digits in either case) becomes the byte `0xXX`; all other
/// characters are kept. The resulting bytes must form valid UTF-8. A `%` not
/// followed by two hex digits is an error.
///
/// ```
/// use webhook_verify::{percent_decode_header_value, PercentDecodeError};
///
/// assert_eq!(percent_decode_header_value("%F0%9F%93%A6%20shipped").unwrap(), "📦 shipped");
/// assert_eq!(percent_decode_header_value("plain").unwrap(), "plain");
/// assert_eq!(
///     percent_decode_header_value("100%"),
///     Err(PercentDecodeError::InvalidEscape { position: 3 }),
/// );
/// assert_eq!(percent_decode_header_value("%C3"), Err(PercentDecodeError::InvalidUtf8));
/// ```
pub fn percent_decode_header_value(value: &str) -> Result<String, PercentDecodeError> {
    if !value.contains('%') {
        return Ok(value.to_string());
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(PercentDecodeError::InvalidEscape { position: i }),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PercentDecodeError::InvalidUtf8)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Why a percent-encoded header value could not be decoded.
///
/// ```
/// use webhook_verify::{percent_decode_header_value, PercentDecodeError};
///
/// let err = percent_decode_header_value("%zz").unwrap_err();
/// assert_eq!(err, PercentDecodeError::InvalidEscape { position: 0 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PercentDecodeError {
    /// A `%` at this byte offset is not followed by two hex digits.
    InvalidEscape {
        /// Byte offset of the offending `%` in the input.
        position: usize,
    },
    /// The value (raw or after decoding) is not valid UTF-8.
    InvalidUtf8,
}

impl fmt::Display for PercentDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEscape { position } => write!(f, "`%` at byte {position} is not followed by two hex digits"),
            Self::InvalidUtf8 => f.write_str("decoded value is not valid UTF-8"),
        }
    }
}

impl std::error::Error for PercentDecodeError {}

/// Why the CloudEvents headers of a request could not be read.
///
/// ```
/// use webhook_verify::{parse_ce_headers, CloudEventHeaderError};
///
/// let err = parse_ce_headers([("ce-id", b"1".as_slice())]).unwrap_err();
/// assert_eq!(err, CloudEventHeaderError::MissingAttribute("source"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudEventHeaderError {
    /// A required attribute (`id`, `source`, `specversion` or `type`) is
    /// missing or empty.
    MissingAttribute(&'static str),
    /// The same attribute was sent in more than one header.
    DuplicateAttribute(String),
    /// A header named `ce-` with no attribute name.
    InvalidAttributeName(String),
    /// A header value could not be decoded.
    InvalidValue {
        /// The header name as received.
        header: String,
        /// What was wrong with the value.
        source: PercentDecodeError,
    },
}

impl fmt::Display for CloudEventHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingAttribute(name) => {
                write!(f, "required CloudEvents header `ce-{name}` is missing or empty")
            }
            Self::DuplicateAttribute(name) => {
                write!(f, "CloudEvents header `ce-{name}` appears more than once")
            }
            Self::InvalidAttributeName(header) => {
                write!(f, "header `{header}` has no CloudEvents attribute name")
            }
            Self::InvalidValue { header, source } => {
                write!(f, "invalid value in header `{header}`: {source}")
            }
        }
    }
}

impl std::error::Error for CloudEventHeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidValue { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required() -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("ce-id", b"evt-1"),
            ("ce-source", b"/wallet"),
            ("ce-specversion", b"1.0"),
            ("ce-type", b"credential.issued"),
        ]
    }

    #[test]
    fn encode_known_answer() {
        // Expected value computed independently.
        assert_eq!(
            percent_encode_header_value("a b\"c%d é😀\t"),
            "a%20b%22c%25d%20%C3%A9%F0%9F%98%80%09"
        );
        assert_eq!(percent_encode_header_value(""), "");
        assert_eq!(percent_encode_header_value("/path?x=1&y=[2]~"), "/path?x=1&y=[2]~");
        assert_eq!(percent_encode_header_value("\u{7f}\u{0}\r\n"), "%7F%00%0D%0A");
    }

    #[test]
    fn a_ce_datacontenttype_reads_like_content_type_whitespace_and_all() {
        // Found by fuzzing: a percent-encoded trailing space survived in `ce-datacontenttype`
        // but not in `Content-Type`, so an event sent again did not read back the same.
        let base: [(&str, &[u8]); 4] = [
            ("ce-id", b"evt-2"),
            ("ce-source", b"/wallet/tenants/acme"),
            ("ce-specversion", b"1.0"),
            ("ce-type", b"credential.revoked"),
        ];
        let with_ce = parse_ce_headers(
            base.into_iter()
                .chain([("ce-datacontenttype", &b"application/json%20"[..])]),
        )
        .unwrap();
        let with_header =
            parse_ce_headers(base.into_iter().chain([("content-type", &b"application/json "[..])])).unwrap();
        assert_eq!(with_ce.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(with_ce, with_header);
    }

    #[test]
    fn percent_round_trip() {
        for value in [
            "",
            "plain-ascii_value.1",
            "with spaces and  double  spaces ",
            "\"quoted\"",
            "100% sure %20 not an escape",
            "é",
            "Crème brûlée 🍮 for 👩‍💻",
            "😀",
            "tab\there\nnewline\u{0}nul\u{7f}del",
            "all printable !#$&'()*+,-./:;<=>?@[\\]^_`{|}~",
        ] {
            let encoded = percent_encode_header_value(value);
            assert!(encoded.bytes().all(|b| is_unreserved(b) || b == b'%'), "{encoded}");
            assert_eq!(percent_decode_header_value(&encoded).unwrap(), value);
        }
    }

    #[test]
    fn decode_accepts_lowercase_hex_and_raw_text() {
        assert_eq!(percent_decode_header_value("caf%c3%a9").unwrap(), "café");
        // Unencoded characters pass through unchanged.
        assert_eq!(percent_decode_header_value("café ok").unwrap(), "café ok");
    }

    #[test]
    fn decode_errors() {
        assert_eq!(
            percent_decode_header_value("%"),
            Err(PercentDecodeError::InvalidEscape { position: 0 })
        );
        assert_eq!(
            percent_decode_header_value("ab%4"),
            Err(PercentDecodeError::InvalidEscape { position: 2 })
        );
        assert_eq!(
            percent_decode_header_value("x%g0"),
            Err(PercentDecodeError::InvalidEscape { position: 1 })
        );
        assert_eq!(
            percent_decode_header_value("%FF%FE"),
            Err(PercentDecodeError::InvalidUtf8)
        );
        // A multi-byte character right after `%` is an invalid escape, not a panic.
        assert_eq!(
            percent_decode_header_value("%é"),
            Err(PercentDecodeError::InvalidEscape { position: 0 })
        );
    }

    #[test]
    fn parse_minimal() {
        let event = parse_ce_headers(required()).unwrap();
        assert_eq!(
            event,
            CloudEventHeaders {
                id: "evt-1".into(),
                source: "/wallet".into(),
                specversion: "1.0".into(),
                r#type: "credential.issued".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn parse_full_case_insensitive_and_decoded() {
        let subject = percent_encode_header_value("Zoë \"Z\" 100%");
        let mut headers: Vec<(&str, &[u8])> = vec![
            ("CE-Id", b"evt-2"),
            ("Ce-Source", b"/wallet/tenants/acme"),
            ("CE-SPECVERSION", b"1.0"),
            ("ce-TYPE", b"credential.revoked"),
            ("ce-subject", subject.as_bytes()),
            ("ce-time", b"2025-05-01T10:22:17Z"),
            ("ce-dataschema", b"https://example.com/schema.json"),
            ("Content-Type", b"application/json"),
            ("ce-TraceParent", b"00-abc-def-01"),
            ("ce-note", b"%F0%9F%9A%80%20launch"),
            ("Host", b"example.com"),
            ("X-Credenco-Signature", b"t=1,v1=00"),
        ];
        headers.push(("ce-datacontenttype", b"text/plain"));
        let event = parse_ce_headers(headers).unwrap();
        assert_eq!(event.id, "evt-2");
        assert_eq!(event.r#type, "credential.revoked");
        assert_eq!(event.subject.as_deref(), Some("Zoë \"Z\" 100%"));
        assert_eq!(event.time.as_deref(), Some("2025-05-01T10:22:17Z"));
        assert_eq!(event.dataschema.as_deref(), Some("https://example.com/schema.json"));
        // Content-Type wins over ce-datacontenttype.
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(event.extensions.len(), 2);
        assert_eq!(event.extensions["traceparent"], "00-abc-def-01");
        assert_eq!(event.extensions["note"], "🚀 launch");
    }

    #[test]
    fn ce_datacontenttype_fallback() {
        let mut headers = required();
        headers.push(("ce-datacontenttype", b"application/json"));
        let event = parse_ce_headers(headers).unwrap();
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
    }

    #[test]
    fn missing_required_attributes() {
        for name in ["id", "source", "specversion", "type"] {
            let headers: Vec<_> = required()
                .into_iter()
                .filter(|(h, _)| *h != format!("ce-{name}"))
                .collect();
            assert_eq!(
                parse_ce_headers(headers),
                Err(CloudEventHeaderError::MissingAttribute(name))
            );
        }
        let mut headers = required();
        headers[0] = ("ce-id", b"");
        assert_eq!(
            parse_ce_headers(headers),
            Err(CloudEventHeaderError::MissingAttribute("id"))
        );
    }

    #[test]
    fn duplicates_and_bad_values() {
        let mut headers = required();
        headers.push(("CE-ID", b"evt-other"));
        assert_eq!(
            parse_ce_headers(headers),
            Err(CloudEventHeaderError::DuplicateAttribute("id".into()))
        );

        let mut headers = required();
        headers.push(("ce-subject", b"50%"));
        let err = parse_ce_headers(headers).unwrap_err();
        assert_eq!(
            err,
            CloudEventHeaderError::InvalidValue {
                header: "ce-subject".into(),
                source: PercentDecodeError::InvalidEscape { position: 2 },
            }
        );
        assert!(std::error::Error::source(&err).is_some());

        let mut headers = required();
        headers.push(("ce-subject", b"\xff"));
        assert!(matches!(
            parse_ce_headers(headers),
            Err(CloudEventHeaderError::InvalidValue {
                source: PercentDecodeError::InvalidUtf8,
                ..
            })
        ));

        let mut headers = required();
        headers.push(("ce-", b"x"));
        assert_eq!(
            parse_ce_headers(headers),
            Err(CloudEventHeaderError::InvalidAttributeName("ce-".into()))
        );
    }

    #[test]
    fn non_ascii_header_names_do_not_panic() {
        let mut headers = required();
        headers.push(("cé", b"x"));
        headers.push(("c", b"x"));
        assert!(parse_ce_headers(headers).is_ok());
    }
}
