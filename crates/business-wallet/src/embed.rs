//! Embedding the wallet in another Rust application.
//!
//! [`Wallet::builder`] turns [`Settings`] (and, optionally, a database pool the application
//! already has and its own channel adapters) into an [`Embedded`] wallet. The application then
//! decides how to run it:
//!
//! - [`Embedded::router`] is the complete HTTP API as an [`axum::Router`], to serve on its own
//!   listener or to merge into the application's router;
//! - [`Embedded::dispatcher`] is the delivery loop, to spawn with a [`CancellationToken`];
//! - [`Embedded::publisher`] publishes catalog events from the application's own code, inside
//!   the application's own transaction, so that its change and the event commit together.
//!
//! Custom channel types are registered with [`WalletBuilder::adapter`]: any implementation of
//! [`Channel`]. Operators then create channels of that type through the channels API, with the
//! adapter's own JSON in the body field `config`, which the adapter validates.
//!
//! ```no_run
//! use std::sync::Arc;
//! use business_wallet::{Settings, Wallet};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run(my_adapter: Arc<dyn business_wallet::channels::Channel>) -> anyhow::Result<()> {
//! let wallet = Wallet::builder(Settings::default())
//!     .adapter(my_adapter)
//!     .build()
//!     .await?;
//! let shutdown = CancellationToken::new();
//! tokio::spawn(wallet.dispatcher().run(shutdown.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let stop = shutdown.clone();
//! axum::serve(listener, wallet.router())
//!     .with_graceful_shutdown(async move { stop.cancelled().await })
//!     .await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::Value;
use sqlx::{PgPool, SqlitePool};
#[cfg(doc)]
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::channels::{Channel, ChannelRegistry};
use crate::config::Settings;
use crate::crypto::SecretBox;
use crate::dispatch::Dispatcher;
use crate::domain::WalletKey;
use crate::events::{self, EventType, TraceContext};
use crate::outbox::{NewEvent, Outbox, Published};
use crate::state::AppState;
use crate::store::{Db, Tx};

/// Entry point of the embedding API; see [`Wallet::builder`].
#[derive(Debug)]
pub struct Wallet;

impl Wallet {
    /// Starts building an embedded wallet from `settings`. Nothing is connected until
    /// [`WalletBuilder::build`].
    ///
    /// `server.listen`, `server.api_enabled` and `server.dispatcher_enabled` are not used here:
    /// the application serves [`Embedded::router`] and spawns [`Embedded::dispatcher`] itself.
    /// Set `public_base_url` to where the router is reachable, since events point their
    /// `dataschema` there.
    pub fn builder(settings: Settings) -> WalletBuilder {
        WalletBuilder {
            settings,
            db: None,
            adapters: Vec::new(),
        }
    }
}

/// Collects what an embedded wallet is made of; see [`Wallet::builder`].
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct WalletBuilder {
    settings: Settings,
    db: Option<Db>,
    adapters: Vec<Arc<dyn Channel>>,
}

