//! The sections of the service itself: HTTP server, database, bearer tokens, encryption at
//! rest and logging.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::secret;

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
#[derive(Clone, Serialize, Deserialize)]
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

// By hand, so that a password in the URL is not printed.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url.as_deref().map(secret::redact_url))
            .field("max_connections", &self.max_connections)
            .field("dispatcher_connections", &self.dispatcher_connections)
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
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
    #[serde(serialize_with = "secret::serialize_exposed")]
    pub encryption_key: Option<SecretString>,
    /// File holding the generated key. Defaults to `{data_dir}/secret-encryption.key`.
    pub key_file: Option<PathBuf>,
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
