//! Secrets in the settings: kept in [`SecretString`] so that no `Debug` print shows them, and
//! masked where they sit inside a larger value (a database URL, a Kafka property).

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Serialize as _, Serializer};

/// Writes a secret as its plain value. Serialising the settings is how they are layered (the
/// defaults go in as a serialised tree) and compared in tests; they are never serialised into
/// a log line or a response.
pub(super) fn serialize_exposed<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    secret.as_ref().map(|s| s.expose_secret()).serialize(serializer)
}

/// The URL with its password (if any) replaced by `***`; text that does not parse as a URL is
/// masked whole, since it might be anything.
pub(super) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "***".to_string(),
    }
}

/// The value of a librdkafka property, or `***` when the property holds a secret (passwords,
/// SASL and OAuth settings, TLS keys and certificates given inline).
pub(super) fn redact_property<'a>(key: &str, value: &'a str) -> &'a str {
    const SECRET_PARTS: &[&str] = &["password", "secret", "jaas", "oauthbearer", "key", "pem", "token"];
    let key = key.to_ascii_lowercase();
    if SECRET_PARTS.iter().any(|part| key.contains(part)) {
        "***"
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn no_secret_of_the_settings_shows_in_their_debug_print() {
        let mut settings = Settings::default();
        settings.secrets.encryption_key = Some("c2VjcmV0LWVuY3J5cHRpb24ta2V5LXZhbHVlLTMyYg==".into());
        settings.integration.channels.jms.username = Some("bw".into());
        settings.integration.channels.jms.password = Some("jms-broker-password".into());
        settings.database.url = Some("postgres://bw:database-password@db.internal/wallet".into());
        let kafka = &mut settings.integration.channels.kafka.properties;
        kafka.insert("sasl.password".into(), "kafka-sasl-password".into());
        kafka.insert("ssl.key.pem".into(), "kafka-private-key".into());
        kafka.insert("sasl.oauthbearer.client.secret".into(), "kafka-oauth-secret".into());
        kafka.insert("security.protocol".into(), "SASL_SSL".into());

        for printed in [format!("{settings:?}"), format!("{settings:#?}")] {
            for secret in [
                "c2VjcmV0LWVuY3J5cHRpb24ta2V5LXZhbHVlLTMyYg==",
                "jms-broker-password",
                "database-password",
                "kafka-sasl-password",
                "kafka-private-key",
                "kafka-oauth-secret",
            ] {
                assert!(!printed.contains(secret), "{secret} shows in {printed}");
            }
            // What is not secret still shows.
            assert!(printed.contains("postgres://bw:***@db.internal/wallet"), "{printed}");
            assert!(printed.contains("SASL_SSL") && printed.contains("\"bw\""), "{printed}");
        }
    }

    #[test]
    fn secrets_keep_their_value_for_the_code_that_uses_them() {
        let toml = "[secrets]\nencryption_key = \"a2V5\"\n[integration.channels.jms]\npassword = \"pw\"\n";
        let settings: Settings = figment::Figment::from(figment::providers::Serialized::defaults(Settings::default()))
            .merge(<figment::providers::Toml as figment::providers::Format>::string(toml))
            .extract()
            .unwrap();
        let key = settings.secrets.encryption_key.as_ref().unwrap();
        assert_eq!(key.expose_secret(), "a2V5");
        let password = settings.integration.channels.jms.password.as_ref().unwrap();
        assert_eq!(password.expose_secret(), "pw");
        // Serialised (as the layering does), the value is kept.
        let tree = serde_json::to_value(&settings).unwrap();
        assert_eq!(tree["secrets"]["encryption_key"], "a2V5");
    }

    #[test]
    fn urls_and_properties_are_masked_only_where_secret() {
        assert_eq!(redact_url("postgres://u:p@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(redact_url("not a url p@ss"), "***");
        assert_eq!(redact_property("SASL.PASSWORD", "x"), "***");
        assert_eq!(redact_property("sasl.mechanism", "PLAIN"), "PLAIN");
    }
}
