//! The pull channel (`PULL`): for receivers that cannot be reached. Nothing is sent; the
//! receiver fetches its events in batches over HTTP
//! (`GET .../integration-channels/{channelExternalKey}/events`) and acknowledges them with a
//! commit (`POST .../events/commit`). Its deliveries are ordinary delivery rows, fanned out at
//! publish time like every other type's, so the deliveries log, replay, dismiss, retention and
//! the metrics treat them alike; only the push dispatcher leaves them alone.
//!
//! - [`config`]: the channel's type block ([`PullChannelConfig`]: the lease).
//! - [`channel`]: the [`PullChannel`] registered for the type (validation; it never sends).
//! - [`cursor`]: the opaque cursor a fetch returns and a commit takes ([`Cursor`]).
//!
//! The fetch and commit themselves are in `domain::pull` (rules, authentication), `store::pull`
//! (the statements) and `api::v1::pull` (the routes).

pub mod channel;
pub mod config;
pub mod cursor;

pub use channel::PullChannel;
pub use config::PullChannelConfig;
pub use cursor::Cursor;
