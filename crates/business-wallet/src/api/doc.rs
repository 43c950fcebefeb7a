//! The shared parts of the OpenAPI description: the error responses (each a reusable component
//! whose body is [`ErrorBody`](crate::error::ErrorBody)), the sets of them that routes answer,
//! and the schemas of the field rules that the validation code applies (trimmed single-line
//! texts, webhook URLs, external keys), so that what the description allows is what the server
//! accepts.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ArrayItems, Object, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{ContentBuilder, KnownFormat, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToResponse};

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident = $description:literal;)+) => {
        $(
            $(#[$doc])*
            pub enum $name {}

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error_response($description))
                }
            }
        )+

        /// The names of every error response component, for the document's components.
        #[cfg(test)]
        pub const ERROR_RESPONSES: &[&str] = &[$(stringify!($name)),+];
    };
}

error_responses! {
    /// 400.
    BadRequest = "Invalid input: a malformed request, malformed JSON, a wrong type, an unknown \
        field or value, a NUL or control character where none may be, or a broken field rule. \
        `details.field` names the field when there is one. Every route also refuses an \
        `X-Correlation-Id` request header that is not one header of 1 to 128 visible ASCII \
        characters (`!` to `~`: no spaces), with `details.field` = `X-Correlation-Id`; without \
        the header a request gets a new UUID as its correlation id.";
    /// 401.
    Unauthorized = "No valid bearer token: none, malformed, expired, or not signed by a key this \
        server trusts.";
    /// 403.
    Forbidden = "The token lacks the authority this operation needs, or names another wallet.";
    /// 404.
    NotFound = "No such wallet, identifier, channel or delivery (or not in this scope).";
    /// 409.
    Conflict = "The resource is not in a state that allows the operation (a delivery that is not \
        FAILED; a replaced channel whose omitted secret has no stored value to keep).";
    /// 412.
    PreconditionFailed = "A channel with that name already exists in this scope.";
    /// 413.
    PayloadTooLarge = "The request body is larger than the configured limit \
        (`server.body_limit_bytes`).";
    /// 422.
    Unprocessable = "Each field is fine on its own but they cannot go together (for example a \
        channel's type that would change on replace).";
    /// 503.
    Unavailable = "The database is not reachable; try again (see `Retry-After`).";
}

fn reference(name: &str) -> RefOr<Response> {
    RefOr::Ref(Ref::from_response_name(name))
}

/// The errors any route can answer: a malformed request (400) and an unreachable database (503).
pub struct Common;

impl IntoResponses for Common {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("400".into(), reference("BadRequest")),
            ("503".into(), reference("Unavailable")),
        ])
    }
}

/// The errors every route that takes a bearer token can answer: 400, 401, 403 and 503.
pub struct Secured;

impl IntoResponses for Secured {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = Common::responses();
        responses.insert("401".into(), reference("Unauthorized"));
        responses.insert("403".into(), reference("Forbidden"));
        responses
    }
}

/// [`Secured`] plus 404, for routes that name a wallet or another resource in their path.
pub struct SecuredLookup;

impl IntoResponses for SecuredLookup {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = Secured::responses();
        responses.insert("404".into(), reference("NotFound"));
        responses
    }
}

// --- field rules ---------------------------------------------------------------------------

/// Characters that `str::trim` removes (Unicode White_Space).
pub(crate) const WS: &str = r"\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// Control characters (Unicode Cc), which no single-line text may hold.
pub(crate) const CC: &str = r"\x00-\x1F\x7F-\x9F";

/// A pattern for a text that is trimmed and then must be 1 to `max` characters without control
/// characters; with `optional`, an empty (or all-blank) text is allowed too and counts as absent.
fn trimmed_text_pattern(max: usize, optional: bool) -> String {
    // Outer characters: neither blank nor control; inner ones: anything but control.
    let outer = format!(r"[^{CC}{WS}]");
    let inner = format!(r"[^{CC}]");
    let body = if max == 1 {
        outer
    } else {
        format!("{outer}(?:{inner}{{0,{}}}{outer})?", max - 2)
    };
    if optional {
        format!("^[{WS}]*(?:{body}[{WS}]*)?$")
    } else {
        format!("^[{WS}]*{body}[{WS}]*$")
    }
}

/// A required single-line text: trimmed, then 1 to `max` characters, no control characters.
pub fn required_text(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(trimmed_text_pattern(max, false)))
}

/// An optional single-line text (null, empty or all-blank counts as absent): trimmed, then at
/// most `max` characters, no control characters.
pub fn optional_text(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(trimmed_text_pattern(max, true)))
}

/// A required text of any length that is not blank after trimming and holds no control
/// characters.
pub fn required_unbounded_text() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!(r"^[{WS}]*[^{CC}{WS}](?:[^{CC}]*[^{CC}{WS}])?[{WS}]*$")))
}

/// An optional text of any length (null, empty or all-blank counts as absent) without control
/// characters once trimmed.
pub fn optional_unbounded_text() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(format!(
            r"^[{WS}]*(?:[^{CC}{WS}](?:[^{CC}]*[^{CC}{WS}])?[{WS}]*)?$"
        )))
}

