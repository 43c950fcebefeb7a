//! Start-up of the standalone server: from settings to a running instance, and the one
//! shutdown path. It is the embedding API ([`crate::embed`]) plus a listener and the two tasks.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::channels::Channel;
use crate::config::Settings;
use crate::dispatch::Dispatcher;
use crate::embed::Wallet;
use crate::state::AppState;
use crate::telemetry::panic_message;

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
    /// The server, the dispatcher and the retention job are watched: the first of them to end
    /// before `shutdown` (a panic, an error, or a plain return) is logged with its name and
    /// why, the others are stopped as at shutdown, and this returns that failure, so that the
    /// process exits instead of running on without it.
    ///
    /// # Errors
    /// A task ended before `shutdown`, or failed while stopping.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.state.settings.server.shutdown_grace_secs);
        let db = self.state.db.clone();
        // The tasks stop on this token: the caller's shutdown, or a task that ended early.
        let stop = shutdown.child_token();
        let tasks = self.spawn_tasks(&stop);
        let result = supervise(tasks, &shutdown, &stop, grace).await;
        db.close().await;
        tracing::info!("stopped");
        result
    }

    /// Spawns the server, the dispatcher and the retention job (as enabled), each stopping on
    /// `stop`.
    fn spawn_tasks(self, stop: &CancellationToken) -> Tasks {
        let mut tasks = Tasks::default();
        if self.state.settings.server.dispatcher_enabled {
            let dispatcher = Dispatcher::new(&self.state);
            let token = stop.clone();
            tasks.spawn(DISPATCHER, async move {
                dispatcher.run(token).await;
                Ok(())
            });
            // The retention job runs where the dispatcher runs; several instances running it at
            // once only repeat harmless deletes.
            let retention = crate::dispatch::retention::run(
                self.state.db.clone(),
                self.state.settings.integration.retention.clone(),
                stop.clone(),
            );
            tasks.spawn(RETENTION, async move {
                retention.await;
                Ok(())
            });
        }
        if let Some(listener) = self.listener {
            let router = crate::api::router(self.state.clone());
            // Errors that hyper answers before routing get the JSON error body too.
            let listener = crate::api::wire::JsonErrorListener::new(listener);
            if let Some(address) = self.local_addr {
                tracing::info!(%address, "listening");
            }
            let served = crate::api::wire::serve(listener, router, stop.clone());
            tasks.spawn(SERVER, async move {
                served.await;
                Ok(())
            });
        }
        tasks
    }
}

/// Names of the supervised tasks, as logged.
const DISPATCHER: &str = "dispatcher";
const RETENTION: &str = "retention";
const SERVER: &str = "server";

