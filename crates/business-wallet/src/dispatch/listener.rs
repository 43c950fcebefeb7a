//! The PostgreSQL `LISTEN` connection that wakes this instance's dispatcher when another
//! instance publishes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Forwards PostgreSQL notifications on the outbox channel to the in-process wake-up, and wakes
/// once after every (re)connection so that anything published meanwhile is claimed. A
/// notification from this process's own outbox is skipped: its commit woke the dispatcher
/// in-process already.
pub(super) async fn listen(pool: sqlx::PgPool, wake: Arc<Notify>, own: Arc<str>, shutdown: CancellationToken) {
    use sqlx::postgres::PgListener;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(crate::outbox::NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = shutdown.cancelled() => return,
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection failed; relying on polling until it is back");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        wake.notify_one();
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) if notification.payload() == &*own => {}
                Ok(Some(_)) => wake.notify_one(),
                // The connection dropped; the next call reconnects. Catch up on what was missed.
                Ok(None) => wake.notify_one(),
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection lost");
                    break;
                }
            }
        }
    }
}