impl std::fmt::Debug for WalletBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletBuilder")
            .field("db", &self.db)
            .field("adapters", &self.adapters.iter().map(|a| a.kind()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl WalletBuilder {
    /// Uses a database the application already has instead of connecting to
    /// `database.url`: a [`PgPool`], a [`SqlitePool`] or a [`Db`]. The wallet's tables live
    /// next to the application's own, so that [`Publisher`] can write events in the
    /// application's transactions.
    ///
    /// A [`SqlitePool`] is used for writes and reads alike; SQLite allows one writer at a time,
    /// so a pool of one connection (or a generous busy timeout) avoids `SQLITE_BUSY`.
    pub fn pool(mut self, db: impl Into<Db>) -> WalletBuilder {
        self.db = Some(db.into());
        self
    }

    /// Registers a custom channel type under its [`Channel::kind`]. An adapter whose kind is
    /// a built-in type's name (`WEBHOOK`) replaces the built-in one.
    pub fn adapter(mut self, adapter: Arc<dyn Channel>) -> WalletBuilder {
        self.adapters.push(adapter);
        self
    }

    /// Connects the database (unless [`WalletBuilder::pool`] gave one), runs the migrations
    /// when `database.migrate_on_start` is set, loads or generates the keys, and sets up the
    /// channel types.
    ///
    /// # Errors
    /// The database is unreachable, a migration fails, a key file is unusable, or a built-in
    /// channel type cannot be set up.
    pub async fn build(self) -> anyhow::Result<Embedded> {
        let settings = self.settings;
        let db = match self.db {
            Some(db) => db,
            None => Db::connect(&settings).await?,
        };
        if settings.database.migrate_on_start {
            db.migrate().await.context("database migrations failed")?;
        }
        let mut channels = ChannelRegistry::from_settings(&settings).context("cannot set up the channel types")?;
        for adapter in self.adapters {
            channels.register(adapter);
        }
        let state = AppState {
            channels,
            auth: Arc::new(Authenticator::from_settings(&settings)?),
            secrets: Arc::new(SecretBox::from_settings(&settings)?),
            outbox: Outbox::new(&settings.public_base_url(), settings.integration.max_attempts),
            settings: Arc::new(settings),
            db,
        };
        Ok(Embedded::from_state(state))
    }
}

impl From<PgPool> for Db {
    fn from(pool: PgPool) -> Db {
        Db::Postgres(pool)
    }
}

impl From<SqlitePool> for Db {
    fn from(pool: SqlitePool) -> Db {
        Db::Sqlite {
            writer: pool.clone(),
            reader: pool,
            api_turn: Some(Arc::default()),
        }
    }
}

/// A built wallet: database ready, keys loaded, channel types registered. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Embedded {
    state: AppState,
    publisher: Publisher,
}

impl Embedded {
    fn from_state(state: AppState) -> Embedded {
        let publisher = Publisher::new(state.db.clone(), state.outbox.clone());
        Embedded { state, publisher }
    }

    /// The complete HTTP API (every route of the standalone server, with its middleware),
    /// ready to serve or to merge into the application's router.
    pub fn router(&self) -> axum::Router {
        crate::api::router(self.state.clone())
    }

    /// The delivery dispatcher. Spawn [`Dispatcher::run`] with a [`CancellationToken`]; when
    /// the token is cancelled it stops claiming, lets in-flight deliveries finish and gives
    /// the rest back. Tests may drive it one step at a time with [`Dispatcher::run_once`].
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(&self.state)
    }

    /// The handle with which the application publishes catalog events itself.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// The database the wallet uses.
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// The channel type names on offer, built-in and custom.
    pub fn channel_types(&self) -> Vec<String> {
        self.state.channels.kinds().map(str::to_string).collect()
    }

    /// The shared state behind the router and the dispatcher.
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// Publishes catalog events from the embedding application's code, inside its own
/// transaction: the event and one delivery per subscribed channel are written with the
/// application's change, or not at all. Cheap to clone.
///
/// The transaction is a [`Tx`]: one from [`Publisher::begin`], or the application's own sqlx
/// transaction on the same database wrapped with `Tx::from(tx)`.
///
/// ```no_run
/// # async fn run(wallet: business_wallet::Embedded) -> anyhow::Result<()> {
/// use business_wallet::embed::EventToPublish;
/// use serde_json::json;
///
/// let key = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
/// let publisher = wallet.publisher();
/// let mut tx = publisher.begin().await?;
/// // ... the application's own writes in `tx` ...
/// let data = json!({
///     "walletExternalKey": key,
///     "displayName": "Acme Logistics B.V.",
///     "email": null, "website": null, "phoneNumber": null, "address": null,
///     "createdAt": "2026-05-01T09:42:17.812Z",
///     "createdBy": "importer",
/// });
/// publisher
///     .publish(
///         &mut tx,
///         EventToPublish {
///             event_type: "com.credenco.businesswallet.wallet.created.v1",
///             wallet_external_key: key,
///             subject_values: &[("walletExternalKey", key)],
///             data,
///             correlation_id: "import-2026-05-01",
///         },
///     )
///     .await?;
/// publisher.commit(tx).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Publisher {
    db: Db,
    outbox: Outbox,
    validators: Arc<HashMap<&'static str, jsonschema::Validator>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

/// One event for [`Publisher::publish`].
#[derive(Debug, Clone)]
pub struct EventToPublish<'a> {
    /// The CloudEvents `type`, a catalog entry (see `GET /api/public/event-types`).
    pub event_type: &'a str,
    /// The wallet the event belongs to (`walletexternalkey`, a UUID); its channels and every
    /// platform channel subscribed to the type receive it.
    pub wallet_external_key: &'a str,
    /// A value for every placeholder of the type's subject pattern, e.g.
    /// `[("walletExternalKey", "...")]`.
    pub subject_values: &'a [(&'a str, &'a str)],
    /// The event data; it must validate against the type's JSON Schema.
    pub data: Value,
    /// The `correlationid` extension, shared by the events of one operation.
    pub correlation_id: &'a str,
}

