//! The binary's own commands, run as a user would.

use std::io::Write as _;
use std::process::{Command, Stdio};

fn business_wallet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_business-wallet"))
}

#[test]
fn token_mints_with_the_local_key_and_refuses_unknown_authorities() {
    let dir = tempfile::tempdir().unwrap();
    let output = business_wallet()
        .current_dir(dir.path())
        .args([
            "token",
            "--sub",
            "admin",
            "--authority",
            "GLOBAL_WALLET_CRUD",
            "--ttl",
            "10m",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    assert_eq!(token.trim().split('.').count(), 3, "a JWT");
    assert!(
        dir.path().join("data/jwt-hs256.key").exists(),
        "the local key is generated into ./data"
    );

    let output = business_wallet()
        .current_dir(dir.path())
        .args(["token", "--sub", "x", "--authority", "WALLET_ADMIN"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("WALLET_ADMIN"));
}

#[test]
fn verify_accepts_a_good_signature_and_refuses_a_wrong_secret() {
    let body = br#"{"walletExternalKey":"3f2504e0-4f89-41d3-9a0c-0305e82c3301"}"#;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = webhook_verify::signature_header(&[b"whsec_current"], t, body);
    let run = |secret: &str| {
        let mut child = business_wallet()
            .args(["verify", "--secret", secret, "--header", &header])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(body).unwrap();
        child.wait_with_output().unwrap()
    };
    let good = run("whsec_current");
    assert!(good.status.success());
    assert!(String::from_utf8_lossy(&good.stdout).starts_with("valid"));
    let bad = run("whsec_other");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("invalid"));
}

/// Serves `body` as the answer to one HTTP request on 127.0.0.1; returns its URL.
fn serve_once(body: String) -> String {
    use std::io::Read as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/api/public/webhook-signing-keys.json",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/jwk-set+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).unwrap();
    });
    url
}

#[test]
fn verify_checks_the_ed25519_entry_from_a_jwks_url_or_a_key_file() {
    let body = br#"{"walletExternalKey":"3f2504e0-4f89-41d3-9a0c-0305e82c3301"}"#;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let kid = webhook_verify::jwk_thumbprint(&key.verifying_key());
    let header = format!(
        "{}{}",
        webhook_verify::signature_header(&[b"whsec_current"], t, body),
        webhook_verify::ed25519_entry(&kid, &key, t, body)
    );
    let jwks = serde_json::json!({ "keys": [webhook_verify::public_jwk(&kid, &key.verifying_key())] }).to_string();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("jwks.json");
    std::fs::write(&key_file, &jwks).unwrap();
    let run = |args: &[&str], body: &[u8]| {
        let mut child = business_wallet()
            .args(["verify", "--header", &header])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(body).unwrap();
        child.wait_with_output().unwrap()
    };
    let from_url = run(&["--jwks-url", &serve_once(jwks.clone())], body);
    assert!(from_url.status.success(), "{from_url:?}");
    assert_eq!(
        String::from_utf8_lossy(&from_url.stdout).trim(),
        format!("valid: signed at {t} with Ed25519 key {kid}")
    );
    // Both checks at once; each says its result.
    let key_file = key_file.to_str().unwrap();
    let both = run(&["--secret", "whsec_current", "--key-file", key_file], body);
    assert!(both.status.success(), "{both:?}");
    assert_eq!(String::from_utf8_lossy(&both.stdout).lines().count(), 2);
    let tampered = run(&["--key-file", key_file], b"{}");
    assert!(!tampered.status.success());
    assert!(String::from_utf8_lossy(&tampered.stderr).starts_with("invalid: the v1a signature"));
}

#[test]
fn signing_key_rotate_adds_a_published_key_to_the_generated_file() {
    let dir = tempfile::tempdir().unwrap();
    let rotate = || {
        business_wallet()
            .current_dir(dir.path())
            .args(["signing-key", "rotate", "--lead", "1h"])
            .output()
            .unwrap()
    };
    let first = rotate();
    assert!(first.status.success(), "{first:?}");
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.starts_with("added key ") && text.contains("(2 keys in"), "{text}");
    let file = std::fs::read_to_string(dir.path().join("data/webhook-signing-keys.json")).unwrap();
    assert_eq!(file.matches("sealedPrivateKey").count(), 2, "{file}");
    let generated = business_wallet()
        .current_dir(dir.path())
        .args(["signing-key", "generate", "--signs-from", "2027-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let entry = String::from_utf8_lossy(&generated.stdout);
    assert!(
        entry.starts_with("{ private_key = \"") && entry.contains("signs_from = \"2027-01-01T00:00:00Z\""),
        "{entry}"
    );
    // With configured keys the file is not theirs to rotate.
    let refused = business_wallet()
        .current_dir(dir.path())
        .env("BW_INTEGRATION__WEBHOOK__SIGNING__KEYS", format!("[{}]", entry.trim()))
        .args(["signing-key", "rotate"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("integration.webhook.signing.keys"),
        "{refused:?}"
    );
}

#[test]
fn configuration_errors_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = business_wallet()
        .current_dir(dir.path())
        .env("BW_DATABASE__URL", "mysql://nope")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("database.url"));
}
