//! Start-up of the standalone server: from settings to a running instance, and the one
//! shutdown path. It is the embedding API ([`crate::embed`]) plus a listener and the two tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::channels::Channel;
use crate::config::Settings;
use crate::dispatch::Dispatcher;
use crate::embed::Wallet;
use crate::state::AppState;

/// A built instance: database connected and migrated, keys loaded, listener bound.
#[derive(Debug)]
pub struct Application {
    state: AppState,
    listener: Option<TcpListener>,
    local_addr: Option<SocketAddr>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) when the API is enabled, then builds the
    /// wallet with [`Wallet::builder`]: connects the database (running migrations when
    /// `database.migrate_on_start`) and loads or generates the keys. Without a configured
    /// `public_base_url`, the bound address is used.
    ///
    /// # Errors
    /// The database is unreachable, a migration fails, a key file is unusable, or the address
    /// cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with_adapters(settings, Vec::new()).await
    }

    /// Like [`Application::build`], and registers custom channel adapters of an embedding
    /// application next to the built-in channel types (an adapter with a built-in type's name
    /// replaces it).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_adapters(
        settings: Settings,
        adapters: Vec<Arc<dyn Channel>>,
    ) -> anyhow::Result<Application> {
        let listener = if settings.server.api_enabled {
            Some(
                TcpListener::bind(&settings.server.listen)
                    .await
                    .with_context(|| format!("cannot listen on {} (server.listen)", settings.server.listen))?,
            )
        } else {
            None
        };
        let local_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let mut settings = settings;
        if settings.public_base_url.is_none() {
            if let Some(addr) = local_addr {
                settings.public_base_url = Some(format!("http://{addr}"));
            }
        }
        let mut builder = Wallet::builder(settings);
        for adapter in adapters {
            builder = builder.adapter(adapter);
        }
        let state = builder.build().await?.state().clone();
        Ok(Application {
            state,
            listener,
            local_addr,
        })
    }

    /// The bound port (0 when the API is disabled).
    pub fn port(&self) -> u16 {
        self.local_addr.map(|a| a.port()).unwrap_or(0)
    }

    /// The bound address, when the API is enabled.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The shared state (database, settings, outbox).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves the API and runs the dispatcher (each when enabled) until `shutdown` is
    /// cancelled; then lets in-flight requests finish (bounded by `server.shutdown_grace_secs`),
    /// lets the dispatcher finish or give back its deliveries, and closes the database.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.state.settings.server.shutdown_grace_secs);
        let db = self.state.db.clone();
        let dispatcher = self
            .state
            .settings
            .server
            .dispatcher_enabled
            .then(|| tokio::spawn(Dispatcher::new(&self.state).run(shutdown.clone())));
        // The retention job runs where the dispatcher runs; several instances running it at
        // once only repeat harmless deletes.
        let retention = self.state.settings.server.dispatcher_enabled.then(|| {
            tokio::spawn(crate::dispatch::retention::run(
                self.state.db.clone(),
                self.state.settings.integration.retention.clone(),
                shutdown.clone(),
            ))
        });
        if let Some(listener) = self.listener {
            let router = crate::api::router(self.state.clone());
            let stop = shutdown.clone();
            // Errors that hyper answers before routing get the JSON error body too.
            let listener = crate::api::wire::JsonErrorListener::new(listener);
            if let Some(address) = self.local_addr {
                tracing::info!(%address, "listening");
            }
            let server = tokio::spawn(crate::api::wire::serve(listener, router, stop));
            shutdown.cancelled().await;
            match tokio::time::timeout(grace, server).await {
                Ok(joined) => joined.context("server task failed")?,
                Err(_) => tracing::warn!("in-flight requests did not finish within the grace period"),
            }
        } else {
            shutdown.cancelled().await;
        }
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        if let Some(dispatcher) = dispatcher {
            if let Err(err) = dispatcher.await {
                tracing::error!(error = %err, "dispatcher task failed");
            }
        }
        db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// A token cancelled on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler cannot fail on unix");
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}
