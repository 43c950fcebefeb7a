//! `business-wallet listen`: a webhook receiver on this machine for trying the product out. It
//! prints every CloudEvent that arrives (attributes, then the data pretty-printed), checks
//! `X-Credenco-Signature` when it has the channel's secret, and answers with a status that can
//! be changed while it runs, to watch retries and FAILED deliveries. Given a token, it creates
//! the platform or wallet webhook channel pointing at itself, takes that channel's secret from
//! the answer, and deletes the channel again when it stops.
//!
//! Signatures and CloudEvents headers are read with the `webhook-verify` crate, the same code a
//! receiver written in Rust would use.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use webhook_verify::{parse_ce_headers, verify_now, CloudEventHeaders, SIGNATURE_HEADER};

/// The path of the control endpoint: `GET` reads the status events are answered with, `PUT`
/// with a number as the body changes it.
pub const CONTROL_PATH: &str = "/_listen/status";

/// Where `business-wallet listen` listens, what it checks and answers, and which channel it
/// creates.
#[derive(clap::Args, Debug)]
pub struct ListenArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The channel's signing secret (`whsec_...`); signatures are checked when one is given, and
    /// requests that fail the check are answered 401. Repeat (or separate with commas) during a
    /// rotation. Not needed with --create-channel, which takes the new channel's secret.
    #[arg(
        long = "secret",
        env = "BUSINESS_WALLET_WEBHOOK_SECRET",
        hide_env_values = true,
        value_delimiter = ','
    )]
    secrets: Vec<String>,
    /// Accepted age of a signature's timestamp, e.g. 5m.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    tolerance: Duration,
    /// The status events are answered with, 200 to 599 (a 5xx is retried, most 4xx fail at
    /// once). Change it while running: `curl -X PUT http://HOST:PORT/_listen/status -d 500`.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..=599))]
    status: u16,
    /// Create a webhook channel pointing at this receiver: `platform` (every wallet's events,
    /// wallet.created.v1 included; needs GLOBAL_WALLET_CRUD) or `wallet` (one wallet's events,
    /// with --wallet). It is deleted again when listen stops, unless --keep-channel.
    #[arg(long, value_enum, value_name = "SCOPE")]
    create_channel: Option<ChannelScope>,
    /// The wallet whose channel --create-channel wallet creates.
    #[arg(long, value_name = "WALLET_EXTERNAL_KEY")]
    wallet: Option<String>,
    /// Bearer token for creating and deleting the channel.
    #[arg(long, env = "BUSINESS_WALLET_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The business-wallet server the channel is created on.
    #[arg(long, env = "BUSINESS_WALLET_API", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Event types the created channel subscribes to (repeat, or separate with commas); the
    /// whole event catalog when left out.
    #[arg(long = "event-type", value_delimiter = ',')]
    event_types: Vec<String>,
    /// The URL the created channel sends to (default: http://BIND:PORT/, with 127.0.0.1 for an
    /// unspecified BIND such as 0.0.0.0).
    #[arg(long)]
    url: Option<String>,
    /// Leave the created channel in place when listen stops.
    #[arg(long)]
    keep_channel: bool,
}

/// Which kind of channel `--create-channel` makes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelScope {
    /// A platform channel: the events of every wallet.
    Platform,
    /// A channel of one wallet (`--wallet`).
    Wallet,
}

/// A channel this run created, to delete when it stops.
struct Created {
    /// The channel's route, `{api}/api/.../integration-channels/{key}`.
    url: String,
    key: String,
}

/// What the receiver shares between requests.
struct Receiver {
    secrets: Vec<String>,
    tolerance: Duration,
    status: AtomicU16,
    requests: AtomicU64,
    /// How often each CloudEvent `id` arrived: a retry or a replay comes with the same one.
    seen: Mutex<HashMap<String, u32>>,
}

