//! What one dispatcher holds: deliveries in flight per channel, the leases to give back, and
//! the claimed deliveries queued for a free slot.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::store::deliveries::ClaimedDelivery;

/// The deliveries this instance holds and the channel slots they take: one structure behind one
/// lock, so that a decision (admit, queue, free a slot) sees the three maps agree, and no order
/// between locks has to be kept.
///
/// The lock is a `std::sync::Mutex`, not tokio's: it is never held across an `.await`. Every
/// use takes it, reads or changes a few map entries and lets it go before any database call or
/// wake-up, so a waiter never waits for I/O, and a plain mutex costs less than an async one on
/// the claim loop's and every delivery's path (tokio's own documentation recommends it for
/// this case). The guard must also not be held where a `Slot` may be dropped: dropping one
/// takes the lock. The outbox takes it too, through the `has_room` check of its [`Taker`](crate::outbox::Taker),
/// while holding its own taker lock; nothing here takes the taker lock while holding this one.
#[derive(Debug, Default)]
pub(super) struct Admission {
    /// Deliveries in flight per channel id (a channel with none has no entry).
    pub(super) in_flight: HashMap<i64, u32>,
    /// Leases held by running tasks and queued deliveries (delivery id -> token), to give
    /// back at shutdown.
    pub(super) leases: HashMap<i64, String>,
    /// Claimed deliveries waiting for a free slot of their channel, per channel id, with when
    /// they were claimed (claim loop only).
    pub(super) queued: HashMap<i64, VecDeque<(Instant, ClaimedDelivery)>>,
}

impl Admission {
    /// Takes one of `channel`'s slots, if fewer than `max` are taken.
    pub(super) fn take_slot(&mut self, channel: i64, max: u32) -> bool {
        let count = self.in_flight.entry(channel).or_insert(0);
        if *count < max {
            *count += 1;
            true
        } else {
            false
        }
    }

    /// Gives one of `channel`'s slots back.
    pub(super) fn free_slot(&mut self, channel: i64) {
        if let Some(count) = self.in_flight.get_mut(&channel) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.in_flight.remove(&channel);
            }
        }
    }

    /// Channels at their in-flight limit or with deliveries queued here.
    pub(super) fn full_channels(&self, max: u32) -> Vec<i64> {
        let mut full: Vec<i64> = self
            .in_flight
            .iter()
            .filter(|(_, count)| **count >= max)
            .map(|(id, _)| *id)
            .collect();
        for id in self.queued.keys() {
            if !full.contains(id) {
                full.push(*id);
            }
        }
        full
    }
}
