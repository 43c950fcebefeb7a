//! The checks run once at start: values that parse but cannot work. Every error names the
//! setting.

use std::net::SocketAddr;

use secrecy::ExposeSecret as _;

use super::{backend_of, ConfigError, DeploymentMode, JmsProtocol, Settings, KAFKA_FIXED_PROPERTIES};

impl Settings {
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
                .decode(key.expose_secret().trim())
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
        if webhook.validation_retry_secs == 0 {
            return invalid("integration.webhook.validation_retry_secs", "must be at least 1");
        }
        if let Some(origin) = &webhook.request_origin {
            let sendable = reqwest::header::HeaderValue::from_str(origin).is_ok();
            if origin.trim().is_empty() || origin.trim() != origin || !sendable {
                return invalid(
                    "integration.webhook.request_origin",
                    "must be a non-empty header value without surrounding spaces",
                );
            }
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
mod tests {
    use super::*;

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
}
