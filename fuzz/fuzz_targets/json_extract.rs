//! The API's JSON extractor (`AppJson`) with the request bodies it reads: create wallet,
//! create identifier, and channel create/replace.
//!
//! Input: the first line names the body (`wallet`, `identifier` or `channel`) and, after a
//! space, the `Content-Type` (none when absent); the request body follows.
//!
//! Checked: a body is accepted only with a JSON content type, when it is one JSON object whose
//! top-level fields the body type knows; every refusal is a 400 with the documented error
//! shape `{status, error, message, details?}`, where `details` names the field.
#![no_main]

use business_wallet::fuzzing::{extract_json, RequestBody};
use business_wallet_fuzz::split_line;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const WALLET_FIELDS: &[&str] = &["displayName", "email", "website", "phoneNumber", "address"];
const IDENTIFIER_FIELDS: &[&str] = &[
    "identifierType",
    "displayName",
    "didType",
    "domain",
    "didEnvironment",
    "keyType",
    "subject",
    "certificatePem",
];
const CHANNEL_FIELDS: &[&str] = &[
    "name",
    "description",
    "type",
    "enabled",
    "eventTypeFilters",
    "webhook",
    "kafka",
    "jms",
    "config",
];

fuzz_target!(|data: &[u8]| {
    let (first, body) = split_line(data);
    let (kind, content_type) = match first.iter().position(|b| *b == b' ') {
        Some(at) => (&first[..at], Some(&first[at + 1..])),
        None => (first, None),
    };
    let (target, fields) = match kind {
        b"wallet" => (RequestBody::CreateWallet, WALLET_FIELDS),
        b"identifier" => (RequestBody::CreateIdentifier, IDENTIFIER_FIELDS),
        b"channel" => (RequestBody::Channel, CHANNEL_FIELDS),
        _ => match kind.len() % 3 {
            0 => (RequestBody::CreateWallet, WALLET_FIELDS),
            1 => (RequestBody::CreateIdentifier, IDENTIFIER_FIELDS),
            _ => (RequestBody::Channel, CHANNEL_FIELDS),
        },
    };
    // A value that cannot be a header value cannot arrive in a request.
    let content_type = match content_type.map(HeaderValue::from_bytes) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return,
    };
    let is_json = content_type.as_ref().is_some_and(|v| {
        let essence = v
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_ascii_lowercase();
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
    });

    match extract_json(target, content_type.clone(), body.to_vec()) {
        Ok(()) => {
            assert!(is_json, "accepted with Content-Type {content_type:?}");
            let value: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
            let object = value.as_object().expect("an accepted body is an object");
            for key in object.keys() {
                assert!(fields.contains(&key.as_str()), "accepted unknown field {key:?}");
            }
        }
        Err(rejection) => {
            assert_eq!(rejection.status, 400, "{:?}", rejection.body);
            let body = rejection.body.as_object().expect("the error body is an object");
            assert_eq!(body.get("status"), Some(&Value::from(400)));
            assert_eq!(body.get("error"), Some(&Value::from("Bad Request")));
            let message = body.get("message").and_then(Value::as_str).expect("a message");
            assert!(!message.is_empty());
            for key in body.keys() {
                assert!(
                    ["status", "error", "message", "details"].contains(&key.as_str()),
                    "{key}"
                );
            }
            if let Some(details) = body.get("details") {
                let field = details.get("field").and_then(Value::as_str);
                assert!(field.is_some_and(|f| !f.is_empty()), "{details}");
                assert_eq!(details.as_object().unwrap().len(), 1, "{details}");
            }
        }
    }
});
