//! Test harness shared by the integration test binaries: a real application on 127.0.0.1:0
//! over a throwaway database (a fresh SQLite file, or a fresh PostgreSQL database per test).
//!
//! PostgreSQL comes from `BUSINESS_WALLET_TEST_POSTGRES_URL` (the README's test command sets
//! it); a PostgreSQL test without it fails with a message saying so.
#![allow(dead_code)]

use std::time::Duration;

use business_wallet::config::Settings;
use business_wallet::{AppState, Application};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Environment variable naming the PostgreSQL server used by the tests.
#[path = "postgres.rs"]
mod postgres_support;

pub const POSTGRES_ENV: &str = "BUSINESS_WALLET_TEST_POSTGRES_URL";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// Runs one async test body on both backends: `both_backends!(name)` expects
/// `async fn name(app: TestApp)` and makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::spawn_app($crate::common::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::spawn_app($crate::common::Backend::Postgres).await).await
            }
        }
    )+};
}

/// Like `both_backends!` for tests that build their own application (other settings):
/// `both_backend_kinds!(name)` expects `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_backend_kinds {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )+};
}

/// A variable that a set-up script exports for the broker tests; a clear failure without it.
pub fn setup_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.sh (or source scripts/setup/brokers.sh)"))
}

/// A running application and helpers to call it.
pub struct TestApp {
    /// `http://127.0.0.1:port`.
    pub address: String,
    /// The application's shared state (database, settings).
    pub state: AppState,
    /// The settings it runs with.
    pub settings: Settings,
    /// HTTP client.
    pub client: reqwest::Client,
    /// Which backend.
    pub backend: Backend,
    /// A GLOBAL_WALLET_CRUD token.
    pub admin_token: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A fresh, empty PostgreSQL database; returns its URL.
pub async fn fresh_postgres_database() -> String {
    postgres_support::fresh_postgres_database("bwtest").await
}

/// Settings for a test application on `backend`, with its own data directory.
pub async fn test_settings(backend: Backend, dir: &std::path::Path) -> Settings {
    let mut settings = Settings {
        data_dir: dir.to_path_buf(),
        ..Settings::default()
    };
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.shutdown_grace_secs = 2;
    // Tests drive the dispatcher one step at a time (`Dispatcher::run_once`), so that delivery
    // rows only change when a test says so.
    settings.server.dispatcher_enabled = false;
    settings.database.url = Some(match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("test.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    });
    settings.database.max_connections = 5;
    settings
}

/// Starts an application with default test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts an application after `adjust` changed its settings.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_adapters(backend, adjust, Vec::new()).await
}

/// Like [`spawn_app_with`], with custom channel adapters registered (as an embedding
/// application would).
pub async fn spawn_app_with_adapters(
    backend: Backend,
    adjust: impl FnOnce(&mut Settings),
    adapters: Vec<std::sync::Arc<dyn business_wallet::channels::Channel>>,
) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        business_wallet::telemetry::init(&Default::default());
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(backend, dir.path()).await;
    adjust(&mut settings);
    let application = Application::build_with_adapters(settings.clone(), adapters)
        .await
        .expect("application builds");
    let address = format!("http://{}", application.local_addr().expect("API enabled"));
    let state = application.state().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let admin_token = business_wallet::auth::mint_local_token(
        &settings,
        "admin",
        &["GLOBAL_WALLET_CRUD".into()],
        None,
        Duration::from_secs(3600),
    )
    .unwrap();
    TestApp {
        address,
        state,
        settings,
        client: reqwest::Client::new(),
        backend,
        admin_token,
        shutdown,
        _dir: dir,
    }
}

impl TestApp {
    /// Mints a token with the application's local key.
    pub fn token(&self, sub: &str, authorities: &[&str], wallet: Option<&str>) -> String {
        let authorities: Vec<String> = authorities.iter().map(|a| a.to_string()).collect();
        business_wallet::auth::mint_local_token(&self.settings, sub, &authorities, wallet, Duration::from_secs(3600))
            .unwrap()
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends `method` to `path` as admin, with an optional JSON body; the status and the JSON
    /// answer (`null` when the answer is not JSON).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs JSON with an optional bearer token.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// GETs with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// Creates a wallet as admin and returns its JSON.
    pub async fn create_wallet(&self, display_name: &str) -> Value {
        let response = self
            .post(
                "/api/v1/wallets",
                Some(&self.admin_token),
                &json!({ "displayName": display_name }),
            )
            .await;
        assert_eq!(response.status(), 201, "creating a wallet");
        response.json().await.unwrap()
    }

    /// Runs a statement directly on the database (test set-up and fault injection).
    pub async fn execute(&self, sql: &str) {
        use business_wallet::store::Db;
        match &self.state.db {
            Db::Postgres(pool) => {
                sqlx::raw_sql(sql).execute(pool).await.expect(sql);
            }
            Db::Sqlite { writer, .. } => {
                sqlx::raw_sql(sql).execute(writer).await.expect(sql);
            }
        }
    }

    /// Counts rows matching a query of the form `SELECT COUNT(*) ...`.
    pub async fn count(&self, sql: &str) -> i64 {
        use business_wallet::store::Db;
        match &self.state.db {
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql),
            Db::Sqlite { writer, .. } => sqlx::query_scalar(sql).fetch_one(writer).await.expect(sql),
        }
    }

