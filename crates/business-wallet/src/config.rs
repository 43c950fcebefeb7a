//! Settings: one typed tree, layered from built-in defaults, an optional TOML file and
//! `BW_`-prefixed environment variables (nested keys joined with `__`, for example
//! `BW_DATABASE__URL`), then validated once at start.
//!
//! No other module reads the environment: everything configurable arrives through
//! [`Settings`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The file read when `--config` is not given and the file exists in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "business-wallet.toml";

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "BW_";

/// A setting that could not be loaded or does not make sense. The message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be parsed into the settings tree.
    #[error("configuration could not be loaded: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value parsed but is not acceptable.
    #[error("invalid setting `{setting}`: {message}")]
    Invalid {
        /// Dotted path of the setting, e.g. `database.url`.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// Where the product runs: it decides which channel types may exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DeploymentMode {
    /// Multi-tenant service: webhooks only, `https` only.
    Saas,
    /// Installed by the customer: channel types switched by configuration.
    #[default]
    OnPremise,
}

/// The whole settings tree. Every field has a default, so an empty configuration is valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Directory for the embedded database and the generated keys.
    pub data_dir: PathBuf,
    /// `on-premise` (default) or `saas`.
    pub mode: DeploymentMode,
    /// Base URL under which this service is reachable from outside; used in `dataschema`.
    /// Defaults to `http://{server.listen}`.
    pub public_base_url: Option<String>,
    /// HTTP server.
    pub server: ServerSettings,
    /// Database connection.
    pub database: DatabaseSettings,
    /// Bearer token validation.
    pub auth: AuthSettings,
    /// Encryption of secrets and private keys at rest.
    pub secrets: SecretSettings,
    /// Integration channels and delivery.
    pub integration: IntegrationSettings,
    /// Logging.
    pub log: LogSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./data"),
            mode: DeploymentMode::default(),
            public_base_url: None,
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            auth: AuthSettings::default(),
            secrets: SecretSettings::default(),
            integration: IntegrationSettings::default(),
            log: LogSettings::default(),
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port.
    pub listen: String,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Serve the HTTP API and UI on this instance.
    pub api_enabled: bool,
    /// Run the delivery dispatcher on this instance.
    pub dispatcher_enabled: bool,
    /// Seconds to wait for in-flight requests on shutdown.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 64 * 1024,
            api_enabled: true,
            dispatcher_enabled: true,
            shutdown_grace_secs: 10,
        }
    }
}

/// Database settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`. Defaults to a SQLite file in
    /// `data_dir`.
    pub url: Option<String>,
    /// Upper bound of pooled connections for the API (readers, on SQLite).
    pub max_connections: u32,
    /// PostgreSQL: connections of the dispatcher's own pool, next to the API's, so that
    /// delivery never waits for a connection behind API requests.
    pub dispatcher_connections: u32,
    /// How long a SQLite statement waits for a lock before failing, in milliseconds.
    pub busy_timeout_ms: u64,
    /// Run migrations when `serve` starts.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            max_connections: 10,
            dispatcher_connections: 4,
            busy_timeout_ms: 5_000,
            migrate_on_start: true,
        }
    }
}

/// Bearer JWT validation.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// JWKS endpoint (RS256/ES256 keys). When unset, a local HS256 key is used.
    pub jwks_url: Option<String>,
    /// Seconds a fetched key set is trusted before it is fetched again (default 300).
    pub jwks_refresh_secs: Option<u64>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// File holding the local HS256 key. Defaults to `{data_dir}/jwt-hs256.key`.
    pub local_key_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 30).
    pub leeway_secs: Option<u64>,
}

/// Encryption at rest.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecretSettings {
    /// Base64 of a 32-byte AES-256-GCM key. When unset, a key is generated into `key_file`.
    pub encryption_key: Option<String>,
    /// File holding the generated key. Defaults to `{data_dir}/secret-encryption.key`.
    pub key_file: Option<PathBuf>,
}

