//! The pull type block stored in `integration_channel.config`: how long fetched events stay
//! leased to the receiver before they are offered again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channels::InvalidConfig;

/// Lease of a fetch when the block names none, in seconds.
pub const DEFAULT_LEASE_SECONDS: u64 = 30;
/// Longest lease a channel may ask for, in seconds (one hour).
pub const MAX_LEASE_SECONDS: u64 = 3600;

/// How a pull channel leases what its receiver fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullChannelConfig {
    /// Seconds a fetched batch stays with the receiver; events it has not committed by then
    /// are offered to the next fetch again. 1 to 3600, default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
}

impl PullChannelConfig {
    /// Reads and checks a stored or submitted type block.
    ///
    /// # Errors
    /// Unknown fields, or a lease outside 1 to 3600 seconds.
    pub fn from_value(value: &Value) -> Result<PullChannelConfig, InvalidConfig> {
        let config: PullChannelConfig = serde_path_to_error::deserialize(value)
            .map_err(|e| InvalidConfig(format!("pull.{}: {}", e.path(), e.inner())))?;
        if let Some(seconds) = config.lease_seconds {
            if !(1..=MAX_LEASE_SECONDS).contains(&seconds) {
                return Err(InvalidConfig(format!(
                    "pull.leaseSeconds must be 1 to {MAX_LEASE_SECONDS} (got {seconds})"
                )));
            }
        }
        Ok(config)
    }

    /// The lease of a fetch.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_lease_defaults_and_is_bounded() {
        assert_eq!(
            PullChannelConfig::from_value(&json!({})).unwrap().lease(),
            Duration::from_secs(DEFAULT_LEASE_SECONDS)
        );
        let one = PullChannelConfig::from_value(&json!({"leaseSeconds": 1})).unwrap();
        assert_eq!(one.lease(), Duration::from_secs(1));
        assert!(PullChannelConfig::from_value(&json!({"leaseSeconds": 3600})).is_ok());
        for bad in [json!(0), json!(3601), json!(-1), json!("5")] {
            let err = PullChannelConfig::from_value(&json!({ "leaseSeconds": bad })).unwrap_err();
            assert!(err.0.starts_with("pull.leaseSeconds"), "{bad}: {err}");
        }
        let err = PullChannelConfig::from_value(&json!({"batch": 5})).unwrap_err();
        assert!(err.0.contains("batch"), "{err}");
    }
}
