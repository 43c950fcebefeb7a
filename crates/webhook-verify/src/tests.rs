//! Unit tests of signing and verification against fixed vectors.

use super::*;

const SECRET: &[u8] = b"whsec_test";
const OLD_SECRET: &[u8] = b"whsec_old_secret";
const T: i64 = 1_746_094_937;
const BODY: &[u8] = br#"{"a":1}"#;
/// HMAC-SHA256(b"whsec_test", b"1746094937.{\"a\":1}"), computed with an
/// independent HMAC implementation.
const KNOWN_V1: &str = "2e0b3ffe8deba37d51231ccbda858e5abe0a7d6140e01f3923aefb19fe2262fb";
/// HMAC-SHA256(b"whsec_old_secret", b"1746094937.{\"a\":1}").
const KNOWN_V1_OLD: &str = "9c6267de51bea0f72d6d3c08da7d21aa74a767f01af07309bacf22453879a44f";
/// HMAC-SHA256(b"whsec_test", b"1746094937.") (empty body).
const KNOWN_V1_EMPTY: &str = "3935e243c95e8cfaff5603e178043cc3d0319fc6e9a556eb81bb5fd6c079014c";

fn at(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

#[test]
fn known_answer() {
    assert_eq!(sign(SECRET, T, BODY), KNOWN_V1);
    assert_eq!(sign(OLD_SECRET, T, BODY), KNOWN_V1_OLD);
    assert_eq!(sign(SECRET, T, b""), KNOWN_V1_EMPTY);
}

#[test]
fn known_answer_header_verifies() {
    let header = format!("t={T},v1={KNOWN_V1}");
    assert_eq!(signature_header(&[SECRET], T, BODY), header);
    let v = verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)).unwrap();
    assert_eq!(
        v,
        Verified {
            timestamp: T,
            secret_index: 0
        }
    );
}

/// The signed request shown in the receiver guide (values computed with
/// an independent HMAC implementation).
#[test]
fn guide_example_vector() {
    let current = b"whsec_ZXhhbXBsZSBzZWNyZXQsIGRvIG5vdCB1c2UhISEhIQ".as_slice();
    let previous = b"whsec_cHJldmlvdXMgZXhhbXBsZSBzZWNyZXQsIHJldGlyZWQ".as_slice();
    let body = br#"{"walletExternalKey":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","displayName":"Example Logistics B.V.","email":"integrations@example.com","website":"https://logistics.example.com","phoneNumber":"+31 20 123 4567","address":{"street":"Havenstraat 12","postalCode":"1011 AB","city":"Amsterdam","country":"NL"},"createdAt":"2026-05-01T09:42:17.812Z","createdBy":"operator@example.com"}"#;
    let header = "t=1777628538,v1=1dd5f685319abc19823dd0aa4c149df7c70579fa474bbf180d9c82eb66bf488e,v1=5a1a46238c09461b121d03b93068e96f334fbec3cd155b6c16ac72d64e66e78b";
    assert_eq!(signature_header(&[current, previous], 1_777_628_538, body), header);
    let now = at(1_777_628_540);
    let v = verify(header, body, &[previous], DEFAULT_TOLERANCE, now).unwrap();
    assert_eq!(v.secret_index, 0);
}

#[test]
fn uppercase_hex_is_accepted() {
    let header = format!("t={T},v1={}", KNOWN_V1.to_ascii_uppercase());
    assert!(verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)).is_ok());
}

#[test]
fn round_trip() {
    let body = b"arbitrary \x00\xff binary body";
    let header = signature_header(&[SECRET], 42, body);
    let v = verify(&header, body, &[SECRET], DEFAULT_TOLERANCE, at(42)).unwrap();
    assert_eq!(v.timestamp, 42);
    assert_eq!(v.secret_index, 0);
}

#[test]
fn two_secrets_in_header() {
    let header = signature_header(&[SECRET, OLD_SECRET], T, BODY);
    assert_eq!(header, format!("t={T},v1={KNOWN_V1},v1={KNOWN_V1_OLD}"));

    // A receiver that still only knows the old secret.
    let v = verify(&header, BODY, &[OLD_SECRET], DEFAULT_TOLERANCE, at(T)).unwrap();
    assert_eq!(v.secret_index, 0);
    // A receiver that already switched to the new secret.
    let v = verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)).unwrap();
    assert_eq!(v.secret_index, 0);
    // A receiver that trusts both reports the first matching secret.
    let v = verify(
        &header,
        BODY,
        &[b"whsec_other", OLD_SECRET, SECRET],
        DEFAULT_TOLERANCE,
        at(T),
    )
    .unwrap();
    assert_eq!(v.secret_index, 1);
}

