//! Fault tests: the real `business-wallet` binary as a child process, killed with SIGKILL,
//! starved of disk, locked out of its SQLite file and cut off from PostgreSQL, while clients
//! keep calling it. Each scenario checks what a user would notice: every acknowledged event
//! is delivered (none lost), duplicates only for work in flight and with the same `ce-id`,
//! every answer is JSON (a 503 says when to retry), the server recovers by itself where it can,
//! and its memory stays bounded (printed: run with `--nocapture` to see the figures).
//!
//! The harness is in [`harness`]; scenarios run one at a time ([`harness::serial`]).

mod harness;
#[path = "../../../business-wallet/tests/common/postgres.rs"]
mod postgres;

mod dispatchers;
mod postgres_outage;
mod pull;
mod sigkill;
mod smoke;
mod sqlite_disk_full;
mod sqlite_locked;

// Misbehaving webhook receivers and failing brokers (the broker scenarios need a binary built
// with both broker channels, the default).
#[cfg(all(feature = "kafka", feature = "jms"))]
mod broker_kit;
mod misbehaving;
mod scenario;

#[cfg(all(feature = "kafka", feature = "jms"))]
mod brokers;
mod receivers;
