//! The shared state handed to every request handler and to the dispatcher.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::Authenticator;
use crate::channels::ChannelRegistry;
use crate::config::Settings;
use crate::crypto::SecretBox;
use crate::outbox::Outbox;
use crate::store::Db;

/// Handles to everything a request may need; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The validated settings.
    pub settings: Arc<Settings>,
    /// Token validation.
    pub auth: Arc<Authenticator>,
    /// Encryption at rest.
    pub secrets: Arc<SecretBox>,
    /// Event publishing.
    pub outbox: Outbox,
    /// The channel types this instance offers (validation on save, delivery, test sends).
    pub channels: ChannelRegistry,
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
