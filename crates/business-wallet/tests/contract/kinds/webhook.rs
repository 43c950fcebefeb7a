//! The webhook kind: a real HTTP receiver on 127.0.0.1 whose answers the test scripts (the
//! dispatch suite's receiver), and a port nobody listens on.

use serde_json::{json, Value};

use crate::fixture::{closed_port, Behaviour, Destination, KindFixture};
use crate::receiver::{status, Receiver, Reply};

/// The webhook channel kind.
pub struct Webhook;

impl KindFixture for Webhook {
    const TYPE: &'static str = "WEBHOOK";
    const BLOCK_FIELD: &'static str = "webhook";
    type Inbox = Option<Receiver>;

    async fn destination(behaviour: Behaviour) -> Destination<Option<Receiver>> {
        let receiver = Receiver::start().await;
        match behaviour {
            Behaviour::Accepts => {}
            Behaviour::RefusesForNow => receiver.script([Reply::Status(503, vec![("retry-after", "30".into())])]),
            Behaviour::RefusesForGood => receiver.script([status(404)]),
            Behaviour::Unreachable => {
                let url = format!("http://127.0.0.1:{}/hook", closed_port());
                return Destination::real(|_| {}, json!({ "url": url }), None);
            }
        }
        Destination::real(|_| {}, json!({ "url": receiver.url() }), Some(receiver))
    }

    async fn destination_with_secrets() -> Destination<Option<Receiver>> {
        let receiver = Receiver::start().await;
        let block = json!({
            "url": receiver.url(),
            "apiKey": {"headerName": "X-Api-Key", "value": "contract-api-key-value"},
            "oauth2": {
                "tokenUrl": format!("http://127.0.0.1:{}/token", receiver.port),
                "clientId": "contract-client",
                "clientSecret": "contract-oauth-client-secret",
            },
        });
        Destination {
            // The receiver's token endpoint issues `token-1` first: the bearer token is a
            // secret too.
            secrets: vec![
                "contract-api-key-value".into(),
                "contract-oauth-client-secret".into(),
                "Bearer token-1".into(),
            ],
            ..Destination::real(|_| {}, block, Some(receiver))
        }
    }

    async fn arrived(inbox: &Option<Receiver>) -> Vec<Value> {
        let Some(receiver) = inbox else {
            return Vec::new();
        };
        receiver.received().iter().map(structured).collect()
    }

    fn invalid_block() -> (Value, &'static str) {
        (
            json!({"url": "http://127.0.0.1/hook", "timeoutMs": 0}),
            "webhook.timeoutMs",
        )
    }
}

/// A binary-mode request (attributes in `ce-` headers, the data as the body) as one
/// structured-mode CloudEvent.
fn structured(request: &crate::receiver::Received) -> Value {
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let ce = webhook_verify::parse_ce_headers(headers).expect("CloudEvents headers");
    let mut event = json!({
        "specversion": ce.specversion,
        "id": ce.id,
        "type": ce.r#type,
        "source": ce.source,
        "subject": ce.subject,
        "time": ce.time,
        "dataschema": ce.dataschema,
        "datacontenttype": ce.datacontenttype,
        "data": serde_json::from_slice::<Value>(&request.body).expect("a JSON body"),
    });
    for (name, value) in ce.extensions {
        event[name] = Value::String(value);
    }
    event
}
