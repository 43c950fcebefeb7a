//! What the broker fault tests need around the brokers: a Kafka-protocol broker of the test's
//! own whose records outlive the broker process (tansu over an S3 store served by moto), a TCP
//! relay in front of a shared broker that the test cuts and restores, and consumers that read
//! back what arrived (librdkafka for Kafka, STOMP for ActiveMQ, AMQP 1.0 for RabbitMQ).
//!
//! The shared brokers themselves are never stopped: other suites use them at the same time.

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A variable that `scripts/setup/brokers.sh` exports, or a clear panic naming it.
pub fn setup_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `source scripts/setup/brokers.sh` first (scripts/test.sh does)")
    })
}

/// A free port on 127.0.0.1 (bound and released; the caller binds it again at once).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_port(port: u16, what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} does not answer on 127.0.0.1:{port} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An S3 endpoint (moto's server) holding the broker's log, so that the log survives the
/// broker being killed, as a Kafka broker's log on disk does.
pub struct ObjectStore {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    child: Child,
}

impl ObjectStore {
    /// Starts moto's S3 server and creates `bucket`.
    pub async fn start(bucket: &str) -> ObjectStore {
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server starts (scripts/setup/brokers.sh installs moto)");
        let store = ObjectStore {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        tokio::task::spawn_blocking(move || wait_port(port, "moto's S3 server", Duration::from_secs(30)))
            .await
            .unwrap();
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", store.endpoint))
            .send()
            .await
            .expect("bucket request");
        assert!(
            created.status().is_success(),
            "bucket {bucket} created: {}",
            created.status()
        );
        store
    }
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tansu, a Kafka-protocol broker, on a port of the test's own with its log in `store`.
pub struct Tansu {
    /// The broker's port; a restart listens on the same one.
    pub port: u16,
    endpoint: String,
    child: Option<Child>,
}

impl Tansu {
    /// Starts tansu on a free port over `store`.
    pub fn start(store: &ObjectStore) -> Tansu {
        let mut tansu = Tansu {
            port: free_port(),
            endpoint: store.endpoint.clone(),
            child: None,
        };
        tansu.restart();
        tansu
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker (again) and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "tansu is already running");
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(setup_env("BUSINESS_WALLET_TEST_TANSU"))
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
            ])
            .args(["--storage-engine", "s3://tansu/"])
            .env("AWS_ACCESS_KEY_ID", "fault-test")
            .env("AWS_SECRET_ACCESS_KEY", "fault-test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        wait_port(self.port, "tansu", Duration::from_secs(20));
    }

    /// Creates `topic` with one partition.
    pub fn create_topic(&self, topic: &str) {
        let created = Command::new(setup_env("BUSINESS_WALLET_TEST_TANSU"))
            .args(["topic", "create", "--broker", &format!("tcp://{}", self.bootstrap())])
            .args(["--partitions", "1", topic])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("tansu topic create runs");
        assert!(created.success(), "topic {topic} created");
    }

    /// SIGSTOP: the broker stops answering, its connections open (until [`Tansu::resume`]).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Tansu::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("tansu is running");
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill {signal} tansu");
    }

    /// SIGKILL: the broker dies at once, with whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL tansu");
            child.wait().expect("tansu reaped");
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    /// The record key (the wallet's external key).
    pub key: String,
    /// The CloudEvent's `id`.
    pub ce_id: String,
    /// The CloudEvent's `walletexternalkey`.
    pub wallet: String,
}

/// Reads `topic` from the beginning until a record for each of `wallets` was seen (or 30 s
/// passed); returns every record read, duplicates included.
pub fn consume_kafka(bootstrap: &str, topic: &str, wallets: &[String]) -> Vec<Record> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("fault-test-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a Kafka consumer");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let mut missing: std::collections::HashSet<&String> = wallets.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    // After the last wanted record, read on briefly: duplicates may follow.
    let mut quiet_until: Option<Instant> = None;
    while Instant::now() < deadline && quiet_until.is_none_or(|t| Instant::now() < t) {
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = result.expect("a record");
        let value: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("a JSON CloudEvent");
        let record = Record {
            key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            ce_id: value["id"].as_str().unwrap_or_default().to_string(),
            wallet: value["walletexternalkey"].as_str().unwrap_or_default().to_string(),
        };
        missing.remove(&record.wallet);
        records.push(record);
        if missing.is_empty() && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(1));
        }
    }
    records
}

/// What a [`Relay`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMode {
    /// Passes bytes both ways.
    Forward,
    /// The broker is unreachable: new connections are reset at once.
    Cut,
    /// The broker has stopped answering: connections stay open, and what is sent either way
    /// is held (not lost) until the relay forwards again.
    Stall,
}

