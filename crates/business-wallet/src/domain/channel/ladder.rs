//! The failure ladder: a channel that keeps failing is FAILING, then PAUSED, and never drops a
//! delivery on the way.
//!
//! - **ACTIVE**: deliveries go out.
//! - **FAILING**: `integration.failure.failing_after_failures` attempts in a row failed (no
//!   success between them). Deliveries still go out; a success takes the channel back to ACTIVE.
//! - **PAUSED**: a FAILING channel reached `paused_after_failures` failed attempts in a row, or
//!   went `paused_after_secs` without a success. No attempt is made; deliveries (new ones too)
//!   wait untouched as PENDING, FAILED ones stay FAILED. Only an operator's resume takes it back
//!   to ACTIVE, and then everything waiting goes out, oldest first.
//!
//! [`steps`] is the rule, one pure function. [`advance`] applies it after the dispatcher stored a
//! batch of outcomes; [`resume`] is the operator's way back. Each change of state is one
//! compare-and-set on the channel row (two dispatchers that see the same failures make the step
//! once), one CHANNEL_STATE_CHANGED (or CHANNEL_RESUMED) history entry and one
//! `integration-channel.state-changed.v1` event of the channel's wallet, all in one transaction.
//! Platform channels move along the ladder and are in the history too; they belong to no wallet,
//! so no event is emitted for them.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{channel_not_found, view, ChannelView};
use crate::auth::{Authority, Principal};
use crate::config::FailureSettings;
use crate::domain::error::DomainError;
use crate::domain::history::{self, HistoryAction};
use crate::domain::{ChannelKey, Scope};
use crate::events::{TraceContext, CHANNEL_STATE_CHANGED_V1};
use crate::outbox::{NewEvent, Outbox};
use crate::state::AppState;
use crate::store::channels as store_channels;
use crate::store::ladder::{self as store_ladder, Standing};
use crate::store::{self, rfc3339_ms, Db, Tx};

/// Where a channel stands on the failure ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChannelState {
    /// Deliveries go out.
    Active,
    /// Deliveries go out; the last attempts in a row failed.
    Failing,
    /// No attempts until an operator resumes the channel; deliveries wait.
    Paused,
}

impl ChannelState {
    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Active => "ACTIVE",
            ChannelState::Failing => "FAILING",
            ChannelState::Paused => "PAUSED",
        }
    }

    /// The state stored as `name`; an unknown name reads as ACTIVE (a newer version's state
    /// must not stop an older instance from sending).
    pub fn parse(name: &str) -> ChannelState {
        match name {
            "FAILING" => ChannelState::Failing,
            "PAUSED" => ChannelState::Paused,
            _ => ChannelState::Active,
        }
    }
}

/// One move along the ladder, with its reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The state left.
    pub from: ChannelState,
    /// The state entered.
    pub to: ChannelState,
    /// Why.
    pub reason: String,
}

/// The steps the ladder takes for a channel standing at `state`, with `failures` failed
/// attempts in a row, its last success at `last_success_at` and in `state` since `since` (epoch
/// ms), at `now`. Empty when nothing changes; two steps when one batch of failures crosses both
/// thresholds (ACTIVE to FAILING to PAUSED, each recorded). A PAUSED channel never moves on its own.
pub fn steps(
    state: ChannelState,
    failures: i64,
    last_success_at: Option<i64>,
    since: Option<i64>,
    now: i64,
    rules: &FailureSettings,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut at = state;
    let mut failing_since = since;
    if at == ChannelState::Failing && failures == 0 {
        return vec![Step {
            from: at,
            to: ChannelState::Active,
            reason: "an attempt succeeded".into(),
        }];
    }
    if at == ChannelState::Active
        && rules.failing_after_failures > 0
        && failures >= i64::from(rules.failing_after_failures)
    {
        steps.push(Step {
            from: at,
            to: ChannelState::Failing,
            reason: format!("{failures} failed attempts in a row"),
        });
        at = ChannelState::Failing;
        failing_since = Some(now);
    }
    if at == ChannelState::Failing {
        let by_count = rules.paused_after_failures > 0 && failures >= i64::from(rules.paused_after_failures);
        let without_success_ms = last_success_at.or(failing_since).map_or(0, |t| now.saturating_sub(t));
        let limit_ms = i64::try_from(rules.paused_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let by_time = rules.paused_after_secs > 0 && without_success_ms >= limit_ms;
        if by_count || by_time {
            steps.push(Step {
                from: at,
                to: ChannelState::Paused,
                reason: if by_count {
                    format!("{failures} failed attempts in a row")
                } else {
                    format!("no successful attempt for {} s", without_success_ms / 1000)
                },
            });
        }
    }
    steps
}

/// What [`advance`] and [`resume`] need: the database, the outbox for the events, and the rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ladder<'a> {
    pub(crate) db: &'a Db,
    pub(crate) outbox: &'a Outbox,
    pub(crate) rules: &'a FailureSettings,
}

