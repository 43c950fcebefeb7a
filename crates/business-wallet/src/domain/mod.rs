//! The domain: wallets and their identifiers, with real key material. Creating either writes
//! the domain rows and the catalog event in one transaction through the [`crate::outbox`].
//!
//! Public are [`keys`] (key generation, did:key and JWK thumbprints) and the vocabulary of a
//! delivery's life that the channel and store interfaces use ([`DeliveryState`],
//! [`AttemptOutcome`], [`Resolution`]) and the external keys ([`ids`]); the services behind the HTTP API are reached through the
//! API (or, for events, [`crate::Publisher`]).

pub(crate) mod channel;
pub(crate) mod delivery;
pub(crate) mod erasure;
pub mod error;
pub(crate) mod history;
pub(crate) mod identifier;
pub mod ids;
pub mod keys;
pub(crate) mod page;
pub(crate) mod pull;
pub(crate) mod scope;
pub(crate) mod validate;
pub(crate) mod wallet;

pub use delivery::{AttemptOutcome, DeliveryState, Resolution, UnknownValue};
pub use error::DomainError;
pub use ids::{ChannelKey, DeliveryKey, IdentifierKey, InvalidKey, WalletKey};
pub use scope::Scope;