/// Runs the receiver until Ctrl-C or SIGTERM.
///
/// # Errors
/// The address cannot be bound, or the channel cannot be created (the server's answer is shown).
pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let address = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr()?;
    let url_host = if local.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        local.ip()
    };
    let own_url = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}/", SocketAddr::new(url_host, local.port())));

    let mut secrets = args.secrets.clone();
    secrets.retain(|s| !s.trim().is_empty());
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    let created = match args.create_channel {
        Some(scope) => {
            let (created, secret) = create_channel(&client, &args, scope, &own_url, local).await?;
            secrets.insert(0, secret);
            Some(created)
        }
        None => None,
    };

    let receiver = Arc::new(Receiver {
        secrets,
        tolerance: args.tolerance,
        status: AtomicU16::new(args.status),
        requests: AtomicU64::new(0),
        seen: Mutex::new(HashMap::new()),
    });
    let checking = if receiver.secrets.is_empty() {
        "signatures are not checked (give --secret or BUSINESS_WALLET_WEBHOOK_SECRET)".to_string()
    } else {
        format!(
            "signatures are checked with {} secret{}",
            receiver.secrets.len(),
            if receiver.secrets.len() == 1 { "" } else { "s" }
        )
    };
    let control = format!("http://{}{CONTROL_PATH}", SocketAddr::new(url_host, local.port()));
    say(&format!(
        "listening on {own_url} (answering {}; {checking})\n  to answer 500 from now on: curl -X PUT {control} -d 500\n",
        args.status
    ));

    let app = Router::new()
        .route(CONTROL_PATH, get(read_status).put(change_status))
        .fallback(receive)
        .with_state(receiver);
    let served = axum::serve(listener, app).with_graceful_shutdown(stop_signal()).await;

    if let Some(created) = created {
        if args.keep_channel {
            say(&format!("channel {} kept\n", created.key));
        } else {
            delete_channel(&client, &args, &created).await;
        }
    }
    served.context("the receiver stopped")
}

/// Creates the channel and returns it with its signing secret.
async fn create_channel(
    client: &reqwest::Client,
    args: &ListenArgs,
    scope: ChannelScope,
    own_url: &str,
    local: SocketAddr,
) -> anyhow::Result<(Created, String)> {
    let Some(token) = args.token.as_deref().filter(|t| !t.trim().is_empty()) else {
        bail!("--create-channel needs a bearer token: --token (or BUSINESS_WALLET_TOKEN)");
    };
    let api = args.api.trim_end_matches('/');
    let collection = match (scope, args.wallet.as_deref()) {
        (ChannelScope::Platform, None) => format!("{api}/api/integration-channels"),
        (ChannelScope::Platform, Some(_)) => {
            bail!("--wallet applies to --create-channel wallet; a platform channel receives every wallet's events")
        }
        (ChannelScope::Wallet, Some(wallet)) => format!("{api}/api/wallets/{wallet}/integration-channels"),
        (ChannelScope::Wallet, None) => bail!("--create-channel wallet needs --wallet WALLET_EXTERNAL_KEY"),
    };
    let event_types = if args.event_types.is_empty() {
        catalog(client, api).await?
    } else {
        args.event_types.clone()
    };
    let name = format!(
        "business-wallet listen {local} {}",
        humantime::format_rfc3339_seconds(SystemTime::now())
    );
    let body = json!({
        "name": name,
        "description": "Created by `business-wallet listen`, deleted when it stops.",
        "type": "WEBHOOK",
        "eventTypeFilters": event_types,
        "webhook": {"url": own_url},
    });
    let response = client
        .post(&collection)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach the business-wallet API at {api} (--api)"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if status != StatusCode::CREATED {
        let message = answer["message"]
            .as_str()
            .map_or_else(|| answer.to_string(), str::to_string);
        bail!("creating the channel was refused: {status}: {message}");
    }
    let (Some(key), Some(secret)) = (answer["channelExternalKey"].as_str(), answer["hmacSecret"].as_str()) else {
        bail!("the answer to creating the channel has no channelExternalKey or hmacSecret: {answer}");
    };
    let scope_name = match scope {
        ChannelScope::Platform => "platform".to_string(),
        ChannelScope::Wallet => format!("wallet {}", args.wallet.as_deref().unwrap_or_default()),
    };
    say(&format!(
        "created {scope_name} channel {key} -> {own_url}\n  events: {}\n  secret: {secret} (signatures are checked with it)\n",
        event_types.join(", ")
    ));
    Ok((
        Created {
            url: format!("{collection}/{key}"),
            key: key.to_string(),
        },
        secret.to_string(),
    ))
}