/// Why [`Publisher::publish`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The type is not in the catalog.
    #[error("unknown event type `{0}`")]
    UnknownEventType(String),
    /// The subject pattern has a placeholder that no subject value fills.
    #[error("no value for `{placeholder}` in the subject pattern {pattern}")]
    MissingSubjectValue {
        /// The unfilled placeholder.
        placeholder: String,
        /// The type's subject pattern.
        pattern: &'static str,
    },
    /// The data does not validate against the type's schema; one message per violation.
    #[error("the data does not match the schema of {event_type}: {}", errors.join("; "))]
    InvalidData {
        /// The event type.
        event_type: &'static str,
        /// What is wrong, with the location in the data.
        errors: Vec<String>,
    },
    /// The wallet key is not a UUID.
    #[error(transparent)]
    InvalidWalletKey(#[from] crate::domain::InvalidKey),
    /// The database refused the write; drop (roll back) the transaction.
    #[error("the event could not be written")]
    Database(#[from] sqlx::Error),
}

impl Publisher {
    fn new(db: Db, outbox: Outbox) -> Publisher {
        let validators = events::CATALOG
            .iter()
            .map(|entry| {
                let schema = entry.schema(outbox.base_url());
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .expect("catalog schemas compile (checked by a unit test)");
                (entry.type_name, validator)
            })
            .collect();
        Publisher {
            db,
            outbox,
            validators: Arc::new(validators),
        }
    }

    /// Starts a write transaction on the wallet's database, for the application's own writes
    /// and the events that go with them.
    ///
    /// # Errors
    /// No connection could be had.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.db.begin().await
    }

    /// Validates `event` against the catalog and writes it, with its deliveries, in `tx`.
    /// Nothing is visible (or delivered) until the transaction commits; commit with
    /// [`Publisher::commit`], or call [`Publisher::committed`] after committing yourself.
    ///
    /// # Errors
    /// An unknown type, an unfilled subject placeholder or data that does not match the
    /// schema (nothing is written), or a database failure (drop the transaction then).
    pub async fn publish(&self, tx: &mut Tx, event: EventToPublish<'_>) -> Result<Published, PublishError> {
        self.publish_traced(tx, event, &TraceContext::fresh()).await
    }

    /// [`Publisher::publish`] as part of the operation traced by `trace` (the application's
    /// own W3C trace context, made with [`TraceContext::parse`]): the event carries it as the
    /// distributed-tracing extension. `publish` starts a new trace instead.
    ///
    /// # Errors
    /// As [`Publisher::publish`].
    pub async fn publish_traced(
        &self,
        tx: &mut Tx,
        event: EventToPublish<'_>,
        trace: &TraceContext,
    ) -> Result<Published, PublishError> {
        let entry: &'static EventType =
            events::lookup(event.event_type).ok_or_else(|| PublishError::UnknownEventType(event.event_type.into()))?;
        let wallet = WalletKey::parse(event.wallet_external_key)?;
        let subject = entry.subject(event.subject_values);
        if let Some(start) = subject.find('{') {
            let placeholder = subject[start + 1..].split('}').next().unwrap_or_default().to_string();
            return Err(PublishError::MissingSubjectValue {
                placeholder,
                pattern: entry.subject_pattern,
            });
        }
        if let Some(validator) = self.validators.get(entry.type_name) {
            let errors: Vec<String> = validator
                .iter_errors(&event.data)
                .map(|e| format!("{e} at `{}`", e.instance_path))
                .collect();
            if !errors.is_empty() {
                return Err(PublishError::InvalidData {
                    event_type: entry.type_name,
                    errors,
                });
            }
        }
        let published = self
            .outbox
            .publish(
                tx,
                NewEvent {
                    event_type: entry,
                    wallet_external_key: &wallet,
                    subject_values: event.subject_values,
                    data: event.data,
                    correlation_id: event.correlation_id,
                    trace,
                    time: crate::store::now_ms(),
                },
            )
            .await?;
        Ok(published)
    }

    /// Commits `tx`; the commit hands what it published to the dispatcher of this process, or
    /// wakes that dispatcher to claim it.
    ///
    /// # Errors
    /// The commit failed; nothing was published.
    pub async fn commit(&self, tx: Tx) -> Result<(), sqlx::Error> {
        tx.commit().await
    }

    /// Wakes the dispatcher of this process to claim what is due. Not needed after publishing
    /// (committing the transaction does that); kept for applications that make deliveries due
    /// by other means.
    pub fn committed(&self) {
        self.outbox.committed();
    }
}
