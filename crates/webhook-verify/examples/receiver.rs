//! A framework-neutral webhook receiver: verify, read the CloudEvents
//! attributes, deduplicate on `ce-id`, answer quickly.
//!
//! Run with `cargo run -p webhook-verify --example receiver`.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use webhook_verify::{parse_ce_headers, signature_header, verify_now, DEFAULT_TOLERANCE, SIGNATURE_HEADER};

/// Secrets this receiver trusts: the current one, plus the previous one while
/// a rotation is in progress.
const SECRETS: &[&str] = &["whsec_ZXhhbXBsZSBzZWNyZXQsIGRvIG5vdCB1c2UhISEhIQ"];

/// Handles one request and returns the HTTP status code to answer with.
fn handle(headers: &[(&str, &[u8])], body: &[u8], seen: &mut HashSet<String>) -> u16 {
    // 1. Find the signature header (header names are case-insensitive).
    let Some(signature) = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER))
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
    else {
        return 401;
    };

    // 2. Verify against the raw body bytes, before parsing anything.
    let secrets: Vec<&[u8]> = SECRETS.iter().map(|s| s.as_bytes()).collect();
    if let Err(err) = verify_now(signature, body, &secrets, DEFAULT_TOLERANCE) {
        eprintln!("rejected webhook: {err}");
        return 401;
    }

    // 3. Read the CloudEvents attributes.
    let event = match parse_ce_headers(headers.iter().copied()) {
        Ok(event) => event,
        Err(err) => {
            eprintln!("bad CloudEvents headers: {err}");
            return 400;
        }
    };

    // 4. Deduplicate on ce-id: a retry or replay of an event already handled
    //    is acknowledged without doing the work again.
    if !seen.insert(event.id.clone()) {
        return 204;
    }

    // 5. Hand the event to background processing and answer right away.
    println!("accepted {} {} ({} body bytes)", event.r#type, event.id, body.len());
    204
}

fn main() {
    let body = br#"{"walletExternalKey":"3f2504e0-4f89-41d3-9a0c-0305e82c3301"}"#;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let signature = signature_header(&[SECRETS[0].as_bytes()], now, body);

    let headers: Vec<(&str, &[u8])> = vec![
        ("Content-Type", b"application/json"),
        ("ce-specversion", b"1.0"),
        ("ce-type", b"com.credenco.businesswallet.wallet.created.v1"),
        ("ce-source", b"/credenco/wallets"),
        ("ce-id", b"5c3a1e7e-2b7d-4f0e-9a51-0f6d2b8c9e41"),
        ("X-Credenco-Signature", signature.as_bytes()),
    ];

    let mut seen = HashSet::new();
    assert_eq!(handle(&headers, body, &mut seen), 204); // processed
    assert_eq!(handle(&headers, body, &mut seen), 204); // duplicate, skipped
    assert_eq!(handle(&headers, b"{}", &mut seen), 401); // tampered body
}