/// The actor of the ladder's own steps in the history and the events.
const DISPATCHER: &str = "dispatcher";

/// Moves each of `channels` (row ids) along the ladder as far as its stored health says, after
/// the dispatcher stored outcomes of their attempts. Failures are logged, never returned: the
/// next outcome tries again.
pub(crate) async fn advance(ladder: Ladder<'_>, channels: &[i64]) {
    if channels.is_empty() {
        return;
    }
    let standings = match store_ladder::standings(ladder.db, channels).await {
        Ok(standings) => standings,
        Err(err) => {
            tracing::warn!(error = %err, "could not read the channels' failure ladder");
            return;
        }
    };
    let now = store::now_ms();
    for standing in standings {
        let state = ChannelState::parse(&standing.delivery_state);
        let steps = steps(
            state,
            standing.consecutive_failures,
            standing.last_success_at,
            standing.delivery_state_since,
            now,
            ladder.rules,
        );
        if steps.is_empty() {
            continue;
        }
        if let Err(err) = take_steps(ladder, &standing, &steps, DISPATCHER, now).await {
            tracing::warn!(error = %err, channel = %standing.channel_external_key, "could not move the channel along the failure ladder");
        }
    }
}

/// Records `steps` of one channel in one transaction: the compare-and-set of its state, then a
/// history entry and an event per step. Nothing when another instance made the first step.
async fn take_steps(
    ladder: Ladder<'_>,
    standing: &Standing,
    steps: &[Step],
    actor: &str,
    now: i64,
) -> Result<bool, DomainError> {
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return Ok(false);
    };
    let mut tx = ladder.db.begin().await?;
    if !store_ladder::set_state(&mut tx, standing.id, first.from.as_str(), last.to.as_str(), now).await? {
        return Ok(false);
    }
    let action = if actor == DISPATCHER {
        HistoryAction::ChannelStateChanged
    } else {
        HistoryAction::ChannelResumed
    };
    for step in steps {
        record_step(&mut tx, ladder.outbox, standing, step, action, actor, now).await?;
    }
    tx.commit().await?;
    for step in steps {
        tracing::warn!(
            channel = %standing.channel_external_key,
            from = step.from.as_str(),
            to = step.to.as_str(),
            reason = %step.reason,
            actor,
            "channel delivery state changed"
        );
    }
    Ok(true)
}

async fn record_step(
    tx: &mut Tx,
    outbox: &Outbox,
    standing: &Standing,
    step: &Step,
    action: HistoryAction,
    actor: &str,
    now: i64,
) -> Result<(), DomainError> {
    let scope = match &standing.wallet_external_key {
        Some(wallet) => Scope::Wallet(wallet.clone()),
        None => Scope::Platform,
    };
    let details = json!({
        "channelExternalKey": standing.channel_external_key,
        "name": standing.name,
        "type": standing.channel_type,
        "from": step.from.as_str(),
        "to": step.to.as_str(),
        "reason": step.reason,
        "consecutiveFailures": standing.consecutive_failures,
    });
    history::record(tx, &scope, action, actor, &details, now).await?;
    let Some(wallet) = &standing.wallet_external_key else {
        return Ok(());
    };
    let data = json!({
        "walletExternalKey": wallet,
        "channelExternalKey": standing.channel_external_key,
        "channelName": standing.name,
        "state": step.to.as_str(),
        "previousState": step.from.as_str(),
        "reason": step.reason,
        "consecutiveFailures": standing.consecutive_failures,
        "lastSuccessAt": standing.last_success_at.map(rfc3339_ms),
        "changedAt": rfc3339_ms(now),
        "changedBy": actor,
    });
    let correlation_id = uuid::Uuid::new_v4().to_string();
    outbox
        .publish(
            tx,
            NewEvent {
                event_type: &CHANNEL_STATE_CHANGED_V1,
                wallet_external_key: wallet,
                subject_values: &[
                    ("walletExternalKey", wallet.as_str()),
                    ("channelExternalKey", standing.channel_external_key.as_str()),
                ],
                data,
                correlation_id: &correlation_id,
                trace: &TraceContext::fresh(),
                time: now,
            },
        )
        .await?;
    Ok(())
}

