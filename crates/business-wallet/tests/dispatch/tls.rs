//! Mutual TLS and private CAs per webhook channel, end to end: channels created through the API
//! with `webhook.tls`, real HTTPS receivers on 127.0.0.1 whose certificates come from a private
//! CA made here with rcgen, one of them requiring a client certificate of a second CA.

use std::sync::Arc;

use chrono::Datelike as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use reqwest::Method;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

use super::{attempts_of, only_delivery, run_once, WALLET_CREATED};
use crate::common::TestApp;
use crate::receiver::Receiver;

/// A certificate authority made for one test.
struct Ca {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate with its key, as PEM.
struct Issued {
    certificate: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).unwrap();
        Ca { certificate, key }
    }

    fn pem(&self) -> String {
        self.certificate.pem()
    }

    fn der(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    fn server(&self) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "receiver.test");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate named `name`, valid for `days` more days (`None`: for decades).
    fn client(&self, name: &str, days: Option<u64>) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some(days) = days {
            let until = chrono::Utc::now().date_naive() + chrono::Days::new(days);
            params.not_after = rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
        }
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.certificate, &self.key).unwrap();
        Issued {
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        }
    }
}

fn der_of(issued: &Issued) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    use rustls::pki_types::pem::PemObject as _;
    let chain = CertificateDer::pem_slice_iter(issued.certificate.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivatePkcs8KeyDer::from_pem_slice(issued.key.as_bytes()).unwrap();
    (chain, key.into())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS receiver with a certificate of `server_ca`, requiring a client certificate of
/// `client_ca` when one is given.
async fn https_receiver(server_ca: &Ca, client_ca: Option<&Ca>) -> Receiver {
    let (chain, key) = der_of(&server_ca.server());
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let config = match client_ca {
        Some(client_ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(client_ca.der()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier).with_single_cert(chain, key)
        }
        None => builder.with_no_client_auth().with_single_cert(chain, key),
    };
    Receiver::start_tls(config.unwrap()).await
}

/// A platform webhook channel subscribed to `wallet.created`, created through the API.
fn channel_body(name: &str, url: &str, tls: Option<Value>) -> Value {
    let mut webhook = json!({ "url": url });
    if let Some(tls) = tls {
        webhook["tls"] = tls;
    }
    json!({ "name": name, "type": "WEBHOOK", "eventTypeFilters": [WALLET_CREATED], "webhook": webhook })
}

/// Creates the channel and returns its view and its row id.
async fn create(app: &TestApp, body: &Value) -> (Value, i64) {
    let (status, view) = app.call(Method::POST, "/api/integration-channels", Some(body)).await;
    assert_eq!(status, 201, "{view}");
    let key = view["channelExternalKey"].as_str().unwrap();
    let id = app
        .count(&format!(
            "SELECT id FROM integration_channel WHERE channel_external_key = '{key}'"
        ))
        .await;
    (view, id)
}

pub async fn a_receiver_requiring_a_client_certificate_takes_the_channel_that_presents_it(app: TestApp) {
    let (server_ca, client_ca) = (Ca::new("Receiver CA"), Ca::new("Client CA"));
    let receiver = https_receiver(&server_ca, Some(&client_ca)).await;
    let client = client_ca.client("wallet-client", None);
    let (view, channel) = create(
        &app,
        &channel_body(
            "mtls",
            &receiver.url(),
            Some(json!({
                "clientCertificate": client.certificate,
                "clientKey": client.key,
                "caCertificates": server_ca.pem(),
            })),
        ),
    )
    .await;
    // The key is never returned; the certificates are described.
    assert!(!view.to_string().contains("PRIVATE KEY"), "{view}");
    assert_eq!(view["webhook"]["tls"]["clientCertificate"], json!(client.certificate));
    let certificates = view["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 2, "{view}");
    assert_eq!(certificates[0]["use"], "CLIENT");
    assert_eq!(certificates[0]["subject"], "CN=wallet-client");
    assert_eq!(certificates[0]["issuer"], "CN=Client CA");
    assert_eq!(certificates[0]["expiresSoon"], false);
    assert_eq!(certificates[1]["use"], "CA");
    assert_eq!(certificates[1]["subject"], "CN=Receiver CA");
    // Stored encrypted: neither the config column nor the sealed secrets hold the key's text.
    let stored = app
        .texts(&format!("SELECT config FROM integration_channel WHERE id = {channel}"))
        .await;
    assert!(!stored[0].as_deref().unwrap().contains("PRIVATE KEY"));

    app.create_wallet("Mutual B.V.").await;
    assert_eq!(run_once(&app).await.delivered, 1);
    let row = only_delivery(&app, channel).await;
    assert_eq!((row.state.as_str(), row.last_status), ("DELIVERED", Some(200)));
    assert_eq!(receiver.received().len(), 1);
    assert!(
        receiver.handshake_errors().is_empty(),
        "{:?}",
        receiver.handshake_errors()
    );

    // A test send goes through the same client.
    let key = view["channelExternalKey"].as_str().unwrap();
    let (status, report) = app
        .call(
            Method::POST,
            &format!("/api/integration-channels/{key}/test"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(
        (status, report["outcome"].as_str()),
        (200, Some("DELIVERED")),
        "{report}"
    );
}

pub async fn a_receiver_requiring_a_client_certificate_refuses_a_channel_without_one(app: TestApp) {
    let (server_ca, client_ca) = (Ca::new("Receiver CA"), Ca::new("Client CA"));
    let receiver = https_receiver(&server_ca, Some(&client_ca)).await;
    let (_, without) = create(
        &app,
        &channel_body(
            "no client certificate",
            &receiver.url(),
            Some(json!({ "caCertificates": server_ca.pem() })),
        ),
    )
    .await;
    let stranger = Ca::new("Another CA").client("stranger", None);
    let (_, foreign) = create(
        &app,
        &channel_body(
            "certificate of another CA",
            &receiver.url(),
            Some(json!({
                "clientCertificate": stranger.certificate,
                "clientKey": stranger.key,
                "caCertificates": server_ca.pem(),
            })),
        ),
    )
    .await;

    app.create_wallet("Refused B.V.").await;
    let outcome = run_once(&app).await;
    assert_eq!((outcome.claimed, outcome.delivered), (2, 0), "{outcome:?}");
    assert!(receiver.received().is_empty());
    for (channel, alert) in [
        (
            without,
            "TLS failed, the receiver requires a client certificate (webhook.tls.clientCertificate)",
        ),
        (foreign, "TLS failed, the receiver refused the client certificate"),
        (without, "received fatal alert: CertificateRequired"),
        (foreign, "received fatal alert: UnknownCA"),
    ] {
        let row = only_delivery(&app, channel).await;
        assert_eq!((row.state.as_str(), row.last_status), ("PENDING", None), "{row:?}");
        let attempts = attempts_of(&app, row.id).await;
        assert_eq!(attempts.len(), 1);
        let (_, outcome, status, error) = &attempts[0];
        assert_eq!((outcome.as_str(), *status), ("RETRYABLE", None));
        let error = error.as_deref().unwrap();
        assert!(error.contains(alert), "the TLS alert is recorded: {error}");
    }
    let refused = receiver.handshake_errors();
    assert_eq!(refused.len(), 2, "{refused:?}");
}

pub async fn a_ca_bundle_lets_a_private_ca_receiver_work_for_its_channel_only(app: TestApp) {
    let server_ca = Ca::new("Private CA");
    let receiver = https_receiver(&server_ca, None).await;
    let (_, trusting) = create(
        &app,
        &channel_body(
            "with the CA",
            &receiver.url(),
            Some(json!({ "caCertificates": server_ca.pem() })),
        ),
    )
    .await;
    let (view, plain) = create(&app, &channel_body("without the CA", &receiver.url(), None)).await;
    assert!(view.get("certificates").is_none(), "{view}");
    assert!(view["webhook"].get("tls").is_none(), "{view}");

    app.create_wallet("Private B.V.").await;
    let outcome = run_once(&app).await;
    assert_eq!((outcome.claimed, outcome.delivered), (2, 1), "{outcome:?}");
    assert_eq!(only_delivery(&app, trusting).await.state, "DELIVERED");
    let row = only_delivery(&app, plain).await;
    assert_eq!(row.state, "PENDING");
    let attempts = attempts_of(&app, row.id).await;
    let error = attempts[0].3.as_deref().unwrap();
    assert_eq!(attempts[0].1, "RETRYABLE");
    assert!(
        error.starts_with("TLS failed, the receiver's certificate is not issued by a trusted CA"),
        "{error}"
    );
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer"),
        "the certificate error is recorded: {error}"
    );
    assert_eq!(receiver.received().len(), 1);
}

pub async fn tls_blocks_are_checked_on_save_and_keep_the_key_on_replace(app: TestApp) {
    let (server_ca, client_ca) = (Ca::new("Receiver CA"), Ca::new("Client CA"));
    let receiver = https_receiver(&server_ca, Some(&client_ca)).await;
    let client = client_ca.client("wallet-client", None);
    let other = client_ca.client("other-client", None);
    let url = receiver.url();
    let post = |tls: Value| {
        let body = channel_body("checked", &url, Some(tls));
        let app = &app;
        async move { app.call(Method::POST, "/api/integration-channels", Some(&body)).await }
    };
    let cases = [
        (
            json!({"clientCertificate": "not a certificate", "clientKey": client.key}),
            400,
            "webhook.tls.clientCertificate",
        ),
        (
            json!({"clientCertificate": client.key, "clientKey": client.key}),
            400,
            "webhook.tls.clientCertificate",
        ),
        (
            json!({"clientCertificate": client.certificate, "clientKey": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}),
            400,
            "webhook.tls.clientKey",
        ),
        (
            json!({"clientCertificate": client.certificate}),
            400,
            "webhook.tls.clientKey",
        ),
        (
            json!({"clientCertificate": client.certificate, "clientKey": other.key}),
            422,
            "webhook.tls.clientKey",
        ),
        (json!({"clientKey": client.key}), 422, "webhook.tls.clientKey"),
        (
            json!({"caCertificates": "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"}),
            400,
            "webhook.tls.caCertificates",
        ),
        (json!({"sni": "x"}), 400, "webhook.tls.sni"),
    ];
    for (tls, status, field) in cases {
        let (got, error) = post(tls.clone()).await;
        assert_eq!(got, status, "{tls}: {error}");
        assert_eq!(error["status"], status, "{error}");
        assert!(error["message"].as_str().unwrap().contains(field), "{tls}: {error}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_channel").await,
        0,
        "nothing stored"
    );

    let body = channel_body(
        "kept",
        &url,
        Some(
            json!({"clientCertificate": client.certificate, "clientKey": client.key, "caCertificates": server_ca.pem()}),
        ),
    );
    let (view, channel) = create(&app, &body).await;
    let path = format!(
        "/api/integration-channels/{}",
        view["channelExternalKey"].as_str().unwrap()
    );
    // Replace without the key: the stored one is kept and still signs the handshake.
    let mut replaced = body.clone();
    replaced["webhook"]["tls"] = json!({"clientCertificate": client.certificate, "caCertificates": server_ca.pem()});
    let (status, answer) = app.call(Method::PUT, &path, Some(&replaced)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(!answer.to_string().contains("PRIVATE KEY"));
    // A new certificate that is not the stored key's: 422, nothing changed.
    replaced["webhook"]["tls"]["clientCertificate"] = json!(other.certificate);
    let (status, answer) = app.call(Method::PUT, &path, Some(&replaced)).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("webhook.tls.clientKey"),
        "{answer}"
    );
    app.create_wallet("Kept B.V.").await;
    assert_eq!(run_once(&app).await.delivered, 1);
    assert_eq!(only_delivery(&app, channel).await.state, "DELIVERED");

    // Without the block the key is dropped: a later certificate needs its key again (409).
    let mut plain = body.clone();
    plain["webhook"]["tls"] = json!({"caCertificates": server_ca.pem()});
    assert_eq!(app.call(Method::PUT, &path, Some(&plain)).await.0, 200);
    let mut again = body.clone();
    again["webhook"]["tls"] = json!({"clientCertificate": client.certificate, "caCertificates": server_ca.pem()});
    let (status, answer) = app.call(Method::PUT, &path, Some(&again)).await;
    assert_eq!(status, 409, "{answer}");
}

pub async fn a_client_certificate_expiring_within_30_days_is_flagged_in_the_view_and_the_metric(app: TestApp) {
    let client_ca = Ca::new("Client CA");
    let soon = client_ca.client("expiring-client", Some(10));
    let later = client_ca.client("lasting-client", Some(90));
    let gauge = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("business_wallet_channel_certificates_expiring{certificate=\"client\"}"))
            .unwrap_or_else(|| panic!("no client certificate gauge in {text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let metrics = || async { app.get("/metrics", None).await.text().await.unwrap() };
    assert_eq!(gauge(&metrics().await), 0.0);

    let mut views = Vec::new();
    for (name, issued) in [("expiring", &soon), ("lasting", &later)] {
        let tls = json!({"clientCertificate": issued.certificate, "clientKey": issued.key});
        views.push(
            create(&app, &channel_body(name, "https://127.0.0.1:9/hook", Some(tls)))
                .await
                .0,
        );
    }
    assert_eq!(views[0]["certificates"][0]["expiresSoon"], true, "{}", views[0]);
    assert_eq!(views[1]["certificates"][0]["expiresSoon"], false, "{}", views[1]);
    let (_, listed) = app.call(Method::GET, "/api/integration-channels", None).await;
    let flagged: Vec<&str> = listed
        .as_array()
        .or_else(|| listed["items"].as_array())
        .unwrap()
        .iter()
        .filter(|c| c["certificates"][0]["expiresSoon"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, vec!["expiring"]);
    assert_eq!(gauge(&metrics().await), 1.0);
}
