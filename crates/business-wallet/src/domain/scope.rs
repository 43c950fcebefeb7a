//! Whose channels, deliveries and audit entries an operation is about: one wallet's, or the
//! platform's; and who may act on them.

use super::ids::WalletKey;
use crate::auth::{Authority, Principal};
use crate::domain::error::DomainError;
use crate::state::AppState;
use crate::store;

/// Whose channels and deliveries: a wallet's own, or the platform channels (no wallet), which
/// receive the events of every wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The channels of this wallet and their deliveries.
    Wallet(WalletKey),
    /// The platform channels and their deliveries.
    Platform,
}

impl Scope {
    /// The wallet, or `None` for the platform.
    pub fn wallet(&self) -> Option<&WalletKey> {
        match self {
            Scope::Wallet(w) => Some(w),
            Scope::Platform => None,
        }
    }
}

/// Checks that the principal may act on the scope (a wallet's channels or deliveries: the
/// authority on that wallet; the platform's: GLOBAL_WALLET_CRUD), and that the wallet exists.
///
/// # Errors
/// 403 without the authority; 404 for an unknown wallet.
pub async fn authorize(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    authority: Authority,
) -> Result<(), DomainError> {
    match scope {
        Scope::Platform => principal.require_global(),
        Scope::Wallet(wallet) => {
            principal.require(authority, wallet)?;
            if store::wallets::find(&state.db, wallet).await?.is_none() {
                return Err(super::wallet::not_found(wallet));
            }
            Ok(())
        }
    }
}
