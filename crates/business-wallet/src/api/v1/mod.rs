//! Version 1 of the wallet API: one file per resource, each with its handlers.

pub mod channels;
pub mod deliveries;
pub mod erasure;
pub mod history;
pub mod identifiers;
pub mod pull;
pub mod wallets;

use crate::domain::{Scope, WalletKey};
use crate::error::ApiError;

/// The scope of a route under `/api/wallets/{walletExternalKey}/...`.
///
/// # Errors
/// 400 when the path's wallet key is not a UUID.
fn wallet_scope(wallet: &str) -> Result<Scope, ApiError> {
    Ok(Scope::Wallet(WalletKey::parse(wallet)?))
}
