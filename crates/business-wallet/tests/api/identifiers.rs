use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::common::TestApp;
use crate::{assert_envelope, assert_valid_against_served_schema, both_backends, events_of};

async fn create_identifier(app: &TestApp, wallet: &str, body: Value) -> Value {
    let response = app
        .post(
            &format!("/api/v1/wallets/{wallet}/identifiers"),
            Some(&app.admin_token),
            &body,
        )
        .await;
    let status = response.status();
    let json: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "creating {body}: {json}");
    json
}

/// RFC 7638, computed here independently of the product's code.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str().unwrap() {
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap()
        ),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        ),
        other => panic!("unexpected kty {other}"),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Decodes a did:key (multibase base58btc + multicodec) to the raw public key bytes it names,
/// and checks them against the JWK.
fn assert_did_key_names_jwk(did: &str, jwk: &Value) {
    let encoded = did.strip_prefix("did:key:z").expect("did:key with base58btc multibase");
    let bytes = bs58::decode(encoded).into_vec().expect("base58btc");
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    match jwk["crv"].as_str().unwrap() {
        "Ed25519" => {
            assert_eq!(&bytes[..2], &[0xed, 0x01], "ed25519-pub multicodec");
            assert_eq!(&bytes[2..], &x[..]);
        }
        "P-256" => {
            assert_eq!(&bytes[..2], &[0x80, 0x24], "p256-pub multicodec");
            let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
            let prefix = if y[31] % 2 == 0 { 0x02 } else { 0x03 };
            assert_eq!(bytes[2], prefix, "compressed point parity");
            assert_eq!(&bytes[3..], &x[..]);
        }
        other => panic!("unexpected curve {other}"),
    }
}

fn assert_no_private_material(identifier: &Value) {
    let text = identifier.to_string();
    assert!(identifier["publicJwk"].get("d").is_none(), "no private JWK member");
    assert!(!text.contains("PRIVATE KEY"), "no private key PEM");
    assert!(!text.to_lowercase().contains("privatekey"));
}

async fn every_identifier_type_gets_real_material(app: TestApp) {
    let wallet = app.create_wallet("Identifiers").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();

    let web = create_identifier(
        &app,
        w,
        json!({"identifierType": "DID", "displayName": "Web", "didType": "did:web", "domain": "acme.example"}),
    )
    .await;
    assert_eq!(web["identifier"], "did:web:acme.example");
    assert_eq!(web["didType"], "did:web");
    assert!(web["didEnvironment"].is_null());

    for (key_type, crv) in [("Ed25519", "Ed25519"), ("P-256", "P-256")] {
        let did_key = create_identifier(
            &app,
            w,
            json!({"identifierType": "DID", "displayName": "Key", "didType": "did:key", "keyType": key_type}),
        )
        .await;
        assert_eq!(did_key["publicJwk"]["crv"], crv);
        assert_did_key_names_jwk(did_key["identifier"].as_str().unwrap(), &did_key["publicJwk"]);
        assert_no_private_material(&did_key);
    }

    let ebsi = create_identifier(
        &app,
        w,
        json!({"identifierType": "DID", "displayName": "EBSI", "didType": "did:ebsi", "didEnvironment": "pilot"}),
    )
    .await;
    let ebsi_id = ebsi["identifier"].as_str().unwrap();
    assert!(ebsi_id.starts_with("did:ebsi:z"), "{ebsi_id}");
    let raw = bs58::decode(&ebsi_id["did:ebsi:z".len()..]).into_vec().unwrap();
    assert_eq!(
        (raw[0], raw.len()),
        (0x01, 17),
        "legal-entity did:ebsi: version byte and 16 random bytes"
    );
    assert_eq!(ebsi["didEnvironment"], "pilot");

    let x509 = create_identifier(
        &app,
        w,
        json!({"identifierType": "X509", "displayName": "Seal", "subject": "CN=Acme Seal,O=Acme B.V.,C=NL"}),
    )
    .await;
    let subject = x509["identifier"].as_str().unwrap();
    assert!(
        subject.contains("CN=Acme Seal") && subject.contains("O=Acme B.V.") && subject.contains("C=NL"),
        "{subject}"
    );
    assert!(x509["certificatePem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(x509["didType"].is_null());
    assert_no_private_material(&x509);

    // A supplied certificate is accepted and identified by its own subject.
    let supplied = create_identifier(
        &app,
        w,
        json!({"identifierType": "X509", "displayName": "Supplied", "certificatePem": x509["certificatePem"]}),
    )
    .await;
    assert_eq!(supplied["identifier"], x509["identifier"]);

    for key_type in ["Ed25519", "P-256"] {
        let jwk = create_identifier(
            &app,
            w,
            json!({"identifierType": "JWK", "displayName": "Key", "keyType": key_type}),
        )
        .await;
        assert_eq!(
            jwk["identifier"],
            thumbprint(&jwk["publicJwk"]),
            "the identifier is the RFC 7638 thumbprint"
        );
        assert!(jwk["didType"].is_null());
        assert_no_private_material(&jwk);
    }

    // Listing and reading return the same resources.
    let list: Value = app
        .get(&format!("/api/v1/wallets/{w}/identifiers"), Some(&app.admin_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 8);
    let one = app
        .get(
            &format!(
                "/api/v1/wallets/{w}/identifiers/{}",
                x509["identifierExternalKey"].as_str().unwrap()
            ),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.unwrap(), x509);

    // The private keys are stored encrypted.
    let stored = app
        .count("SELECT COUNT(*) FROM identifier WHERE private_key IS NOT NULL")
        .await;
    assert_eq!(stored, 6, "did:key x2, did:ebsi, generated X509, JWK x2");
}

async fn each_identifier_has_exactly_one_valid_event(app: TestApp) {
    let wallet = app.create_wallet("Events").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let created = [
        create_identifier(&app, w, json!({"identifierType": "DID", "displayName": "Web", "didType": "did:web", "domain": "acme.example"})).await,
        create_identifier(&app, w, json!({"identifierType": "DID", "displayName": "EBSI", "didType": "did:ebsi", "didEnvironment": "production"})).await,
        create_identifier(&app, w, json!({"identifierType": "JWK", "displayName": "Key"})).await,
        create_identifier(&app, w, json!({"identifierType": "X509", "displayName": "Seal", "subject": "CN=Seal"})).await,
    ];
    let events = events_of(&app, w).await;
    assert_eq!(
        events.len(),
        1 + created.len(),
        "the wallet's event and one per identifier"
    );
    for identifier in &created {
        let ik = identifier["identifierExternalKey"].as_str().unwrap();
        let matching: Vec<&Value> = events
            .iter()
            .filter(|e| e["data"]["identifierExternalKey"] == ik)
            .collect();
        assert_eq!(matching.len(), 1, "exactly one event for {ik}");
        let event = matching[0];
        assert_envelope(
            event,
            "com.credenco.businesswallet.identifier.created.v1",
            &format!("wallets/{w}/identifiers/{ik}"),
            w,
        );
        for field in [
            "walletExternalKey",
            "identifierType",
            "identifier",
            "displayName",
            "didType",
            "didEnvironment",
            "createdAt",
            "createdBy",
        ] {
            assert_eq!(event["data"][field], identifier[field], "data.{field}");
        }
        assert_valid_against_served_schema(&app, event["dataschema"].as_str().unwrap(), &event["data"]).await;
    }
}

both_backends!(
    every_identifier_type_gets_real_material,
    each_identifier_has_exactly_one_valid_event
);