#[test]
fn two_secrets_at_receiver() {
    let header = signature_header(&[OLD_SECRET], T, BODY);
    let v = verify(&header, BODY, &[SECRET, OLD_SECRET], DEFAULT_TOLERANCE, at(T)).unwrap();
    assert_eq!(v.secret_index, 1);
}

#[test]
fn wrong_secret() {
    let header = signature_header(&[SECRET], T, BODY);
    assert_eq!(
        verify(&header, BODY, &[b"whsec_wrong"], DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::NoMatchingSignature)
    );
    assert_eq!(
        verify(&header, BODY, &[], DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn tampered_body() {
    let header = signature_header(&[SECRET], T, BODY);
    assert_eq!(
        verify(&header, br#"{"a":2}"#, &[SECRET], DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::NoMatchingSignature)
    );
    // Re-serialised JSON (extra whitespace) also fails: verify raw bytes.
    assert_eq!(
        verify(&header, br#"{"a": 1}"#, &[SECRET], DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn tampered_timestamp() {
    let header = format!("t={},v1={KNOWN_V1}", T + 1);
    assert_eq!(
        verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn tolerance_boundaries() {
    let header = signature_header(&[SECRET], T, BODY);
    let tol = DEFAULT_TOLERANCE.as_secs() as i64;
    // Exactly at the edge, both directions: accepted.
    assert!(verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T + tol)).is_ok());
    assert!(verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T - tol)).is_ok());
    // Sub-second part of `now` does not push it over the edge.
    let late = at(T + tol) + Duration::from_millis(999);
    assert!(verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, late).is_ok());
}

#[test]
fn timestamp_too_old() {
    let header = signature_header(&[SECRET], T, BODY);
    let now = T + 301;
    assert_eq!(
        verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(now)),
        Err(VerifyError::TimestampOutsideTolerance { timestamp: T, now })
    );
}

#[test]
fn timestamp_in_the_future() {
    let header = signature_header(&[SECRET], T, BODY);
    let now = T - 301;
    assert_eq!(
        verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(now)),
        Err(VerifyError::TimestampOutsideTolerance { timestamp: T, now })
    );
}

#[test]
fn zero_tolerance_and_extreme_values() {
    let header = signature_header(&[SECRET], T, BODY);
    assert!(verify(&header, BODY, &[SECRET], Duration::ZERO, at(T)).is_ok());
    assert!(verify(&header, BODY, &[SECRET], Duration::ZERO, at(T + 1)).is_err());
    // No overflow with timestamps far from now.
    let header = signature_header(&[SECRET], i64::MIN, BODY);
    assert!(matches!(
        verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::TimestampOutsideTolerance { .. })
    ));
    let header = signature_header(&[SECRET], i64::MAX, BODY);
    assert!(verify(&header, BODY, &[SECRET], Duration::MAX, at(T)).is_ok());
}

#[test]
fn clock_before_epoch() {
    assert_eq!(unix_seconds(at(-5)), -5);
    assert_eq!(unix_seconds(at(-5) - Duration::from_millis(1)), -6);
    assert_eq!(unix_seconds(at(5) + Duration::from_millis(1)), 5);
    let header = signature_header(&[SECRET], -5, BODY);
    assert!(verify(&header, BODY, &[SECRET], Duration::ZERO, at(-5)).is_ok());
}

#[test]
fn whitespace_tolerance() {
    let header = format!("  t = {T} ,\tv1 =  {KNOWN_V1}\t, v1={KNOWN_V1_OLD} ,");
    let parsed = parse_header(&header).unwrap();
    assert_eq!(parsed.timestamp, T);
    assert_eq!(parsed.signatures.len(), 2);
    assert_eq!(parsed.signatures[0], hex::decode(KNOWN_V1).unwrap());
    assert!(verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)).is_ok());
}

#[test]
fn unknown_scheme_ignored() {
    let header = format!("t={T},v0=not-even-hex,v1={KNOWN_V1},v2=whatever,x=");
    let parsed = parse_header(&header).unwrap();
    assert_eq!(parsed.signatures.len(), 1);
    assert!(verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)).is_ok());
    // An unknown scheme alone is not a signature.
    assert_eq!(
        parse_header(&format!("t={T},v0={KNOWN_V1}")),
        Err(VerifyError::NoSignature)
    );
}

