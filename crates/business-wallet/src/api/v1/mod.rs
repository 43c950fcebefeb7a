//! Version 1 of the wallet API: one file per resource, each with its handlers.

pub mod channels;
pub mod deliveries;
pub mod history;
pub mod identifiers;
pub mod wallets;