/// Integration channels and delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationSettings {
    /// Per-type switches.
    pub channels: ChannelSwitches,
    /// Attempts per delivery before it is FAILED (stored on each delivery when it is created;
    /// the back-off between attempts is `integration.retry`).
    pub max_attempts: u32,
    /// Networks (CIDR) that webhook URLs may point at despite the SSRF gate (on-premise only).
    pub allowed_networks: Vec<String>,
    /// How long the previous HMAC secret keeps signing after a rotation, in seconds.
    pub secret_rotation_grace_secs: u64,
    /// Back-off between attempts.
    pub retry: RetrySettings,
    /// The dispatcher: claiming, leases, concurrency.
    pub dispatch: DispatchSettings,
    /// Webhook requests.
    pub webhook: WebhookSettings,
    /// Clean-up of old deliveries.
    pub retention: RetentionSettings,
}

/// How long finished deliveries are kept. DISMISSED deliveries are always kept: an operator
/// decided about them, and they are the record of that decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days a DELIVERED delivery (with its attempts) is kept after its last change.
    pub delivered_days: u32,
    /// Days a FAILED delivery is kept after its last change.
    pub failed_days: u32,
    /// Seconds between two clean-up runs (on instances that run the dispatcher).
    pub interval_secs: u64,
    /// Most deliveries removed by one statement, so a run never holds long locks.
    pub batch_size: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            delivered_days: 7,
            failed_days: 30,
            interval_secs: 3600,
            batch_size: 1000,
        }
    }
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        IntegrationSettings {
            channels: ChannelSwitches::default(),
            max_attempts: 15,
            allowed_networks: Vec::new(),
            secret_rotation_grace_secs: 3600,
            retry: RetrySettings::default(),
            dispatch: DispatchSettings::default(),
            webhook: WebhookSettings::default(),
            retention: RetentionSettings::default(),
        }
    }
}

/// Exponential back-off with jitter. The delay after attempt `n` is
/// `base_delay_ms * 2^(n-1)`, capped at `max_delay_ms`, then moved by up to `jitter` of itself
/// either way. With the defaults (15 attempts, 30 s, 4 h) the fourteen waits add up to
/// 87 330 s, about 24 hours, before jitter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Delay after the first failed attempt, in milliseconds; also the least a `Retry-After`
    /// can ask for.
    pub base_delay_ms: u64,
    /// Longest delay between two attempts, in milliseconds; also the most a `Retry-After`
    /// can ask for.
    pub max_delay_ms: u64,
    /// Fraction (0 to 1) by which a delay is randomly shortened or lengthened, so that
    /// receivers recovering from an outage are not hit by every retry at once.
    pub jitter: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            base_delay_ms: 30_000,
            max_delay_ms: 4 * 3600 * 1000,
            jitter: 0.2,
        }
    }
}

/// The dispatcher's claim loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchSettings {
    /// How long a claimed delivery belongs to this instance, in seconds. A delivery whose
    /// dispatcher died is claimed again after this; keep it well above the webhook timeout.
    pub lease_secs: u64,
    /// Safety-net poll when no wake-up arrives, in milliseconds.
    pub poll_interval_ms: u64,
    /// Most deliveries claimed by one statement, and most in flight on this instance.
    pub batch_size: u32,
    /// Most deliveries in flight to one channel on this instance, so one slow receiver cannot
    /// hold every slot.
    pub max_in_flight_per_channel: u32,
    /// Longest stored excerpt of a response body, in bytes.
    pub response_excerpt_bytes: usize,
    /// On shutdown, how long in-flight deliveries may finish before their leases are released,
    /// in milliseconds.
    pub shutdown_grace_ms: u64,
    /// An instance whose dispatcher has not said it is alive for this long, in seconds, counts
    /// as dead: another instance gives its in-flight deliveries back at once. Dispatchers say
    /// so every fifth of this time.
    pub instance_timeout_secs: u64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            lease_secs: 300,
            poll_interval_ms: 5_000,
            batch_size: 64,
            max_in_flight_per_channel: 8,
            response_excerpt_bytes: 4096,
            shutdown_grace_ms: 5_000,
            instance_timeout_secs: 10,
        }
    }
}