#[test]
fn missing_timestamp() {
    assert_eq!(
        parse_header(&format!("v1={KNOWN_V1}")),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(parse_header(""), Err(VerifyError::MissingTimestamp));
    assert_eq!(
        verify(&format!("v1={KNOWN_V1}"), BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::MissingTimestamp)
    );
}

#[test]
fn missing_v1() {
    assert_eq!(parse_header(&format!("t={T}")), Err(VerifyError::NoSignature));
    assert_eq!(
        verify(&format!("t={T}"), BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::NoSignature)
    );
}

#[test]
fn non_hex_v1() {
    let bad = format!("t={T},v1={}", "zz".repeat(32));
    assert!(matches!(parse_header(&bad), Err(VerifyError::MalformedHeader(_))));
    let odd = format!("t={T},v1={}", &KNOWN_V1[1..]);
    assert!(matches!(parse_header(&odd), Err(VerifyError::MalformedHeader(_))));
    let short = format!("t={T},v1={}", &KNOWN_V1[..62]);
    assert!(matches!(parse_header(&short), Err(VerifyError::MalformedHeader(_))));
    let empty = format!("t={T},v1=");
    assert!(matches!(parse_header(&empty), Err(VerifyError::MalformedHeader(_))));
}

#[test]
fn malformed_timestamp_and_items() {
    for header in [
        format!("t=abc,v1={KNOWN_V1}"),
        format!("t=,v1={KNOWN_V1}"),
        format!("t=+{T},v1={KNOWN_V1}"),
        format!("t=1.5,v1={KNOWN_V1}"),
        format!("t=99999999999999999999,v1={KNOWN_V1}"),
        format!("t={T},t={T},v1={KNOWN_V1}"),
        format!("t={T},v1={KNOWN_V1},garbage"),
    ] {
        assert!(
            matches!(parse_header(&header), Err(VerifyError::MalformedHeader(_))),
            "{header}"
        );
    }
    assert_eq!(parse_header(&format!("t=-5,v1={KNOWN_V1}")).unwrap().timestamp, -5);
}

#[test]
fn keys_are_case_sensitive() {
    // `T` and `V1` are unknown keys, not the ones defined by the scheme.
    assert_eq!(
        parse_header(&format!("T={T},v1={KNOWN_V1}")),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(
        parse_header(&format!("t={T},V1={KNOWN_V1}")),
        Err(VerifyError::NoSignature)
    );
}

#[test]
fn errors_display() {
    let e = VerifyError::TimestampOutsideTolerance {
        timestamp: 100,
        now: 500,
    };
    assert!(e.to_string().contains("400s"));
    let boxed: Box<dyn std::error::Error> = Box::new(VerifyError::NoMatchingSignature);
    assert!(!boxed.to_string().is_empty());
}

/// The secret key of RFC 8032's first test vector, its JWK thumbprint (the `kid`) and the
/// Ed25519 signature of `1746094937.{"a":1}`, computed with PyPI `cryptography`.
const ED25519_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const ED25519_KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const KNOWN_V1A: &str = "x8KWqDq83kADBFxZBvQ3YoE1j1QTguJXNmwMpIoCZmI7Bpmsecdo1Esfw5NY9RNDokV_dx7NUCnaJPIhOlhUCg";

fn ed25519_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&hex::decode(ED25519_SEED).unwrap().try_into().unwrap())
}

fn jwks() -> PublicKeys {
    PublicKeys::from_jwks(&format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"{ED25519_KID}","x":"{ED25519_X}"}}]}}"#
    ))
    .unwrap()
}

#[test]
fn ed25519_known_answer_and_both_verifications_of_one_header() {
    let key = ed25519_key();
    assert_eq!(jwk_thumbprint(&key.verifying_key()), ED25519_KID);
    assert_eq!(public_jwk(ED25519_KID, &key.verifying_key())["x"], ED25519_X);
    let header = format!("t={T},v1={KNOWN_V1},v1a={ED25519_KID}:{KNOWN_V1A}");
    assert_eq!(
        format!(
            "{}{}",
            signature_header(&[SECRET], T, BODY),
            ed25519_entry(ED25519_KID, &key, T, BODY)
        ),
        header
    );
    // The HMAC verifier ignores the entry; the Ed25519 verifier ignores the v1 values.
    assert_eq!(
        verify(&header, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T))
            .unwrap()
            .secret_index,
        0
    );
    let verified = verify_ed25519(&header, BODY, &jwks(), DEFAULT_TOLERANCE, at(T)).unwrap();
    assert_eq!(verified.kid, ED25519_KID);
    assert_eq!(verified.timestamp, T);
}

