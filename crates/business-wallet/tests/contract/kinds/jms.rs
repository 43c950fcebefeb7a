//! The JMS kind over its two transports, against the brokers of `scripts/setup/brokers.sh`:
//! STOMP to ActiveMQ (`BUSINESS_WALLET_TEST_STOMP_URL`; messages read back by the JMS suite's
//! Java consumer over `BUSINESS_WALLET_TEST_OPENWIRE_URL` with
//! `BUSINESS_WALLET_TEST_ACTIVEMQ_CLASSPATH`), and AMQP 1.0 to RabbitMQ
//! (`BUSINESS_WALLET_TEST_AMQP_URL`; read back by the JMS suite's python-qpid-proton receiver).
//! Each destination is a queue of its own.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use business_wallet::config::{JmsProtocol, Settings};
use serde_json::{json, Value};

use crate::common::setup_env;
use crate::fixture::{closed_port, silent_listener, Behaviour, Destination, KindFixture, Provoked};

/// JMS over STOMP (ActiveMQ).
pub struct Stomp;

/// JMS over AMQP 1.0 (RabbitMQ).
pub struct Amqp;

/// A queue, by its name.
pub struct Queue(String);

fn new_queue() -> Queue {
    Queue(format!("bw.contract.{}", uuid::Uuid::new_v4().simple()))
}

impl Queue {
    fn block(&self) -> Value {
        json!({ "destination": format!("queue://{}", self.0) })
    }
}

/// The broker settings of an instance: protocol, URL and credentials.
struct Broker {
    protocol: JmsProtocol,
    url: String,
    login: Option<(&'static str, &'static str)>,
}

impl Broker {
    fn stomp(url: String) -> Broker {
        Broker {
            protocol: JmsProtocol::Stomp,
            url,
            login: None,
        }
    }

    fn amqp(url: String) -> Broker {
        Broker {
            protocol: JmsProtocol::Amqp,
            url,
            login: Some(("guest", "guest")),
        }
    }

    fn settings(self) -> impl FnOnce(&mut Settings) + Send {
        move |settings| {
            let jms = &mut settings.integration.channels.jms;
            jms.enabled = true;
            jms.protocol = self.protocol;
            jms.url = self.url;
            jms.timeout_ms = 3_000;
            // RabbitMQ 3 addresses queues as /queue/NAME (ActiveMQ ignores the setting).
            jms.amqp_queue_prefix = "/queue/".into();
            if let Some((username, password)) = self.login {
                jms.username = Some(username.into());
                jms.password = Some(password.into());
            }
        }
    }

    /// A destination on a new queue of this broker.
    fn on_new_queue(self) -> Destination<Queue> {
        let queue = new_queue();
        Destination::real(self.settings(), queue.block(), queue)
    }
}

impl KindFixture for Stomp {
    const TYPE: &'static str = "JMS";
    const BLOCK_FIELD: &'static str = "jms";
    type Inbox = Queue;

    async fn destination(behaviour: Behaviour) -> Destination<Queue> {
        // Read first, whatever the behaviour: without the broker, every test of the kind fails.
        let url = setup_env("BUSINESS_WALLET_TEST_STOMP_URL");
        let activemq = || Broker::stomp(url.clone());
        match behaviour {
            Behaviour::Accepts => activemq().on_new_queue(),
            Behaviour::RefusesForNow => {
                let (port, keep) = silent_listener().await;
                let queue = new_queue();
                let block = queue.block();
                Destination {
                    provoked: Provoked::CannotBe {
                        why: "the ActiveMQ of brokers.sh takes every login and every message; its only passing \
                              refusals (a full store, a broker shutting down) cannot be caused from a test",
                        instead: "a broker that takes the connection and never answers: no receipt within the \
                                  time limit, retried",
                    },
                    keep,
                    ..Destination::real(
                        Broker::stomp(format!("stomp://127.0.0.1:{port}")).settings(),
                        block,
                        queue,
                    )
                }
            }
            Behaviour::RefusesForGood => activemq().on_new_queue().stale(
                json!({ "destination": "jms://no-longer-valid" }),
                "the ActiveMQ of brokers.sh checks no permissions and takes frames of up to 100 MB, so it \
                 refuses no message for good (its refusals are classified in the STOMP transport's unit tests)",
            ),
            Behaviour::Unreachable => Broker::stomp(format!("stomp://127.0.0.1:{}", closed_port())).on_new_queue(),
        }
    }

    async fn destination_with_secrets() -> Destination<Queue> {
        // ActiveMQ here takes any login, so a password can be set without breaking delivery.
        let broker = Broker {
            login: Some(("contract", "contract-broker-password")),
            ..Broker::stomp(setup_env("BUSINESS_WALLET_TEST_STOMP_URL"))
        };
        Destination {
            secrets: vec!["contract-broker-password".into()],
            ..broker.on_new_queue()
        }
    }

    async fn arrived(queue: &Queue) -> Vec<Value> {
        read_with_java(&queue.0).await
    }