/// Every event type of the server's public catalog.
async fn catalog(client: &reqwest::Client, api: &str) -> anyhow::Result<Vec<String>> {
    let url = format!("{api}/api/public/event-types");
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the business-wallet API at {api} (--api)"))?;
    if !response.status().is_success() {
        bail!("reading the event catalog ({url}) answered {}", response.status());
    }
    let types: Vec<Value> = response.json().await.context("the event catalog is not a JSON list")?;
    let types: Vec<String> = types
        .iter()
        .filter_map(|t| t["type"].as_str().map(str::to_string))
        .collect();
    if types.is_empty() {
        bail!("the event catalog at {url} is empty");
    }
    Ok(types)
}

async fn delete_channel(client: &reqwest::Client, args: &ListenArgs, created: &Created) {
    let token = args.token.as_deref().unwrap_or_default();
    match client.delete(&created.url).bearer_auth(token).send().await {
        Ok(response) if response.status().is_success() => say(&format!("channel {} deleted\n", created.key)),
        Ok(response) => say(&format!(
            "could not delete channel {}: {}\n",
            created.key,
            response.status()
        )),
        Err(err) => say(&format!("could not delete channel {}: {err}\n", created.key)),
    }
}

/// Ctrl-C, or SIGTERM (what `kill` sends).
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Writes one whole block to stdout at once, so that concurrent requests do not interleave.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

async fn read_status(State(receiver): State<Arc<Receiver>>) -> String {
    format!("answering {}\n", receiver.status.load(Ordering::SeqCst))
}

async fn change_status(State(receiver): State<Arc<Receiver>>, body: String) -> Response {
    match body.trim().parse::<u16>() {
        Ok(status) if (200..=599).contains(&status) => {
            receiver.status.store(status, Ordering::SeqCst);
            say(&format!("\n--- from now on answering {status} ---\n"));
            format!("answering {status}\n").into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            format!("the body must be a status from 200 to 599, not `{}`\n", body.trim()),
        )
            .into_response(),
    }
}

/// One request: check the signature on the raw body, read the CloudEvent (binary or structured
/// mode), print it, answer.
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "business-wallet listen: POST CloudEvents here\n",
        )
            .into_response();
    }
    let number = receiver.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let structured = content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/cloudevents+json"));
    let signature = check_signature(&receiver, &headers, &body);
    let event = if structured {
        read_structured(&body)
    } else {
        parse_ce_headers(headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes())))
            .map(|attributes| (attributes, data_of(&body)))
            .map_err(|err| err.to_string())
    };

    // The leading line break keeps the block apart from a shell's output without one (curl's).
    let mut block = format!(
        "\n--- #{number} {method} {uri} at {} ({} mode) ---\n",
        humantime::format_rfc3339_seconds(SystemTime::now()),
        if structured { "structured" } else { "binary" }
    );
    let status = match &event {
        Ok((attributes, data)) => {
            write_attributes(&mut block, attributes);
            let seen = {
                let mut seen = receiver.seen.lock().expect("the seen-ids lock is never poisoned");
                let count = seen.entry(attributes.id.clone()).or_insert(0);
                *count += 1;
                *count
            };
            line(&mut block, "signature", &signature.describe());
            if seen > 1 {
                line(
                    &mut block,
                    "seen before",
                    &format!("arrival {seen} of this id (a retry or a replay)"),
                );
            }
            block.push_str("  data:\n");
            for text in data.lines() {
                let _ = writeln!(block, "    {text}");
            }
            if signature.refused() {
                StatusCode::UNAUTHORIZED
            } else {
                answer_status(&receiver)
            }
        }
        Err(problem) => {
            line(&mut block, "not a CloudEvent", problem);
            line(&mut block, "signature", &signature.describe());
            block.push_str("  body:\n");
            for text in data_of(&body).lines() {
                let _ = writeln!(block, "    {text}");
            }
            if signature.refused() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            }
        }
    };
    line(&mut block, "answered", status.as_str());
    say(&block);
    let reason = match status.as_u16() {
        401 => format!("signature {}", signature.describe()),
        400 => "not a CloudEvent".to_string(),
        code => format!("answered {code} as asked"),
    };
    (status, format!("business-wallet listen: {reason}\n")).into_response()
}