#[test]
fn ed25519_failures_say_what_is_wrong() {
    let good = format!("t={T},v1={KNOWN_V1},v1a={ED25519_KID}:{KNOWN_V1A}");
    assert_eq!(
        verify_ed25519(&good, b"{}", &jwks(), DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::BadEd25519Signature {
            kid: ED25519_KID.into()
        })
    );
    assert!(matches!(
        verify_ed25519(&good, BODY, &jwks(), DEFAULT_TOLERANCE, at(T + 301)),
        Err(VerifyError::TimestampOutsideTolerance { .. })
    ));
    assert_eq!(
        verify_ed25519(&good, BODY, &PublicKeys::default(), DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::UnknownKey {
            kids: vec![ED25519_KID.into()]
        })
    );
    let hmac_only = format!("t={T},v1={KNOWN_V1}");
    assert_eq!(
        verify_ed25519(&hmac_only, BODY, &jwks(), DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::NoEd25519Signature)
    );
    // A damaged v1a value fails the Ed25519 check and never the HMAC one.
    let damaged = format!("t={T},v1={KNOWN_V1},v1a=nonsense");
    assert!(matches!(
        verify_ed25519(&damaged, BODY, &jwks(), DEFAULT_TOLERANCE, at(T)),
        Err(VerifyError::MalformedHeader(_))
    ));
    assert!(verify(&damaged, BODY, &[SECRET], DEFAULT_TOLERANCE, at(T)).is_ok());
}

#[test]
fn a_key_set_skips_other_key_types_and_refuses_broken_ed25519_keys() {
    let single = format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"a","x":"{ED25519_X}"}}"#);
    assert_eq!(
        PublicKeys::from_jwks(&single).unwrap().kids().collect::<Vec<_>>(),
        ["a"]
    );
    let others = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"p"},{"kty":"OKP","crv":"X25519","kid":"x"}]}"#;
    assert_eq!(PublicKeys::from_jwks(others).unwrap().kids().count(), 0);
    assert!(PublicKeys::from_jwks(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]}"#).is_err());
    assert!(PublicKeys::from_jwks(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"AA"}]}"#).is_err());
    assert!(PublicKeys::from_jwks("not json").is_err());
}

/// The vectors of docs/receiving-webhooks.md: its example request, secret and Ed25519 key.
#[test]
fn the_receiver_guide_vectors_hold() {
    let body = br#"{"walletExternalKey":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","displayName":"Example Logistics B.V.","email":"integrations@example.com","website":"https://logistics.example.com","phoneNumber":"+31 20 123 4567","address":{"street":"Havenstraat 12","postalCode":"1011 AB","city":"Amsterdam","country":"NL"},"createdAt":"2026-05-01T09:42:17.812Z","createdBy":"operator@example.com"}"#;
    let secret = "whsec_ZXhhbXBsZSBzZWNyZXQsIGRvIG5vdCB1c2UhISEhIQ";
    let t = 1_777_628_538;
    let header = format!(
        "{}{}",
        signature_header(&[secret.as_bytes()], t, body),
        ed25519_entry(ED25519_KID, &ed25519_key(), t, body)
    );
    assert_eq!(
        header,
        "t=1777628538,v1=1dd5f685319abc19823dd0aa4c149df7c70579fa474bbf180d9c82eb66bf488e,\
         v1a=kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k:aOTMXRNpj9POTKWgXGpyowjrKTdp_M4RY2FUKe2oAW2JRrHJXnBwkCT1FK2fqBz0henyG-YoIP1vmF2h_Q6cAw"
    );
    assert_eq!(
        standard_signature_header(
            &[secret],
            Some(&ed25519_key()),
            "5c3a1e7e-2b7d-4f0e-9a51-0f6d2b8c9e41",
            t,
            body
        ),
        "v1,Kz9df/cDQnkMIcShWt+J7vL8f6VidVZWobdJ6XHUKjo= \
         v1a,blMhr/w8RzBGT0eYztWaoJWNc1vaUmCfjJeJkkjWTYxd3Rn1lilquQdnTwsqJmzOHpq2/0S26C9qCDC2AQcmDA=="
    );
}