    fn invalid_block() -> (Value, &'static str) {
        (json!({ "destination": "jms://x" }), "jms.destination")
    }
}

impl KindFixture for Amqp {
    const TYPE: &'static str = "JMS";
    const BLOCK_FIELD: &'static str = "jms";
    type Inbox = Queue;

    async fn destination(behaviour: Behaviour) -> Destination<Queue> {
        // Read first, whatever the behaviour: without the broker, every test of the kind fails.
        let url = setup_env("BUSINESS_WALLET_TEST_AMQP_URL");
        let rabbitmq = || Broker::amqp(url.clone());
        match behaviour {
            Behaviour::Accepts => rabbitmq().on_new_queue(),
            // A login the broker refuses: the instance's configuration, not the message, so the
            // attempt is retried until an operator fixes it.
            Behaviour::RefusesForNow => Broker {
                login: Some(("guest", "not-the-password")),
                ..rabbitmq()
            }
            .on_new_queue(),
            Behaviour::RefusesForGood => rabbitmq().on_new_queue().stale(
                json!({ "destination": "jms://no-longer-valid" }),
                "RabbitMQ 3.10 settles a transfer as rejected only when a queue refuses it (overflow \
                 reject-publish), which needs a queue declared with arguments or a policy: neither can be made \
                 over AMQP 1.0, and rabbitmqctl needs root",
            ),
            Behaviour::Unreachable => Broker::amqp(format!("amqp://127.0.0.1:{}", closed_port())).on_new_queue(),
        }
    }

    async fn destination_with_secrets() -> Destination<Queue> {
        // The broker's own password (RabbitMQ checks it).
        Destination {
            secrets: vec!["guest".into()],
            ..Broker::amqp(setup_env("BUSINESS_WALLET_TEST_AMQP_URL")).on_new_queue()
        }
    }

    async fn arrived(queue: &Queue) -> Vec<Value> {
        read_with_proton(&queue.0).await
    }

    fn invalid_block() -> (Value, &'static str) {
        (json!({ "destination": "queue://" }), "jms.destination")
    }
}

/// How long a reader waits for a further message before it concludes there is none.
const QUIET_SECONDS: u64 = 3;

/// Runs a reader program; its standard output, line by line.
async fn lines_of(mut command: tokio::process::Command, what: &str) -> Vec<String> {
    let output = command.output().await.unwrap_or_else(|e| panic!("{what} runs: {e}"));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed: {errors}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The JMS suite's Java consumer, compiled once for this test binary; its class directory.
fn java_classes() -> &'static Path {
    static CLASSES: OnceLock<PathBuf> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let classes = std::env::temp_dir().join(format!("bw-contract-java-{}", std::process::id()));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jms/java/ReceiveText.java");
        let compiled = std::process::Command::new("javac")
            .args(["-d".as_ref(), classes.as_os_str(), "-cp".as_ref()])
            .arg(setup_env("BUSINESS_WALLET_TEST_ACTIVEMQ_CLASSPATH"))
            .arg(source)
            .status()
            .expect("javac runs");
        assert!(compiled.success(), "the Java consumer compiles");
        classes
    })
}

/// The messages on an ActiveMQ queue, read as JMS TextMessages (each `TEXT <type> <body>`).
async fn read_with_java(queue: &str) -> Vec<Value> {
    let classpath = format!(
        "{}:{}",
        java_classes().display(),
        setup_env("BUSINESS_WALLET_TEST_ACTIVEMQ_CLASSPATH")
    );
    let mut java = tokio::process::Command::new("java");
    java.args(["-cp", &classpath, "ReceiveText"])
        .arg(setup_env("BUSINESS_WALLET_TEST_OPENWIRE_URL"))
        .args([queue, "2", &(QUIET_SECONDS * 1000).to_string()]);
    lines_of(java, "the Java JMS consumer")
        .await
        .iter()
        .map(|line| {
            let text = line
                .strip_prefix("TEXT ")
                .unwrap_or_else(|| panic!("not a TextMessage: {line}"));
            let (_type, body) = text.split_once(' ').unwrap();
            serde_json::from_str(body).unwrap()
        })
        .collect()
}

/// The messages on a RabbitMQ queue, read over AMQP 1.0 (each a JSON line whose `body` is the
/// text).
async fn read_with_proton(queue: &str) -> Vec<Value> {
    let mut url = url::Url::parse(&setup_env("BUSINESS_WALLET_TEST_AMQP_URL")).unwrap();
    url.set_username("guest").unwrap();
    url.set_password(Some("guest")).unwrap();
    let mut python = tokio::process::Command::new("python3");
    python
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jms/amqp_receive.py"))
        .args([
            url.as_str(),
            &format!("/queue/{queue}"),
            "2",
            &QUIET_SECONDS.to_string(),
        ]);
    lines_of(python, "the AMQP receiver")
        .await
        .iter()
        .map(|line| {
            let message: Value = serde_json::from_str(line).unwrap();
            serde_json::from_str(message["body"].as_str().unwrap()).unwrap()
        })
        .collect()
}