/// A TCP relay in front of a broker, on a port that stays the same, so that a test can cut the
/// broker off (every open connection reset, new ones refused) or make it stop answering, and
/// restore it.
pub struct Relay {
    /// The port the application connects to.
    pub port: u16,
    mode: watch::Sender<RelayMode>,
    connections: Arc<Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// A relay to `target` (`host:port`).
    pub async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = watch::channel(RelayMode::Forward).0;
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accept = tokio::spawn({
            let mode = mode.clone();
            let connections = connections.clone();
            async move {
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        return;
                    };
                    if *mode.borrow() == RelayMode::Cut {
                        reset(inbound);
                        continue;
                    }
                    let target = target.clone();
                    let mode = mode.subscribe();
                    connections.lock().unwrap().spawn(async move {
                        let Ok(outbound) = TcpStream::connect(&target).await else {
                            return;
                        };
                        let (from_client, to_client) = inbound.into_split();
                        let (from_broker, to_broker) = outbound.into_split();
                        // Either side closing ends the pair, as a proxy would.
                        tokio::select! {
                            _ = pump(from_client, to_broker, mode.clone()) => {}
                            _ = pump(from_broker, to_client, mode) => {}
                        }
                    });
                }
            }
        });
        Relay {
            port,
            mode,
            connections,
            accept,
        }
    }

    /// Cuts the broker off: open connections are dropped mid-stream, new ones reset.
    pub fn cut(&self) {
        self.mode.send_replace(RelayMode::Cut);
        // Aborting a pump drops both sockets, whatever was in flight.
        self.connections.lock().unwrap().abort_all();
    }

    /// The broker stops answering: nothing is forwarded (nor dropped) until [`Relay::restore`].
    pub fn stall(&self) {
        self.mode.send_replace(RelayMode::Stall);
    }

    /// Lets traffic through again (what a stall held goes on its way).
    pub fn restore(&self) {
        self.mode.send_replace(RelayMode::Forward);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.connections.lock().unwrap().abort_all();
    }
}

/// Copies bytes from `from` to `to`, holding them while the relay stalls.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<RelayMode>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        while *mode.borrow_and_update() == RelayMode::Stall {
            if mode.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// Closes `stream` with RST.
fn reset(stream: TcpStream) {
    // A zero linger time sends RST on close, and never blocks.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// `host:port` of a broker URL such as `stomp://127.0.0.1:61613`.
pub fn broker_address(url: &str, default_port: u16) -> String {
    let parsed = url::Url::parse(url).expect("a broker URL");
    format!(
        "{}:{}",
        parsed.host_str().expect("a host"),
        parsed.port().unwrap_or(default_port)
    )
}

/// Reads every message on an ActiveMQ queue over STOMP (straight to the broker, not through a
/// relay) until none came for `idle`; returns the `ce_id` and `ce_walletexternalkey` properties
/// of each, duplicates included.
pub async fn drain_stomp_queue(address: &str, queue: &str, idle: Duration) -> Vec<(String, String)> {
    let stream = TcpStream::connect(address).await.expect("STOMP connection to ActiveMQ");
    let mut stream = BufReader::new(stream);
    stream
        .write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0")
        .await
        .unwrap();
    let connected = read_stomp_frame(&mut stream).await.expect("CONNECTED");
    assert_eq!(connected.0, "CONNECTED", "{connected:?}");
    let subscribe = format!("SUBSCRIBE\nid:0\ndestination:/queue/{queue}\nack:auto\n\n\0");
    stream.write_all(subscribe.as_bytes()).await.unwrap();
    let mut ids = Vec::new();
    while let Ok(Some((command, headers))) = tokio::time::timeout(idle, read_stomp_frame(&mut stream)).await {
        assert_eq!(command, "MESSAGE", "{headers:?}");
        let property = |name: &str| headers.get(name).cloned().unwrap_or_default();
        ids.push((property("ce_id"), property("ce_walletexternalkey")));
    }
    let _ = stream.write_all(b"DISCONNECT\n\n\0").await;
    ids
}

/// One STOMP frame's command and headers (the body is skipped).
async fn read_stomp_frame(stream: &mut BufReader<TcpStream>) -> Option<(String, HashMap<String, String>)> {
    let mut line = String::new();
    let command = loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        // Heart-beats and the frame separator are bare EOLs.
        let text = line.trim_matches(|c| c == '\n' || c == '\r' || c == '\0');
        if !text.is_empty() {
            break text.to_string();
        }
    };
    let mut headers = HashMap::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        let text = line.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':') {
            headers.entry(name.to_string()).or_insert_with(|| value.to_string());
        }
    }
    match headers.get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(length) => {
            let mut body = vec![0u8; length + 1];
            stream.read_exact(&mut body).await.ok()?;
        }
        None => {
            let mut body = Vec::new();
            stream.read_until(0, &mut body).await.ok()?;
        }
    }
    Some((command, headers))
}

/// Reads every message on a RabbitMQ queue over AMQP 1.0 until none came for `idle`; returns
/// the `ce_id` and `ce_walletexternalkey` application properties of each, duplicates included.
pub async fn drain_amqp_queue(url: &str, address: &str, idle: Duration) -> Vec<(String, String)> {
    use fe2o3_amqp::types::messaging::Data;
    use fe2o3_amqp::types::primitives::SimpleValue;
    use fe2o3_amqp::{Connection, Receiver, Session};

    let mut url = url::Url::parse(url).unwrap();
    url.set_username("guest").unwrap();
    url.set_password(Some("guest")).unwrap();
    let mut connection = Connection::open("fault-test-reader", url.as_str())
        .await
        .expect("AMQP connection to RabbitMQ");
    let mut session = Session::begin(&mut connection).await.expect("AMQP session");
    let mut receiver = Receiver::attach(&mut session, "fault-test-reader", address)
        .await
        .expect("AMQP receiver link");
    let mut ids = Vec::new();
    while let Ok(received) = tokio::time::timeout(idle, receiver.recv::<Data>()).await {
        let delivery = received.expect("an AMQP message");
        let property = |name: &str| {
            delivery
                .message()
                .application_properties
                .as_ref()
                .and_then(|p| p.get(name))
                .map(|v| match v {
                    SimpleValue::String(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default()
        };
        let id = (property("ce_id"), property("ce_walletexternalkey"));
        receiver.accept(&delivery).await.expect("accepted");
        ids.push(id);
    }
    let _ = receiver.close().await;
    let _ = session.end().await;
    let _ = connection.close().await;
    ids
}