fn answer_status(receiver: &Receiver) -> StatusCode {
    StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
}

/// What the signature check found.
enum Signature {
    /// No secret was given.
    NotChecked(bool),
    Verified {
        timestamp: i64,
        secret: usize,
    },
    Failed(String),
}

impl Signature {
    fn refused(&self) -> bool {
        matches!(self, Signature::Failed(_))
    }

    fn describe(&self) -> String {
        match self {
            Signature::NotChecked(present) => format!(
                "not checked (no secret given{})",
                if *present {
                    ""
                } else {
                    "; the request has no X-Credenco-Signature either"
                }
            ),
            Signature::Verified { timestamp, secret } => {
                let at = u64::try_from(*timestamp)
                    .map(|t| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string())
                    .unwrap_or_else(|_| timestamp.to_string());
                format!("verified (signed at {at} with secret #{})", secret + 1)
            }
            Signature::Failed(reason) => format!("FAILED: {reason}"),
        }
    }
}

fn check_signature(receiver: &Receiver, headers: &HeaderMap, body: &[u8]) -> Signature {
    let header = headers.get(SIGNATURE_HEADER);
    if receiver.secrets.is_empty() {
        return Signature::NotChecked(header.is_some());
    }
    let Some(header) = header else {
        return Signature::Failed(format!("the request has no {SIGNATURE_HEADER} header"));
    };
    let Ok(header) = header.to_str() else {
        return Signature::Failed(format!("the {SIGNATURE_HEADER} header is not text"));
    };
    let keys: Vec<&[u8]> = receiver.secrets.iter().map(|s| s.as_bytes()).collect();
    match verify_now(header, body, &keys, receiver.tolerance) {
        Ok(verified) => Signature::Verified {
            timestamp: verified.timestamp,
            secret: verified.secret_index,
        },
        Err(err) => Signature::Failed(err.to_string()),
    }
}

/// A structured-mode event: the attributes and the data in one JSON object.
fn read_structured(body: &[u8]) -> Result<(CloudEventHeaders, String), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err("the body is not a JSON object".into());
    };
    let mut text = |name: &'static str| -> Option<String> {
        object.remove(name).map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    };
    let mut required = |name: &'static str| -> Result<String, String> {
        text(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("required attribute `{name}` is missing or empty"))
    };
    let id = required("id")?;
    let source = required("source")?;
    let specversion = required("specversion")?;
    let r#type = required("type")?;
    let subject = text("subject");
    let time = text("time");
    let dataschema = text("dataschema");
    let datacontenttype = text("datacontenttype");
    let data = match (object.remove("data"), object.remove("data_base64")) {
        (Some(data), _) => pretty(&data),
        (None, Some(encoded)) => format!("(base64) {}", encoded.as_str().unwrap_or_default()),
        (None, None) => "(no data)".to_string(),
    };
    let extensions = object
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (name, value)
        })
        .collect();
    Ok((
        CloudEventHeaders {
            id,
            source,
            specversion,
            r#type,
            subject,
            time,
            dataschema,
            datacontenttype,
            extensions,
        },
        data,
    ))
}

/// The body as it is best read: pretty JSON, else the text, else its size.
fn data_of(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty)".into();
    }
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return pretty(&value);
    }
    match std::str::from_utf8(body) {
        Ok(text) => text.to_string(),
        Err(_) => format!("({} bytes, not text)", body.len()),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn write_attributes(block: &mut String, event: &CloudEventHeaders) {
    line(block, "id", &event.id);
    line(block, "type", &event.r#type);
    line(block, "source", &event.source);
    let optional = [
        ("subject", &event.subject),
        ("time", &event.time),
        ("datacontenttype", &event.datacontenttype),
        ("dataschema", &event.dataschema),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            line(block, name, value);
        }
    }
    line(block, "specversion", &event.specversion);
    for (name, value) in &event.extensions {
        line(block, name, value);
    }
}

fn line(block: &mut String, name: &str, value: &str) {
    let _ = writeln!(block, "  {:<18} {value}", format!("{name}:"));
}

#[cfg(test)]
mod tests;
