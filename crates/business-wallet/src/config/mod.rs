//! Settings: one typed tree, layered from built-in defaults, an optional TOML file and
//! `BW_`-prefixed environment variables (nested keys joined with `__`, for example
//! `BW_DATABASE__URL`), then validated once at start.
//!
//! No other module reads the environment: everything configurable arrives through
//! [`Settings`].
//!
//! - [`Settings`] (this module): the tree, its defaults and the values derived from it.
//! - `service`: the server, database, authentication, secrets and log sections.
//! - `integration`: delivery (retry, dispatch, webhook requests, retention).
//! - `channels`: the channel type switches and the Kafka and JMS brokers.
//! - `load`: layering the file and the environment over the defaults.
//! - `validate`: the checks run at start, each error naming its setting.

mod channels;
mod integration;
mod load;
mod secret;
mod service;
mod validate;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use channels::{ChannelSwitches, JmsProtocol, JmsSettings, KafkaSettings, Switch, KAFKA_FIXED_PROPERTIES};
pub use integration::{
    DispatchSettings, FailureSettings, IntegrationSettings, RetentionSettings, RetrySettings, SigningKeySetting,
    SigningSettings, WebhookSettings,
};
pub use service::{AuthSettings, DatabaseSettings, LogFormat, LogSettings, SecretSettings, ServerSettings};

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

/// The database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Settings {
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

    /// The file of generated webhook signing keys.
    pub fn signing_key_file(&self) -> PathBuf {
        self.integration
            .webhook
            .signing
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("webhook-signing-keys.json"))
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

#[cfg(test)]
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
}
