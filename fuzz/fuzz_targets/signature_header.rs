//! The receiver's signature check (`webhook_verify::parse_header` / `verify`) and the sender's
//! `signature_header`.
//!
//! Input: the header value on the first line, the secret on the second, the body after it.
//!
//! Checked: parsing and verifying are deterministic; a header verifies exactly when one of its
//! `v1` values is the HMAC of `<t>.<body>` under the secret (with `t` within tolerance); what
//! the sender writes always parses back and verifies, and stops verifying when the body or the
//! clock moves.
#![no_main]

use std::time::Duration;

use business_wallet_fuzz::{at, split_line};
use libfuzzer_sys::fuzz_target;
use webhook_verify::{parse_header, sign, signature_header, verify, Verified, VerifyError, DEFAULT_TOLERANCE};

fuzz_target!(|data: &[u8]| {
    let (header, rest) = split_line(data);
    let (secret, body) = split_line(rest);

    if let Ok(header) = std::str::from_utf8(header) {
        received(header, secret, body);
    }

    // The sender's side, at a time taken from the input.
    let mut t = [0u8; 8];
    for (slot, byte) in t.iter_mut().zip(header) {
        *slot = *byte;
    }
    sent(i64::from_le_bytes(t), secret, body);
});

fn received(header: &str, secret: &[u8], body: &[u8]) {
    let parsed = parse_header(header);
    assert_eq!(parsed, parse_header(header), "parsing is deterministic");
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            // Verification fails the same way, whatever the clock says.
            let now = at(0).unwrap();
            assert_eq!(verify(header, body, &[secret], DEFAULT_TOLERANCE, now), Err(err));
            return;
        }
    };
    assert!(!parsed.signatures.is_empty());
    assert!(parsed.signatures.iter().all(|s| s.len() == 32), "{parsed:?}");

    let Some(now) = at(parsed.timestamp) else { return };
    let outcome = verify(header, body, &[secret], DEFAULT_TOLERANCE, now);
    assert_eq!(
        outcome,
        verify(header, body, &[secret], DEFAULT_TOLERANCE, now),
        "verification is deterministic"
    );
    let expected = hex::decode(sign(secret, parsed.timestamp, body)).unwrap();
    let matches = parsed.signatures.contains(&expected);
    match outcome {
        Ok(verified) => {
            assert!(matches, "accepted without a matching v1: {header:?}");
            assert_eq!(
                verified,
                Verified {
                    timestamp: parsed.timestamp,
                    secret_index: 0
                }
            );
        }
        Err(err) => {
            assert!(!matches, "a matching v1 was refused: {header:?}: {err}");
            assert_eq!(err, VerifyError::NoMatchingSignature);
        }
    }
    // A receiver that trusts a second secret as well still finds this one, at its index.
    if matches {
        let other = b"whsec_other-secret".as_slice();
        if !same_key(other, secret) {
            let verified = verify(header, body, &[other, secret], DEFAULT_TOLERANCE, now).unwrap();
            assert_eq!(verified.secret_index, 1);
        }
    }
}

fn sent(t: i64, secret: &[u8], body: &[u8]) {
    let previous = b"whsec_previous".as_slice();
    let header = signature_header(&[secret, previous], t, body);
    let parsed = parse_header(&header).expect("what the sender writes parses");
    assert_eq!(parsed.timestamp, t);
    assert_eq!(parsed.signatures.len(), 2);

    let Some(now) = at(t) else { return };
    let unrelated = b"whsec_unrelated".as_slice();
    let rotated = if same_key(secret, unrelated) { 0 } else { 1 };
    for (trusted, index) in [(vec![secret], 0), (vec![unrelated, previous], rotated)] {
        let verified = verify(&header, body, &trusted, DEFAULT_TOLERANCE, now)
            .unwrap_or_else(|e| panic!("the sender's header does not verify: {header}: {e}"));
        assert_eq!(
            verified,
            Verified {
                timestamp: t,
                secret_index: index
            }
        );
    }

    // Another body, or a clock past the tolerance, is refused.
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    assert_eq!(
        verify(&header, &tampered, &[secret], DEFAULT_TOLERANCE, now),
        Err(VerifyError::NoMatchingSignature)
    );
    let late = t.checked_add(301).and_then(at);
    if let Some(late) = late {
        assert!(matches!(
            verify(&header, body, &[secret], DEFAULT_TOLERANCE, late),
            Err(VerifyError::TimestampOutsideTolerance { .. })
        ));
        assert!(verify(&header, body, &[secret], Duration::from_secs(301), late).is_ok());
    }
}

/// Whether two secrets are the same HMAC key. HMAC pads a key shorter than the hash's block
/// with zero bytes (and hashes a longer one first), so `whsec_x` and `whsec_x\0` sign alike:
/// a verifier cannot tell them apart, and the first of them in the trusted list matches.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    sign(a, 0, b"") == sign(b, 0, b"")
}