/// Webhook requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Total request timeout when a channel sets no `timeoutMs`, in milliseconds.
    pub default_timeout_ms: u64,
    /// Largest `timeoutMs` a channel may set, in milliseconds.
    pub max_timeout_ms: u64,
    /// Time allowed to open the TCP and TLS connection, in milliseconds.
    pub connect_timeout_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            default_timeout_ms: 10_000,
            max_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
        }
    }
}

/// Which built-in channel types exist in an on-premise deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSwitches {
    /// Webhook channels.
    pub webhook: Switch,
    /// Kafka channels and the producer they share.
    pub kafka: KafkaSettings,
    /// JMS channels and the broker connection they use.
    pub jms: JmsSettings,
}

impl Default for ChannelSwitches {
    fn default() -> Self {
        ChannelSwitches {
            webhook: Switch { enabled: true },
            kafka: KafkaSettings::default(),
            jms: JmsSettings::default(),
        }
    }
}

/// The Kafka cluster that every Kafka channel of this instance publishes to (a channel only
/// names its topic).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Whether Kafka channels are on offer (needs the `kafka` Cargo feature).
    pub enabled: bool,
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// The producer's `client.id`, as brokers log and meter it.
    pub client_id: String,
    /// How long the producer keeps trying one record before the attempt is retried later, in
    /// milliseconds (librdkafka's `message.timeout.ms`). Must stay below the dispatcher lease.
    pub message_timeout_ms: u64,
    /// Further librdkafka producer properties, passed through unchanged: security protocol,
    /// SASL and TLS settings, and the like. Properties the channel sets itself are refused.
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            enabled: false,
            bootstrap_servers: String::new(),
            client_id: "business-wallet".into(),
            message_timeout_ms: 30_000,
            properties: std::collections::BTreeMap::new(),
        }
    }
}

/// Producer properties the Kafka channel sets itself; `properties` may not replace them.
pub const KAFKA_FIXED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "partitioner",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

/// The JMS broker that every JMS channel of this instance sends to (a channel only names its
/// destination).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JmsSettings {
    /// Whether JMS channels are on offer (needs the `jms` Cargo feature).
    pub enabled: bool,
    /// The wire protocol: `stomp` (ActiveMQ Classic, Artemis) or `amqp` (AMQP 1.0: Artemis,
    /// ActiveMQ, IBM MQ, RabbitMQ).
    pub protocol: JmsProtocol,
    /// The broker address: `stomp://host:port` (default port 61613) for STOMP,
    /// `amqp://host:port` (default port 5672) or `amqps://...` for AMQP 1.0.
    pub url: String,
    /// User name to log in with, if the broker wants one.
    pub username: Option<String>,
    /// Password to log in with.
    pub password: Option<String>,
    /// Mark messages so that a JMS consumer reads a `TextMessage`: ActiveMQ's
    /// `amq-msg-type: text` header over STOMP, the AMQP JMS mapping's message annotations over
    /// AMQP. Turn off for brokers that do not understand them (IBM MQ).
    pub jms_mapping: bool,
    /// Time allowed for connecting and for the broker to confirm one message, in milliseconds.
    pub timeout_ms: u64,
    /// AMQP only: put before a queue's name to make its target address (like Qpid JMS's
    /// `jms.queuePrefix`), e.g. `/queue/` for RabbitMQ 3.
    pub amqp_queue_prefix: String,
    /// AMQP only: put before a topic's name to make its target address, e.g. `/topic/`.
    pub amqp_topic_prefix: String,
}

