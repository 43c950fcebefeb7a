//! The validation handshake of webhook channels with `webhook.validationHandshake` (the
//! CloudEvents webhook specification's abuse protection), as the channel's life sees it:
//!
//! - created with the option, or replaced turning it on or changing the URL, a channel is
//!   UNVERIFIED: its deliveries wait (never leased at publish, never claimed; no attempt is
//!   counted);
//! - every dispatcher's heartbeat round tries the handshake of the enabled unverified channels
//!   not tried for `integration.webhook.validation_retry_secs`; an answer that verifies makes
//!   the channel VERIFIED (one CHANNEL_VERIFIED history entry, actor `dispatcher`), its
//!   allowed rate (`WebHook-Allowed-Rate`) a rate limit of its deliveries, and wakes the
//!   dispatchers; any other answer is kept as the channel's `validation.error`;
//! - a receiver answering a delivery with 410 Gone disables the channel (one
//!   CHANNEL_DISABLED_BY_RECEIVER entry); the delivery waits PENDING with the others until the
//!   channel is enabled again.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::channels::webhook::handshake::{self, HandshakeReport};
use crate::channels::{ChannelConfig, ChannelKind, ChannelRegistry, ChannelSecrets};
use crate::crypto::SecretBox;
use crate::domain::history::{self, HistoryAction};
use crate::domain::Scope;
use crate::outbox::Outbox;
use crate::store::validation::{self as store_validation, UNVERIFIED, VERIFIED};
use crate::store::{self, rfc3339_ms, Db};

/// The actor of the dispatcher's own entries in the history.
const DISPATCHER: &str = "dispatcher";

/// A channel's validation handshake, as its view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationView {
    /// UNVERIFIED (its deliveries wait for the receiver's answer) or VERIFIED.
    pub state: String,
    /// When the handshake was last tried (RFC 3339 UTC); null before the first try.
    pub checked_at: Option<String>,
    /// Why the last try did not verify the receiver; null once it did.
    pub error: Option<String>,
    /// The rate the receiver allowed (`WebHook-Allowed-Rate`), requests per minute; null when
    /// it allowed any rate (or has not answered yet).
    pub allowed_rate_per_minute: Option<u64>,
}

impl ValidationView {
    /// The view of the stored columns; `None` when the channel does not require the handshake.
    pub fn from_columns(
        state: Option<&str>,
        checked_at: Option<i64>,
        error: Option<&str>,
        allowed_rate_per_sec: Option<f64>,
    ) -> Option<ValidationView> {
        let state = state?;
        Some(ValidationView {
            state: state.to_string(),
            checked_at: checked_at.map(rfc3339_ms),
            error: error.map(str::to_string),
            allowed_rate_per_minute: allowed_rate_per_sec.map(|per_sec| (per_sec * 60.0).round() as u64),
        })
    }

    /// Whether the channel's deliveries wait for the handshake.
    pub fn unverified(&self) -> bool {
        self.state == UNVERIFIED
    }
}

/// Whether a channel of `channel_type` with this stored or validated block requires the
/// handshake: a webhook channel with `validationHandshake` (no other type has the option).
pub fn required(channel_type: &str, config: &serde_json::Value) -> bool {
    ChannelKind::parse(channel_type) == ChannelKind::Webhook
        && config["validationHandshake"] == serde_json::Value::Bool(true)
}

/// The validation state a saved channel gets: `None` without the option; UNVERIFIED when it is
/// new, when the option was just turned on, or when the URL changed; otherwise what it had.
/// The second value says whether the handshake's results are to be forgotten.
pub fn state_after_save(
    channel_type: &str,
    new_config: &serde_json::Value,
    old: Option<(&serde_json::Value, Option<&str>)>,
) -> (Option<String>, bool) {
    if !required(channel_type, new_config) {
        return (None, true);
    }
    match old {
        Some((old_config, Some(state)))
            if required(channel_type, old_config) && old_config["url"] == new_config["url"] =>
        {
            (Some(state.to_string()), false)
        }
        _ => (Some(UNVERIFIED.to_string()), true),
    }
}

/// What a heartbeat round needs to try the handshakes.
pub(crate) struct Verifier<'a> {
    pub(crate) db: &'a Db,
    pub(crate) channels: &'a ChannelRegistry,
    pub(crate) secret_box: &'a SecretBox,
    pub(crate) outbox: &'a Outbox,
    pub(crate) retry_secs: u64,
}

/// Tries the handshake of each enabled unverified channel not tried for `retry_secs`; returns
/// how many became VERIFIED (and wakes this process's dispatcher when any did). Failures are
/// logged, never returned: the next round tries again.
pub(crate) async fn verify_due(verifier: Verifier<'_>) -> usize {
    let now = store::now_ms();
    let before = now.saturating_sub(i64::try_from(verifier.retry_secs.saturating_mul(1000)).unwrap_or(i64::MAX));
    let due = match store_validation::take_due(verifier.db, before, now).await {
        Ok(due) => due,
        Err(err) => {
            tracing::warn!(error = %err, "could not look for channels waiting for their validation handshake");
            return 0;
        }
    };
    let Some(webhook) = verifier.channels.webhook() else {
        return 0;
    };
    let mut verified = 0;
    for channel in due {
        let secrets = match ChannelSecrets::open_stored(verifier.secret_box, channel.secrets.as_deref()) {
            Ok(secrets) => secrets,
            Err(err) => {
                let error = format!("channel secrets cannot be opened: {err}");
                let _ = store_validation::record_failure(verifier.db, channel.id, &error).await;
                continue;
            }
        };
        let config = ChannelConfig {
            channel_external_key: channel.channel_external_key.to_string(),
            config: serde_json::from_str(&channel.config).unwrap_or(serde_json::Value::Null),
            secrets,
        };
        let report = webhook
            .validate_endpoint(&config, channel.rate_per_sec.map(handshake::request_rate))
            .await;
        if !report.verified {
            let error = report.error.unwrap_or_default();
            tracing::info!(channel = %channel.channel_external_key, error = %error, "the receiver has not answered the validation handshake; its deliveries wait");
            if let Err(err) = store_validation::record_failure(verifier.db, channel.id, &error).await {
                tracing::warn!(channel = %channel.channel_external_key, error = %err, "could not store the validation handshake's result");
            }
            continue;
        }
        match record_verified(verifier.db, &channel, &report).await {
            Ok(true) => {
                verified += 1;
                tracing::info!(channel = %channel.channel_external_key, allowed_rate = ?report.allowed_rate, "the receiver answered the validation handshake; deliveries go out");
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(channel = %channel.channel_external_key, error = %err, "could not store the validation handshake's result")
            }
        }
    }
    if verified > 0 {
        verifier.outbox.committed();
    }
    verified
}