    /// The one text column (which may be NULL) of every row a query returns, in its order.
    pub async fn texts(&self, sql: &str) -> Vec<Option<String>> {
        use business_wallet::store::Db;
        match &self.state.db {
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.expect(sql),
            Db::Sqlite { writer, .. } => sqlx::query_scalar(sql).fetch_all(writer).await.expect(sql),
        }
    }

    /// Inserts a channel row directly (the channels API is not needed for outbox tests) and
    /// returns its row id.
    pub async fn insert_channel(&self, wallet: Option<&str>, name: &str, enabled: bool, event_types: &[&str]) -> i64 {
        use business_wallet::store::Db;
        let insert = "INSERT INTO integration_channel (channel_external_key, wallet_external_key, name, channel_type, enabled, config, created_at, updated_at, created_by, updated_by) \
                      VALUES ($1, $2, $3, 'WEBHOOK', $4, '{\"url\":\"https://receiver.example/hook\"}', 0, 0, 'test', 'test') RETURNING id";
        let key = uuid::Uuid::new_v4().to_string();
        let id: i64 = match &self.state.db {
            Db::Postgres(pool) => sqlx::query_scalar(insert)
                .bind(&key)
                .bind(wallet)
                .bind(name)
                .bind(enabled)
                .fetch_one(pool)
                .await
                .unwrap(),
            Db::Sqlite { writer, .. } => sqlx::query_scalar(insert)
                .bind(&key)
                .bind(wallet)
                .bind(name)
                .bind(enabled)
                .fetch_one(writer)
                .await
                .unwrap(),
        };
        for event_type in event_types {
            self.execute(&format!(
                "INSERT INTO integration_channel_subscription (channel_id, event_type) VALUES ({id}, '{event_type}')"
            ))
            .await;
        }
        id
    }

    /// Inserts a webhook channel row with `url`, its secrets sealed with the application's key,
    /// and its subscriptions; returns its row id.
    pub async fn insert_webhook_channel(
        &self,
        wallet: Option<&str>,
        url: &str,
        secrets: &business_wallet::channels::ChannelSecrets,
        enabled: bool,
        event_types: &[&str],
    ) -> i64 {
        self.insert_webhook_channel_with(wallet, &json!({ "url": url }), secrets, enabled, event_types)
            .await
    }

    /// Like [`TestApp::insert_webhook_channel`], with a complete webhook type block (timeout,
    /// API key header, OAuth2 client).
    pub async fn insert_webhook_channel_with(
        &self,
        wallet: Option<&str>,
        config: &Value,
        secrets: &business_wallet::channels::ChannelSecrets,
        enabled: bool,
        event_types: &[&str],
    ) -> i64 {
        use business_wallet::store::Db;
        let insert = "INSERT INTO integration_channel (channel_external_key, wallet_external_key, name, channel_type, enabled, config, secrets, created_at, updated_at, created_by, updated_by) \
                      VALUES ($1, $2, $3, 'WEBHOOK', $4, $5, $6, 0, 0, 'test', 'test') RETURNING id";
        let key = uuid::Uuid::new_v4().to_string();
        let name = format!("webhook {key}");
        let sealed = secrets.seal(&self.state.secrets);
        let config = config.to_string();
        let id: i64 = match &self.state.db {
            Db::Postgres(pool) => sqlx::query_scalar(insert)
                .bind(&key)
                .bind(wallet)
                .bind(&name)
                .bind(enabled)
                .bind(&config)
                .bind(&sealed)
                .fetch_one(pool)
                .await
                .unwrap(),
            Db::Sqlite { writer, .. } => sqlx::query_scalar(insert)
                .bind(&key)
                .bind(wallet)
                .bind(&name)
                .bind(enabled)
                .bind(&config)
                .bind(&sealed)
                .fetch_one(writer)
                .await
                .unwrap(),
        };
        for event_type in event_types {
            self.execute(&format!(
                "INSERT INTO integration_channel_subscription (channel_id, event_type) VALUES ({id}, '{event_type}')"
            ))
            .await;
        }
        id
    }

    /// Makes every PENDING delivery due now, as if its back-off had passed.
    pub async fn make_deliveries_due(&self) {
        self.execute("UPDATE integration_delivery SET due_at = 0 WHERE state = 'PENDING'")
            .await;
    }
}
