//! The query of the deliveries log as the API and the UI take it from a URL.

use super::DeliveryState;
use crate::domain::error::DomainError;
use crate::domain::ids::{canonical_uuid, ChannelKey, WalletKey};
use crate::events;
use crate::store::delivery_log::Filter;

/// The query of the log, parsed from the URL.
#[derive(Debug, Default)]
pub struct LogQuery {
    /// Filters.
    pub filter: Filter,
    /// Cursor (exclusive upper bound of row ids).
    pub cursor: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Parses `state` (repeatable or comma-separated; `active` and `all` are shorthands), `channel`,
/// `eventType`, `eventId`, `wallet` (the event's wallet), `from`, `to` (RFC 3339), `cursor` and
/// `limit` (1 to 200, default 50).
///
/// # Errors
/// 400 naming the bad parameter.
pub fn parse_log_query(query: Option<&str>) -> Result<LogQuery, DomainError> {
    let mut parsed = LogQuery {
        limit: 50,
        ..LogQuery::default()
    };
    let mut states: Vec<DeliveryState> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.trim().to_string();
        match key.as_ref() {
            "state" | "states" => {
                for state in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match state.to_ascii_uppercase().as_str() {
                        "ACTIVE" => states.extend_from_slice(DeliveryState::ACTIVE),
                        "ALL" => states.extend_from_slice(DeliveryState::ALL),
                        named => match named.parse() {
                            Ok(named) => states.push(named),
                            Err(_) => {
                                return Err(DomainError::invalid_field("state", format!("unknown state `{state}`")))
                            }
                        },
                    }
                }
            }
            "channel" | "channelExternalKey" => parsed.filter.channel = Some(ChannelKey::parse_as("channel", &value)?),
            "eventType" => {
                if events::lookup(&value).is_none() {
                    return Err(DomainError::invalid_field(
                        "eventType",
                        format!("unknown event type `{value}`"),
                    ));
                }
                parsed.filter.event_type = Some(value)
            }
            "eventId" => parsed.filter.event_id = Some(canonical_uuid("eventId", &value)?),
            "wallet" => parsed.filter.wallet = Some(WalletKey::parse_as("wallet", &value)?),
            "from" => parsed.filter.from = Some(parse_time("from", &value)?),
            "to" => parsed.filter.to = Some(parse_time("to", &value)?),
            "cursor" => {
                parsed.cursor = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|c| *c > 0)
                        .ok_or_else(|| DomainError::invalid_field("cursor", "is not a cursor from this log"))?,
                )
            }
            "limit" => {
                parsed.limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=200).contains(l))
                    .ok_or_else(|| DomainError::invalid_field("limit", "must be a number from 1 to 200"))?
            }
            other => {
                return Err(DomainError::invalid_field(
                    other,
                    "is not a filter of the deliveries log",
                ))
            }
        }
    }
    if states.is_empty() {
        states = DeliveryState::ACTIVE.to_vec();
    }
    states.sort();
    states.dedup();
    parsed.filter.states = states;
    Ok(parsed)
}

fn parse_time(field: &str, value: &str) -> Result<i64, DomainError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| DomainError::invalid_field(field, format!("`{value}` is not an RFC 3339 time")))
}
