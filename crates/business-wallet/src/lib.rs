//! # business-wallet
//!
//! The integration core of a Business Wallet. When something happens in a wallet (it is
//! created, an identifier is added), the change and a CloudEvents 1.0 event are written in one
//! database transaction (the outbox); a dispatcher then pushes the event to every integration
//! channel subscribed to its type.
//!
//! ## Layout
//! - [`config`]: the settings tree (TOML + `BW_` environment variables), validated at start.
//! - [`store`]: SQLite and PostgreSQL pools, migrations, and every SQL statement.
//! - `domain`: wallets and identifiers, with real key material ([`domain::keys`] is public).
//! - [`events`]: the event catalog, schemas and the CloudEvents envelope.
//! - [`outbox`]: publishing an event inside the caller's transaction.
//! - [`dispatch`]: claiming due deliveries, retries, leases and shutdown.
//! - [`channels`]: the channel trait and the built-in channel types (webhook).
//! - [`auth`]: bearer JWTs and authorities.
//! - `api`: the HTTP routes, extractors and OpenAPI description ([`openapi`]; the router is
//!   [`Embedded::router`]).
//! - [`embed`]: embedding the wallet in another application (router, dispatcher, publisher,
//!   custom channel adapters).
//! - [`app`]: the standalone server's start-up and shutdown.

#![warn(missing_docs)]

pub(crate) mod api;
pub mod app;
pub mod auth;
pub mod channels;
pub mod config;
pub mod crypto;
pub mod dispatch;
pub mod domain;
pub mod embed;
pub(crate) mod error;
pub mod events;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
pub mod outbox;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;

pub use api::openapi;
pub use app::Application;
pub use config::Settings;
pub use embed::{Embedded, Publisher, Wallet, WalletBuilder};
pub use state::AppState;
