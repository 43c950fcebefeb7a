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