/// A regular expression (not anchored) for the whole numbers from 1 to `max`, written in
/// decimal without leading zeros: any number with fewer digits than `max`, and those with as
/// many that are below it from some digit on.
pub fn whole_number_up_to(max: u64) -> String {
    let digits = max.to_string();
    let width = digits.len();
    let mut alternatives = Vec::new();
    if width > 1 {
        alternatives.push(format!("[1-9][0-9]{{0,{}}}", width - 2));
    }
    for (i, digit) in digits.bytes().map(|b| b - b'0').enumerate() {
        let lowest = u8::from(i == 0);
        if digit <= lowest {
            continue;
        }
        let class = if digit - 1 == lowest {
            lowest.to_string()
        } else {
            format!("[{lowest}-{}]", digit - 1)
        };
        let rest = match width - i - 1 {
            0 => String::new(),
            n => format!("[0-9]{{{n}}}"),
        };
        alternatives.push(format!("{}{class}{rest}", &digits[..i]));
    }
    if max > 0 {
        alternatives.push(digits);
    }
    format!("(?:{})", alternatives.join("|"))
}

/// A host name as the webhook URL check reads it: letters, digits and hyphens in dot-separated
/// labels, whose last label is not a number (that would make it an IPv4 address).
const HOST_NAME: &str =
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
/// A dotted IPv4 address.
const IPV4: &str =
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

fn web_url_pattern(optional: bool) -> String {
    let path = format!(r"[^{CC}{WS}]{{0,1024}}");
    let url = format!(r"[Hh][Tt][Tt][Pp][Ss]?://(?:{HOST_NAME}|{IPV4})(?::[1-9][0-9]{{0,3}})?(?:[/?#]{path})?");
    if optional {
        format!(r"^[{WS}]*(?:{url}[{WS}]*)?$")
    } else {
        format!(r"^[{WS}]*{url}[{WS}]*$")
    }
}

/// An absolute `http` or `https` URL without credentials, surrounding blanks trimmed. (The SSRF
/// gate then refuses hosts in forbidden networks, which depends on the deployment.)
pub fn web_url() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(web_url_pattern(false)))
}

/// The same, optional: null, empty or all-blank counts as absent.
pub fn optional_web_url() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(web_url_pattern(true)))
}

/// An external key: a UUID.
pub fn uuid() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
}

/// An RFC 3339 time (as the API writes it: UTC with milliseconds).
pub fn date_time() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

/// HTTP headers as recorded: `[name, value]` pairs in order.
pub fn header_pairs() -> ArrayBuilder {
    let pair = ArrayBuilder::new()
        .prefix_items([Object::with_type(Type::String), Object::with_type(Type::String)])
        .items(ArrayItems::False)
        .min_items(Some(2));
    ArrayBuilder::new().items(pair)
}

/// Only null (or the field left out): for a field that does not apply to a variant.
pub fn null() -> Object {
    Object::with_type(Type::Null)
}

/// One of the given strings.
pub fn one_of_strings<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().map(Into::into)))
}

/// A string that matches `pattern`.
pub fn one_of_pattern(pattern: String) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern))
}

/// The same, or null.
pub fn optional_one_of_strings<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> ObjectBuilder {
    let mut values: Vec<serde_json::Value> = values
        .into_iter()
        .map(|v| serde_json::Value::String(v.into()))
        .collect();
    values.push(serde_json::Value::Null);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
}

/// An object that refuses unknown properties (the request bodies do).
pub fn closed_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        jsonschema::is_valid(&serde_json::json!({ "pattern": pattern }), &serde_json::json!(text))
    }

    #[test]
    fn every_error_response_is_a_component_of_the_document() {
        let components = crate::api::openapi().components.expect("components");
        for name in ERROR_RESPONSES {
            assert!(components.responses.contains_key(*name), "{name} is registered");
        }
    }

    #[test]
    fn whole_numbers_up_to_a_bound() {
        for max in [1_u64, 7, 9, 10, 19, 200, 1000, 4096, i64::MAX as u64, u64::MAX] {
            let pattern = format!("^{}$", whole_number_up_to(max));
            let mut cases = vec![1, max, max / 2, max / 3, max.saturating_sub(1)];
            cases.extend((0..64).map(|shift| max >> shift));
            for n in cases.into_iter().filter(|n| *n > 0) {
                assert!(matches(&pattern, &n.to_string()), "{n} <= {max}");
            }
            let above = u128::from(max) + 1;
            for n in [above, above + 9, above * 10, u128::from(max) * 10] {
                assert!(!matches(&pattern, &n.to_string()), "{n} > {max}");
            }
            for bad in ["0", "", "01", "+1", " 1", "1.0"] {
                assert!(!matches(&pattern, bad), "{bad:?} for {max}");
            }
        }
        // Every number below 1000 against a bound of 200.
        let pattern = format!("^{}$", whole_number_up_to(200));
        for n in 0..1000 {
            assert_eq!(matches(&pattern, &n.to_string()), (1..=200).contains(&n), "{n}");
        }
    }

    #[test]
    fn the_text_patterns_follow_the_trimming_rules() {
        let required = trimmed_text_pattern(5, false);
        for ok in ["a", "  a  ", "abcde", "\tab cd\n", " a\u{a0}b "] {
            assert!(matches(&required, ok), "{ok:?}");
        }
        for bad in ["", "   ", "abcdef", "a\u{7}b", "a\nb", "  abcdef "] {
            assert!(!matches(&required, bad), "{bad:?}");
        }
        let optional = trimmed_text_pattern(5, true);
        for ok in ["", "   ", "a", " abcde "] {
            assert!(matches(&optional, ok), "{ok:?}");
        }
        assert!(!matches(&optional, "abcdef"));
        assert!(matches(&trimmed_text_pattern(1, false), " a "));
    }
}