impl Default for JmsSettings {
    fn default() -> Self {
        JmsSettings {
            enabled: false,
            protocol: JmsProtocol::Stomp,
            url: String::new(),
            username: None,
            password: None,
            jms_mapping: true,
            timeout_ms: 10_000,
            amqp_queue_prefix: String::new(),
            amqp_topic_prefix: String::new(),
        }
    }
}

/// How the JMS channel talks to its broker.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JmsProtocol {
    /// STOMP 1.2.
    Stomp,
    /// AMQP 1.0.
    Amqp,
}

/// An on/off switch.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Switch {
    /// Whether the feature is on.
    pub enabled: bool,
}

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `json` (default) or `pretty`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `business_wallet=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// The database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Settings {
    /// Loads settings from defaults, the TOML file (the given one, which must exist, or
    /// `business-wallet.toml` when present) and the process environment, then validates them.
    ///
    /// # Errors
    /// A file that does not parse, a value of the wrong type, an unknown key, or a value that
    /// fails validation; the error names the setting.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match config_file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Invalid {
                        setting: "--config",
                        message: format!("file {} does not exist", path.display()),
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                if Path::new(DEFAULT_CONFIG_FILE).exists() {
                    figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
                }
            }
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that parse but cannot work.
    ///
    /// # Errors
    /// The first invalid setting, by name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting: &'static str, message: String| ConfigError::Invalid { setting, message };
        self.server.listen.parse::<SocketAddr>().map_err(|e| {
            invalid(
                "server.listen",
                format!("`{}` is not host:port ({e})", self.server.listen),
            )
        })?;
        if self.server.body_limit_bytes < 1024 {
            return Err(invalid("server.body_limit_bytes", "must be at least 1024".into()));
        }
        if !self.server.api_enabled && !self.server.dispatcher_enabled {
            return Err(invalid(
                "server.api_enabled",
                "an instance must run the API, the dispatcher, or both".into(),
            ));
        }
        if let Some(url) = &self.database.url {
            backend_of(url).ok_or_else(|| {
                invalid(
                    "database.url",
                    "must start with sqlite:, postgres:// or postgresql://".into(),
                )
            })?;
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1".into()));
        }
        if self.database.dispatcher_connections < 2 {
            return Err(invalid(
                "database.dispatcher_connections",
                "must be at least 2 (claims and outcomes each need one)".into(),
            ));
        }
        if let Some(base) = &self.public_base_url {
            let parsed = url::Url::parse(base)
                .map_err(|e| invalid("public_base_url", format!("`{base}` is not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid("public_base_url", "must be an http or https URL".into()));
            }
        }
        if let Some(jwks) = &self.auth.jwks_url {
            url::Url::parse(jwks).map_err(|e| invalid("auth.jwks_url", format!("`{jwks}` is not a URL ({e})")))?;
        }
        if let Some(key) = &self.secrets.encryption_key {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .map_err(|_| invalid("secrets.encryption_key", "must be base64".into()))?;
            if bytes.len() != 32 {
                return Err(invalid(
                    "secrets.encryption_key",
                    "must decode to exactly 32 bytes".into(),
                ));
            }
        }
        if self.integration.max_attempts == 0 {
            return Err(invalid("integration.max_attempts", "must be at least 1".into()));
        }
        self.validate_delivery()?;
        self.validate_brokers()?;
        if self.mode == DeploymentMode::Saas
            && (self.integration.channels.kafka.enabled || self.integration.channels.jms.enabled)
        {
            return Err(invalid(
                "integration.channels",
                "Kafka and JMS channels exist only in on-premise mode".into(),
            ));
        }
        for net in &self.integration.allowed_networks {
            if !is_cidr(net) {
                return Err(invalid(
                    "integration.allowed_networks",
                    format!("`{net}` is not a CIDR network"),
                ));
            }
        }
        if self.mode == DeploymentMode::Saas && !self.integration.allowed_networks.is_empty() {
            return Err(invalid(
                "integration.allowed_networks",
                "exceptions to the SSRF gate are allowed only in on-premise mode".into(),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", format!("`{}` is not a log filter ({e})", self.log.level)))?;
        Ok(())
    }

    /// Checks the retry, dispatch and webhook settings.
    fn validate_delivery(&self) -> Result<(), ConfigError> {
        let invalid = |setting: &'static str, message: &str| {
            Err(ConfigError::Invalid {
                setting,
                message: message.into(),
            })
        };
        let integration = &self.integration;
        if integration.retention.interval_secs == 0 {
            return invalid("integration.retention.interval_secs", "must be at least 1");
        }
        if integration.retention.batch_size == 0 {
            return invalid("integration.retention.batch_size", "must be at least 1");
        }
        if integration.retry.base_delay_ms == 0 {
            return invalid("integration.retry.base_delay_ms", "must be at least 1");
        }
        if integration.retry.max_delay_ms < integration.retry.base_delay_ms {
            return invalid(
                "integration.retry.max_delay_ms",
                "must be at least integration.retry.base_delay_ms",
            );
        }
        if !(0.0..=1.0).contains(&integration.retry.jitter) {
            return invalid("integration.retry.jitter", "must be between 0 and 1");
        }
        let dispatch = &integration.dispatch;
        if dispatch.batch_size == 0 {
            return invalid("integration.dispatch.batch_size", "must be at least 1");
        }
        if dispatch.max_in_flight_per_channel == 0 {
            return invalid("integration.dispatch.max_in_flight_per_channel", "must be at least 1");
        }
        if dispatch.poll_interval_ms == 0 {
            return invalid("integration.dispatch.poll_interval_ms", "must be at least 1");
        }
        if dispatch.instance_timeout_secs < 2 || dispatch.instance_timeout_secs > dispatch.lease_secs {
            return invalid(
                "integration.dispatch.instance_timeout_secs",
                "must be at least 2 and at most integration.dispatch.lease_secs",
            );
        }
        let webhook = &integration.webhook;
        if webhook.default_timeout_ms == 0 || webhook.default_timeout_ms > webhook.max_timeout_ms {
            return invalid(
                "integration.webhook.default_timeout_ms",
                "must be between 1 and integration.webhook.max_timeout_ms",
            );
        }
        if webhook.connect_timeout_ms == 0 {
            return invalid("integration.webhook.connect_timeout_ms", "must be at least 1");
        }
        // A lease shorter than a request (plus the OAuth2 token fetch and a retry after a 401)
        // would let a second dispatcher send the same delivery while the first still waits.
        if dispatch.lease_secs.saturating_mul(1000) < webhook.max_timeout_ms.saturating_mul(3) {
            return invalid(
                "integration.dispatch.lease_secs",
                "must be at least three times integration.webhook.max_timeout_ms",
            );
        }
        Ok(())
    }

    /// Checks the Kafka and JMS settings of the types that are switched on.
    fn validate_brokers(&self) -> Result<(), ConfigError> {
        let invalid = |setting: &'static str, message: String| Err(ConfigError::Invalid { setting, message });
        let lease_ms = self.integration.dispatch.lease_secs.saturating_mul(1000);
        let kafka = &self.integration.channels.kafka;
        if kafka.enabled && !cfg!(feature = "kafka") {
            return invalid(
                "integration.channels.kafka.enabled",
                "this build has no Kafka support (Cargo feature `kafka`)".into(),
            );
        }
        if kafka.enabled {
            if kafka.bootstrap_servers.trim().is_empty() {
                return invalid(
                    "integration.channels.kafka.bootstrap_servers",
                    "must list at least one host:port when Kafka channels are enabled".into(),
                );
            }
            if kafka.message_timeout_ms == 0 || kafka.message_timeout_ms.saturating_mul(2) > lease_ms {
                return invalid(
                    "integration.channels.kafka.message_timeout_ms",
                    "must be at least 1 and at most half of integration.dispatch.lease_secs".into(),
                );
            }
            if let Some(key) = kafka
                .properties
                .keys()
                .find(|k| KAFKA_FIXED_PROPERTIES.contains(&k.as_str()))
            {
                return invalid(
                    "integration.channels.kafka.properties",
                    format!("`{key}` is set by the channel itself"),
                );
            }
        }
        let jms = &self.integration.channels.jms;
        if jms.enabled && !cfg!(feature = "jms") {
            return invalid(
                "integration.channels.jms.enabled",
                "this build has no JMS support (Cargo feature `jms`)".into(),
            );
        }
        if jms.enabled {
            let (scheme, schemes): (&str, &[&str]) = match jms.protocol {
                JmsProtocol::Stomp => ("stomp", &["stomp"]),
                JmsProtocol::Amqp => ("amqp", &["amqp", "amqps"]),
            };
            let parsed = url::Url::parse(&jms.url);
            let fits = parsed.as_ref().is_ok_and(|u| {
                schemes.contains(&u.scheme())
                    && u.host_str().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
            });
            if !fits {
                return invalid(
                    "integration.channels.jms.url",
                    format!("must be a {scheme}://host:port URL for protocol `{scheme}` (credentials go in username and password)"),
                );
            }
            if jms.password.is_some() && jms.username.is_none() {
                return invalid(
                    "integration.channels.jms.username",
                    "must be set when integration.channels.jms.password is".into(),
                );
            }
            if jms.timeout_ms == 0 || jms.timeout_ms.saturating_mul(2) > lease_ms {
                return invalid(
                    "integration.channels.jms.timeout_ms",
                    "must be at least 1 and at most half of integration.dispatch.lease_secs".into(),
                );
            }
        }
        Ok(())
    }

    /// The database URL in effect: the configured one or the embedded default.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("business-wallet.db").display()),
        }
    }

    /// The backend that [`Settings::database_url`] selects.
    pub fn backend(&self) -> Backend {
        backend_of(&self.database_url()).unwrap_or(Backend::Sqlite)
    }

    /// Base URL used in `dataschema` and links.
    pub fn public_base_url(&self) -> String {
        match &self.public_base_url {
            Some(base) => base.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.server.listen),
        }
    }

    /// File of the local HS256 token key.
    pub fn local_key_file(&self) -> PathBuf {
        self.auth
            .local_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("jwt-hs256.key"))
    }

    /// File of the generated secret-encryption key.
    pub fn secret_key_file(&self) -> PathBuf {
        self.secrets
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret-encryption.key"))
    }
}

fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

fn is_cidr(net: &str) -> bool {
    let (addr, len) = match net.split_once('/') {
        Some(parts) => parts,
        None => return false,
    };
    match (addr.parse::<std::net::IpAddr>(), len.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(l)) => l <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(l)) => l <= 128,
        _ => false,
    }
}

#[cfg(test)]
// figment's test jail returns its own large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_is_the_embedded_default() {
        let settings = Settings::default();
        settings.validate().unwrap();
        assert_eq!(settings.backend(), Backend::Sqlite);
        assert_eq!(settings.server.listen, "127.0.0.1:8080");
        assert!(settings.database_url().ends_with("business-wallet.db"));
        assert_eq!(settings.mode, DeploymentMode::OnPremise);
    }

    #[test]
    fn errors_name_the_setting() {
        let mut settings = Settings::default();
        settings.database.url = Some("mysql://x".into());
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("database.url"), "{err}");

        let mut settings = Settings::default();
        settings.server.listen = "nowhere".into();
        assert!(settings.validate().unwrap_err().to_string().contains("server.listen"));

        let mut settings = Settings::default();
        settings.secrets.encryption_key = Some("c2hvcnQ=".into());
        assert!(settings
            .validate()
            .unwrap_err()
            .to_string()
            .contains("secrets.encryption_key"));
    }

    #[test]
    fn broker_settings_are_checked_when_switched_on() {
        let check = |adjust: &dyn Fn(&mut Settings)| {
            let mut settings = Settings::default();
            adjust(&mut settings);
            settings.validate().err().map(|e| e.to_string()).unwrap_or_default()
        };
        // Switched off, nothing else is needed.
        assert_eq!(check(&|_| {}), "");
        let kafka = |s: &mut Settings| {
            s.integration.channels.kafka.enabled = true;
            s.integration.channels.kafka.bootstrap_servers = "127.0.0.1:9092".into();
        };
        assert_eq!(check(&kafka), "");
        let err = check(&|s| s.integration.channels.kafka.enabled = true);
        assert!(err.contains("integration.channels.kafka.bootstrap_servers"), "{err}");
        let err = check(&|s| {
            kafka(s);
            s.integration.channels.kafka.message_timeout_ms = 400_000;
        });
        assert!(err.contains("integration.channels.kafka.message_timeout_ms"), "{err}");
        let err = check(&|s| {
            kafka(s);
            s.integration
                .channels
                .kafka
                .properties
                .insert("acks".into(), "1".into());
        });
        assert!(
            err.contains("integration.channels.kafka.properties") && err.contains("acks"),
            "{err}"
        );

        let jms = |s: &mut Settings| {
            s.integration.channels.jms.enabled = true;
            s.integration.channels.jms.url = "stomp://127.0.0.1:61613".into();
        };
        assert_eq!(check(&jms), "");
        let err = check(&|s| {
            jms(s);
            s.integration.channels.jms.url = "http://127.0.0.1".into();
        });
        assert!(err.contains("integration.channels.jms.url"), "{err}");
        let err = check(&|s| {
            jms(s);
            s.integration.channels.jms.password = Some("p".into());
        });
        assert!(err.contains("integration.channels.jms.username"), "{err}");
        let amqp = |s: &mut Settings| {
            jms(s);
            s.integration.channels.jms.protocol = JmsProtocol::Amqp;
            s.integration.channels.jms.url = "amqps://broker.internal".into();
        };
        assert_eq!(check(&amqp), "");
        let err = check(&|s| {
            amqp(s);
            s.integration.channels.jms.url = "amqp://user:secret@broker.internal".into();
        });
        assert!(err.contains("integration.channels.jms.url"), "{err}");
        let err = check(&|s| {
            kafka(s);
            s.mode = DeploymentMode::Saas;
        });
        assert!(err.contains("integration.channels"), "{err}");
    }

    #[test]
    fn the_documented_example_file_is_valid_and_says_the_defaults() {
        let example = include_str!("../../../business-wallet.example.toml");
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(example))
            .extract()
            .unwrap();
        settings.validate().unwrap();
        let defaults = Settings::default();
        assert_eq!(
            serde_json::to_value(&settings).unwrap(),
            serde_json::to_value(&defaults).unwrap()
        );
    }

    #[test]
    fn toml_and_environment_are_layered() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "mode = \"saas\"\n[database]\nurl = \"postgres://localhost/x\"\n",
            )?;
            jail.set_env("BW_SERVER__LISTEN", "127.0.0.1:9999");
            let settings = Settings::load(Some(Path::new("custom.toml"))).unwrap();
            assert_eq!(settings.mode, DeploymentMode::Saas);
            assert_eq!(settings.backend(), Backend::Postgres);
            assert_eq!(settings.server.listen, "127.0.0.1:9999");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[server]\nbody_limit_bytes = \"lots\"\n")?;
            let err = Settings::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("body_limit_bytes"), "{err}");
            jail.create_file("typo.toml", "[databse]\nurl = \"x\"\n")?;
            let err = Settings::load(Some(Path::new("typo.toml"))).unwrap_err().to_string();
            assert!(err.contains("databse"), "{err}");
            Ok(())
        });
    }
}
