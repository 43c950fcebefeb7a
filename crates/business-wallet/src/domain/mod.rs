//! The domain: wallets and their identifiers, with real key material. Creating either writes
//! the domain rows and the catalog event in one transaction through the [`crate::outbox`].

pub mod channel;
pub mod delivery;
pub mod identifier;
pub mod keys;
pub mod validate;
pub mod wallet;