/// Resumes a PAUSED or FAILING channel: ACTIVE again with its count of failures cleared, and
/// every delivery waiting for it due now, so they go out at once in the order they were created.
/// Resuming an ACTIVE channel changes nothing.
///
/// # Errors
/// 403/404.
pub async fn resume(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &ChannelKey,
) -> Result<ChannelView, DomainError> {
    super::super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let row = store_channels::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    let standing = store_ladder::standings(&state.db, &[row.id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| channel_not_found(key))?;
    let from = ChannelState::parse(&standing.delivery_state);
    if from != ChannelState::Active {
        let now = store::now_ms();
        let ladder = Ladder {
            db: &state.db,
            outbox: &state.outbox,
            rules: &state.settings.integration.failure,
        };
        let step = Step {
            from,
            to: ChannelState::Active,
            reason: format!("resumed by {}", principal.sub),
        };
        let mut tx = state.db.begin().await?;
        if store_ladder::set_state(&mut tx, standing.id, from.as_str(), ChannelState::Active.as_str(), now).await? {
            store_ladder::clear_failures(&mut tx, standing.id).await?;
            store_ladder::release_waiting(&mut tx, standing.id, now).await?;
            record_step(
                &mut tx,
                ladder.outbox,
                &standing,
                &step,
                HistoryAction::ChannelResumed,
                &principal.sub,
                now,
            )
            .await?;
            tx.commit().await?;
            state.outbox.committed();
            tracing::info!(channel = %key, from = from.as_str(), by = %principal.sub, "channel resumed");
        }
    }
    let row = store_channels::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    let subscriptions = super::event_types_of(state, scope).await?;
    Ok(view(&row, super::types_for(&subscriptions, row.id), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(failing: u32, paused: u32, secs: u64) -> FailureSettings {
        FailureSettings {
            failing_after_failures: failing,
            paused_after_failures: paused,
            paused_after_secs: secs,
        }
    }

    fn to(steps: &[Step]) -> Vec<ChannelState> {
        steps.iter().map(|s| s.to).collect()
    }

    #[test]
    fn failures_in_a_row_take_an_active_channel_to_failing_then_paused() {
        let r = rules(3, 6, 0);
        assert!(steps(ChannelState::Active, 2, None, None, 0, &r).is_empty());
        assert_eq!(
            to(&steps(ChannelState::Active, 3, None, None, 0, &r)),
            [ChannelState::Failing]
        );
        assert!(steps(ChannelState::Failing, 5, None, Some(0), 10, &r).is_empty());
        assert_eq!(
            to(&steps(ChannelState::Failing, 6, None, Some(0), 10, &r)),
            [ChannelState::Paused]
        );
        // One batch can cross both thresholds: both steps are taken and recorded.
        assert_eq!(
            to(&steps(ChannelState::Active, 7, None, None, 0, &r)),
            [ChannelState::Failing, ChannelState::Paused]
        );
    }

    #[test]
    fn a_success_ends_failing_and_only_a_resume_ends_paused() {
        let r = rules(3, 6, 0);
        let back = steps(ChannelState::Failing, 0, Some(5), Some(0), 10, &r);
        assert_eq!(to(&back), [ChannelState::Active]);
        assert_eq!(back[0].reason, "an attempt succeeded");
        assert!(steps(ChannelState::Paused, 0, Some(5), Some(0), 10, &r).is_empty());
        assert!(steps(ChannelState::Paused, 100, None, Some(0), 10, &r).is_empty());
        assert!(steps(ChannelState::Active, 0, Some(5), None, 10, &r).is_empty());
    }

    #[test]
    fn time_without_a_success_pauses_a_failing_channel() {
        let r = rules(3, 0, 60);
        // Counted from the last success ...
        assert!(steps(ChannelState::Failing, 4, Some(1_000), Some(30_000), 60_999, &r).is_empty());
        let paused = steps(ChannelState::Failing, 4, Some(1_000), Some(30_000), 61_000, &r);
        assert_eq!(to(&paused), [ChannelState::Paused]);
        assert_eq!(paused[0].reason, "no successful attempt for 60 s");
        // ... or, without one, from when the channel became FAILING.
        assert!(steps(ChannelState::Failing, 4, None, Some(30_000), 61_000, &r).is_empty());
        assert_eq!(
            to(&steps(ChannelState::Failing, 4, None, Some(30_000), 90_000, &r)),
            [ChannelState::Paused]
        );
        // An ACTIVE channel is never paused by time alone.
        assert!(steps(ChannelState::Active, 1, Some(0), None, 1_000_000_000, &r).is_empty());
    }

    #[test]
    fn zero_switches_a_rule_off() {
        let r = rules(0, 0, 0);
        assert!(steps(ChannelState::Active, 1_000, None, None, i64::MAX, &r).is_empty());
        let r = rules(2, 0, 0);
        assert_eq!(
            to(&steps(ChannelState::Active, 1_000, None, None, i64::MAX, &r)),
            [ChannelState::Failing]
        );
        assert!(steps(ChannelState::Failing, 1_000, None, Some(0), i64::MAX, &r).is_empty());
    }

    #[test]
    fn states_read_back_as_stored() {
        for state in [ChannelState::Active, ChannelState::Failing, ChannelState::Paused] {
            assert_eq!(ChannelState::parse(state.as_str()), state);
        }
        assert_eq!(ChannelState::parse("SOMETHING_NEWER"), ChannelState::Active);
    }
}
