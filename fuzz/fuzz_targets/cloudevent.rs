//! CloudEvents on both sides of a webhook: the receiver's `parse_ce_headers` and the header
//! encoding, and the product's structured-mode envelope (`business_wallet::events::CloudEvent`)
//! turned into binary-mode headers the way the webhook channel sends them.
//!
//! Input, binary mode: `name: value` header lines, an empty line, then the body. Input that
//! starts with `{`, structured mode: a JSON envelope.
//!
//! Checked: the percent encoding always yields a sendable header value and decodes back to the
//! original; an accepted set of headers, encoded again, reads back the same; an envelope the
//! product can hold reaches a receiver with every attribute intact, or is refused for an
//! empty required attribute.
#![no_main]

use std::collections::BTreeMap;

use business_wallet::events::CloudEvent;
use business_wallet_fuzz::split_line;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use webhook_verify::{
    parse_ce_headers, percent_decode_header_value, percent_encode_header_value, CloudEventHeaderError,
    CloudEventHeaders,
};

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        structured(data);
    } else {
        binary(data);
    }
});

/// Encodes a value as the webhook channel does, checking it can go on the wire and decodes back.
fn encode(value: &str) -> String {
    let encoded = percent_encode_header_value(value);
    assert!(
        HeaderValue::from_str(&encoded).is_ok(),
        "{value:?} encodes to an unsendable header value {encoded:?}"
    );
    assert_eq!(percent_decode_header_value(&encoded).as_deref(), Ok(value));
    encoded
}

fn binary(data: &[u8]) {
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (line, after) = split_line(rest);
        rest = after;
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii_start();
        headers.push((name.trim(), value));
    }
    let body = rest;

    for (_, value) in &headers {
        if let Ok(value) = std::str::from_utf8(value) {
            encode(value);
            // Decoding never panics, whatever the escapes.
            let _ = percent_decode_header_value(value);
        }
    }

    let Ok(event) = parse_ce_headers(headers.iter().copied()) else {
        return;
    };
    for required in [&event.id, &event.source, &event.specversion, &event.r#type] {
        assert!(!required.is_empty());
    }
    // The same event sent again, every attribute encoded, reads back identically.
    let again = parse_ce_headers(as_headers(&event).iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    assert_eq!(again.as_ref(), Ok(&event));

    // With a JSON body, the event is also a structured-mode envelope; when the product can
    // hold it, sending it again as a webhook gives the receiver the same attributes.
    if event.datacontenttype.as_deref() == Some("application/json") {
        if let Ok(data) = serde_json::from_slice::<serde_json::Value>(body) {
            let mut envelope = serde_json::Map::new();
            for (name, value) in [
                ("specversion", Some(&event.specversion)),
                ("type", Some(&event.r#type)),
                ("source", Some(&event.source)),
                ("id", Some(&event.id)),
                ("time", event.time.as_ref()),
                ("subject", event.subject.as_ref()),
                ("dataschema", event.dataschema.as_ref()),
                ("datacontenttype", event.datacontenttype.as_ref()),
            ] {
                if let Some(value) = value {
                    envelope.insert(name.into(), value.clone().into());
                }
            }
            for (name, value) in &event.extensions {
                envelope.insert(name.clone(), value.clone().into());
            }
            envelope.insert("data".into(), data);
            let json = serde_json::to_vec(&envelope).unwrap();
            structured(&json);
        }
    }
}

/// The headers a sender writes for `event`: `Content-Type` and one `ce-` header per attribute.
fn as_headers(event: &CloudEventHeaders) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if let Some(content_type) = &event.datacontenttype {
        headers.push(("Content-Type".to_string(), content_type.clone()));
    }
    let optional = [
        ("subject", &event.subject),
        ("time", &event.time),
        ("dataschema", &event.dataschema),
    ];
    for (name, value) in [
        ("id", Some(&event.id)),
        ("source", Some(&event.source)),
        ("specversion", Some(&event.specversion)),
        ("type", Some(&event.r#type)),
    ]
    .into_iter()
    .chain(optional.iter().map(|(n, v)| (*n, v.as_ref())))
    {
        if let Some(value) = value {
            headers.push((format!("ce-{name}"), encode(value)));
        }
    }
    for (name, value) in &event.extensions {
        headers.push((format!("ce-{name}"), encode(value)));
    }
    headers
}

fn structured(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<CloudEvent>(data) else {
        return;
    };
    // The envelope survives its own JSON form (the Kafka and JMS channels send that).
    let json = serde_json::to_vec(&event).unwrap();
    assert_eq!(serde_json::from_slice::<CloudEvent>(&json).unwrap(), event);

    // Sent as a webhook: Content-Type plus the envelope's `ce-` headers, encoded.
    let mut sent: Vec<(&str, String)> = vec![("content-type", "application/json".into())];
    for (name, value) in event.binary_mode_headers() {
        sent.push((name, encode(value)));
    }
    let received = parse_ce_headers(sent.iter().map(|(n, v)| (*n, v.as_bytes())));

    let first_empty = [
        ("id", &event.id),
        ("source", &event.source),
        ("specversion", &event.specversion),
        ("type", &event.event_type),
    ]
    .into_iter()
    .find(|(_, value)| value.is_empty());
    if let Some((name, _)) = first_empty {
        assert_eq!(received, Err(CloudEventHeaderError::MissingAttribute(name)));
        return;
    }
    let expected = CloudEventHeaders {
        id: event.id.clone(),
        source: event.source.clone(),
        specversion: event.specversion.clone(),
        r#type: event.event_type.clone(),
        subject: Some(event.subject.clone()),
        time: Some(event.time.clone()),
        dataschema: Some(event.dataschema.clone()),
        datacontenttype: Some("application/json".into()),
        extensions: BTreeMap::from_iter(
            [
                ("walletexternalkey", Some(&event.walletexternalkey)),
                ("correlationid", Some(&event.correlationid)),
                ("traceparent", event.traceparent.as_ref()),
                ("tracestate", event.tracestate.as_ref()),
            ]
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value?.clone()))),
        ),
    };
    assert_eq!(received, Ok(expected));
}