/// Runs until `shutdown`, or until a task ends first; either way cancels `stop` and waits for
/// the tasks to end, giving the server at most `grace` (the dispatcher bounds its own drain).
///
/// A task ending before `shutdown` is a failure even when it returned normally: each of them
/// only returns once told to stop.
async fn supervise(
    mut tasks: Tasks,
    shutdown: &CancellationToken,
    stop: &CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let mut failure = None;
    tokio::select! {
        _ = shutdown.cancelled() => {}
        Some((name, ended)) = tasks.next_end(), if !tasks.is_empty() => {
            tracing::error!(task = name, reason = %ended, "a task ended before shutdown; stopping the instance");
            failure = Some(anyhow::anyhow!("the {name} task {ended}"));
        }
    }
    stop.cancel();
    let deadline = tokio::time::Instant::now() + grace;
    let mut server_cut_off = false;
    while !tasks.is_empty() {
        tokio::select! {
            end = tasks.next_end() => {
                let Some((name, ended)) = end else { break };
                let expected = match ended {
                    Ended::Returned => true,
                    Ended::Aborted => name == SERVER && server_cut_off,
                    Ended::Failed(_) | Ended::Panicked(_) => false,
                };
                if !expected {
                    tracing::error!(task = name, reason = %ended, "a task failed while stopping");
                    failure.get_or_insert_with(|| anyhow::anyhow!("the {name} task {ended}"));
                }
            }
            _ = tokio::time::sleep_until(deadline), if !server_cut_off && tasks.is_running(SERVER) => {
                tracing::warn!("in-flight requests did not finish within the grace period");
                server_cut_off = true;
                tasks.abort(SERVER);
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The long-running tasks of an instance, each under its name.
#[derive(Default)]
struct Tasks {
    set: JoinSet<anyhow::Result<()>>,
    names: HashMap<tokio::task::Id, (&'static str, AbortHandle)>,
}

/// How a task ended.
enum Ended {
    /// It returned `Ok`.
    Returned,
    /// It returned an error.
    Failed(anyhow::Error),
    /// It panicked, with this message.
    Panicked(String),
    /// It was aborted.
    Aborted,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Returned => f.write_str("returned"),
            Ended::Failed(err) => write!(f, "failed: {err:#}"),
            Ended::Panicked(message) => write!(f, "panicked: {message}"),
            Ended::Aborted => f.write_str("was aborted"),
        }
    }
}

impl Tasks {
    fn spawn(&mut self, name: &'static str, task: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), (name, handle));
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn is_running(&self, name: &str) -> bool {
        self.names.values().any(|(n, _)| *n == name)
    }

    fn abort(&self, name: &str) {
        for (n, handle) in self.names.values() {
            if *n == name {
                handle.abort();
            }
        }
    }

    /// Waits for the next task to end; `None` when none is left.
    async fn next_end(&mut self) -> Option<(&'static str, Ended)> {
        let (id, ended) = match self.set.join_next_with_id().await? {
            Ok((id, Ok(()))) => (id, Ended::Returned),
            Ok((id, Err(err))) => (id, Ended::Failed(err)),
            Err(err) if err.is_panic() => (err.id(), Ended::Panicked(panic_message(&*err.into_panic()))),
            Err(err) => (err.id(), Ended::Aborted),
        };
        let name = self.names.remove(&id).map_or("unnamed", |(name, _)| name);
        Some((name, ended))
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;
    use crate::telemetry::MemoryLog;

    /// The server's JSON subscriber writing into memory, for the current thread (the test's
    /// runtime has only that thread, so every task logs there).
    fn capture() -> (MemoryLog, tracing::dispatcher::DefaultGuard) {
        let log = MemoryLog::default();
        let guard = tracing::dispatcher::set_default(&log.json_subscriber());
        (log, guard)
    }

    /// A task that runs until `stop`, as the server and the dispatcher do.
    fn until(stop: &CancellationToken, stopped: &Arc<Mutex<bool>>) -> impl Future<Output = anyhow::Result<()>> {
        let stop = stop.clone();
        let stopped = stopped.clone();
        async move {
            stop.cancelled().await;
            *stopped.lock().unwrap() = true;
            Ok(())
        }
    }

    /// Supervises `failing` (named `name`) next to a task that runs until told to stop; the
    /// caller's shutdown never comes. Returns the result, whether the other task was stopped,
    /// and the log lines.
    async fn supervise_early_end(
        name: &'static str,
        failing: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> (anyhow::Result<()>, bool, Vec<Value>) {
        let (sink, _guard) = capture();
        let shutdown = CancellationToken::new();
        let stop = shutdown.child_token();
        let stopped = Arc::new(Mutex::new(false));
        let mut tasks = Tasks::default();
        tasks.spawn(SERVER, until(&stop, &stopped));
        tasks.spawn(name, failing);
        // Without shutdown, only the early end can make this return; the deadline turns a
        // hang into a failure.
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            supervise(tasks, &shutdown, &stop, Duration::from_secs(2)),
        )
        .await
        .expect("the early end is reported without waiting for shutdown");
        assert!(!shutdown.is_cancelled(), "the caller's token is left alone");
        let stopped = *stopped.lock().unwrap();
        (result, stopped, sink.json_lines())
    }

    fn ended_line<'a>(lines: &'a [Value], task: &str) -> &'a Value {
        lines
            .iter()
            .find(|line| {
                line["message"] == "a task ended before shutdown; stopping the instance"
                    && line["task"] == task
                    && line["level"] == "ERROR"
            })
            .unwrap_or_else(|| panic!("no error line for the {task} task: {lines:?}"))
    }

    #[tokio::test]
    async fn a_panicking_task_is_logged_and_reported_at_once() {
        let (result, stopped, lines) = supervise_early_end(DISPATCHER, async {
            tokio::task::yield_now().await;
            panic!("claim loop broke");
        })
        .await;
        let err = result.unwrap_err().to_string();
        assert_eq!(err, "the dispatcher task panicked: claim loop broke");
        assert!(stopped, "the other tasks are stopped");
        let line = ended_line(&lines, DISPATCHER);
        assert_eq!(line["reason"], "panicked: claim loop broke", "{line}");
    }

    #[tokio::test]
    async fn a_task_that_fails_or_returns_early_is_logged_and_reported_at_once() {
        let (result, stopped, lines) = supervise_early_end(RETENTION, async {
            Err(anyhow::anyhow!("connection refused").context("cannot reach the database"))
        })
        .await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "the retention task failed: cannot reach the database: connection refused"
        );
        assert!(stopped);
        assert_eq!(
            ended_line(&lines, RETENTION)["reason"],
            "failed: cannot reach the database: connection refused"
        );

        let (result, stopped, lines) = supervise_early_end(DISPATCHER, async { Ok(()) }).await;
        assert_eq!(result.unwrap_err().to_string(), "the dispatcher task returned");
        assert!(stopped);
        ended_line(&lines, DISPATCHER);
    }

    #[tokio::test]
    async fn tasks_that_stop_when_told_end_cleanly_at_shutdown() {
        let (sink, _guard) = capture();
        let shutdown = CancellationToken::new();
        let stop = shutdown.child_token();
        let stopped = Arc::new(Mutex::new(false));
        let mut tasks = Tasks::default();
        tasks.spawn(SERVER, until(&stop, &stopped));
        tasks.spawn(DISPATCHER, until(&stop, &stopped));
        shutdown.cancel();
        supervise(tasks, &shutdown, &stop, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(*stopped.lock().unwrap());
        assert!(
            sink.json_lines().iter().all(|line| line["level"] != "ERROR"),
            "{:?}",
            sink.json_lines()
        );
    }

    #[tokio::test]
    async fn a_server_past_its_grace_period_is_cut_off_without_failing() {
        let (sink, _guard) = capture();
        let shutdown = CancellationToken::new();
        let stop = shutdown.child_token();
        let mut tasks = Tasks::default();
        tasks.spawn(SERVER, std::future::pending());
        shutdown.cancel();
        supervise(tasks, &shutdown, &stop, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(sink
            .json_lines()
            .iter()
            .any(|line| line["message"] == "in-flight requests did not finish within the grace period"));
    }

    /// A whole instance over SQLite (API, dispatcher and retention job) whose dispatcher task
    /// ends: the instance reports it, and stops its server, while its caller's shutdown is
    /// still to come.
    #[tokio::test]
    async fn an_instance_whose_dispatcher_ends_stops_and_reports_it() {
        let (sink, _guard) = capture();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        settings.server.listen = "127.0.0.1:0".into();
        let application = Application::build(settings).await.unwrap();
        let shutdown = CancellationToken::new();
        let stop = shutdown.child_token();
        let tasks = application.spawn_tasks(&stop);
        assert!(tasks.is_running(SERVER) && tasks.is_running(DISPATCHER) && tasks.is_running(RETENTION));
        tasks.abort(DISPATCHER);
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            supervise(tasks, &shutdown, &stop, Duration::from_secs(2)),
        )
        .await
        .expect("the early end is reported without waiting for shutdown");
        assert_eq!(result.unwrap_err().to_string(), "the dispatcher task was aborted");
        assert!(stop.is_cancelled() && !shutdown.is_cancelled());
        assert_eq!(ended_line(&sink.json_lines(), DISPATCHER)["reason"], "was aborted");
    }
}
