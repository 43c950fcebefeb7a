//! How the receiver prints what arrives.

use super::*;

#[test]
fn a_structured_event_reads_like_a_binary_one() {
    let body = br#"{"specversion":"1.0","id":"e-1","source":"/credenco/wallets","type":"t.v1",
        "subject":"wallets/w","datacontenttype":"application/json","walletexternalkey":"w",
        "data":{"a":1}}"#;
    let (event, data) = read_structured(body).unwrap();
    assert_eq!(event.id, "e-1");
    assert_eq!(event.r#type, "t.v1");
    assert_eq!(event.subject.as_deref(), Some("wallets/w"));
    assert_eq!(event.extensions["walletexternalkey"], "w");
    assert_eq!(data, "{\n  \"a\": 1\n}");
    assert!(read_structured(br#"{"id":"e-1"}"#).unwrap_err().contains("`source`"));
    assert!(read_structured(b"[1]").is_err());
}