fn scope_of(wallet: Option<&crate::domain::WalletKey>) -> Scope {
    match wallet {
        Some(wallet) => Scope::Wallet(wallet.clone()),
        None => Scope::Platform,
    }
}

/// Stores a handshake that verified the channel, with its history entry and a wake-up for the
/// other instances, in one transaction.
async fn record_verified(
    db: &Db,
    channel: &store_validation::Unverified,
    report: &HandshakeReport,
) -> Result<bool, crate::domain::error::DomainError> {
    let now = store::now_ms();
    let mut tx = db.begin().await?;
    if !store_validation::mark_verified(&mut tx, channel.id, &channel.config, report.allowed_rate_per_sec()).await? {
        return Ok(false);
    }
    let details = json!({
        "channelExternalKey": channel.channel_external_key,
        "name": channel.name,
        "type": channel.channel_type,
        "state": VERIFIED,
        "origin": report.origin,
        "allowedOrigin": report.allowed_origin,
        "allowedRatePerMinute": report.allowed_rate,
    });
    let scope = scope_of(channel.wallet_external_key.as_ref());
    history::record(
        &mut tx,
        &scope,
        HistoryAction::ChannelVerified,
        DISPATCHER,
        &details,
        now,
    )
    .await?;
    // Other instances' dispatchers claim the waiting deliveries at once too.
    store::events::notify_dispatchers(&mut tx, DISPATCHER).await?;
    tx.commit().await?;
    Ok(true)
}

/// Disables channel `channel_id` because its receiver answered a delivery with `status` (410
/// Gone), with a CHANNEL_DISABLED_BY_RECEIVER history entry; nothing when it was disabled
/// already. Failures are logged.
pub(crate) async fn disable_by_receiver(db: &Db, channel_id: i64, delivery: &str, status: u16) {
    let disabled = async {
        let now = store::now_ms();
        let mut tx = db.begin().await?;
        let Some((key, wallet, name, channel_type)) = store_validation::describe(&mut tx, channel_id).await? else {
            return Ok::<_, crate::domain::error::DomainError>(None);
        };
        if !store_validation::disable(&mut tx, channel_id, now, DISPATCHER).await? {
            return Ok(None);
        }
        let details = json!({
            "channelExternalKey": key,
            "name": name,
            "type": channel_type,
            "status": status,
            "deliveryExternalKey": delivery,
            "reason": format!("the receiver answered a delivery with {status} Gone: it no longer accepts events"),
        });
        history::record(
            &mut tx,
            &scope_of(wallet.as_ref()),
            HistoryAction::ChannelDisabledByReceiver,
            DISPATCHER,
            &details,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(key))
    }
    .await;
    match disabled {
        Ok(Some(key)) => {
            tracing::warn!(channel = %key, status, "the receiver answered 410 Gone; the channel is disabled, its deliveries wait")
        }
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "could not disable the channel whose receiver answered 410 Gone"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn saving_sets_the_state_as_documented() {
        let on = json!({"url": "https://r.example/a", "validationHandshake": true});
        let off = json!({"url": "https://r.example/a"});
        let moved = json!({"url": "https://r.example/b", "validationHandshake": true});
        assert_eq!(state_after_save("WEBHOOK", &on, None), (Some(UNVERIFIED.into()), true));
        assert_eq!(state_after_save("WEBHOOK", &off, None), (None, true));
        // Another type never has the option, whatever its block says.
        assert_eq!(state_after_save("ERP", &on, None), (None, true));
        // Unchanged URL: kept; turned on, or another URL: unverified again; turned off: none.
        assert_eq!(
            state_after_save("WEBHOOK", &on, Some((&on, Some(VERIFIED)))),
            (Some(VERIFIED.into()), false)
        );
        assert_eq!(
            state_after_save("WEBHOOK", &on, Some((&off, None))),
            (Some(UNVERIFIED.into()), true)
        );
        assert_eq!(
            state_after_save("WEBHOOK", &moved, Some((&on, Some(VERIFIED)))),
            (Some(UNVERIFIED.into()), true)
        );
        assert_eq!(
            state_after_save("WEBHOOK", &off, Some((&on, Some(VERIFIED)))),
            (None, true)
        );
    }

    #[test]
    fn the_view_gives_the_allowed_rate_per_minute() {
        assert_eq!(ValidationView::from_columns(None, Some(1), None, Some(1.0)), None);
        let view = ValidationView::from_columns(Some(VERIFIED), Some(0), None, Some(10.0)).unwrap();
        assert_eq!(view.allowed_rate_per_minute, Some(600));
        assert_eq!(view.checked_at.as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert!(!view.unverified());
    }
}
