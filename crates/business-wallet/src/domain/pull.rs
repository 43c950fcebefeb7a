//! Pull delivery, as a receiver that cannot be reached uses it: fetch the next batch of a PULL
//! channel's events, then commit it. Who may: the holder of the channel's secret (its
//! `hmacSecret`, sent as bearer token; the previous one too during a rotation's grace window),
//! or a principal with WALLET_INTEGRATION_DELIVERY_CRUD on the channel's wallet
//! (GLOBAL_WALLET_CRUD for platform channels).
//!
//! At-least-once: a fetched batch is leased to the receiver for the channel's lease
//! (`pull.leaseSeconds`); what it does not commit in time is offered to a later fetch again,
//! with the same CloudEvent `id` (the receiver's dedupe key). See [`crate::channels::pull`] for
//! the cursor and [`crate::store::pull`] for the statements.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::ids::ChannelKey;
use crate::auth::{Authority, Principal};
use crate::channels::kind::PULL;
use crate::channels::pull::{Cursor, PullChannelConfig};
use crate::channels::{ChannelKind, ChannelSecrets, RequestRecord};
use crate::domain::error::DomainError;
use crate::domain::Scope;
use crate::events::CloudEvent;
use crate::state::AppState;
use crate::store::channels::{self as store_channels, ChannelRow};
use crate::store::pull::{self as store_pull, PullState};
use crate::store::{self, rfc3339_ms};

/// Most events one fetch returns.
pub const MAX_BATCH: i64 = 1000;
/// Events a fetch returns when it names no `limit`.
pub const DEFAULT_BATCH: i64 = 100;

/// Who is fetching or committing.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// A bearer JWT's principal.
    Principal(&'a Principal),
    /// A bearer token that is a channel secret (`whsec_...`).
    ChannelSecret(&'a str),
}

/// The next batch of a pull channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullBatch {
    /// The events, oldest first, each a CloudEvent in structured mode (JSON). Empty when there
    /// is nothing to fetch now.
    pub events: Vec<CloudEvent>,
    /// Commit this to acknowledge the batch, and pass it to the next fetch to continue after
    /// it. Opaque. When the batch is empty, the cursor that was given (null when none was).
    pub cursor: Option<String>,
    /// When the batch's lease ends (RFC 3339 UTC): events not committed by then are offered to
    /// a later fetch again. Null for an empty batch.
    pub lease_expires_at: Option<String>,
}

/// Body of a commit.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitBody {
    /// The cursor of the fetched batch to acknowledge.
    #[schema(pattern = r"^p1\.(0|[1-9][0-9]{0,17})\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub cursor: String,
}

/// What a commit acknowledged.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitReport {
    /// Events marked delivered by this commit: 0 when the batch was committed already or its
    /// lease ended and its events went to another fetch (they will be fetched again).
    pub committed: u64,
}

/// Where a pull channel's receiver is, for the channel's page.
#[derive(Debug, Clone)]
pub struct PullStatus {
    /// The path the receiver fetches.
    pub endpoint: String,
    /// Highest delivery id handed out (0: none yet).
    pub fetched_position: i64,
    /// Highest delivery id committed (0: none yet).
    pub committed_position: i64,
    /// Fetches so far.
    pub fetches: i64,
    /// Commits that acknowledged something.
    pub commits: i64,
    /// Last fetch (RFC 3339).
    pub last_fetch_at: Option<String>,
    /// Last commit that acknowledged something (RFC 3339).
    pub last_commit_at: Option<String>,
    /// Events waiting to be fetched.
    pub waiting: i64,
    /// Events fetched and not committed yet.
    pub leased: i64,
}

impl PullStatus {
    fn new(endpoint: String, state: PullState) -> PullStatus {
        PullStatus {
            endpoint,
            fetched_position: state.fetched_position,
            committed_position: state.committed_position,
            fetches: state.fetches,
            commits: state.commits,
            last_fetch_at: state.last_fetch_at.map(rfc3339_ms),
            last_commit_at: state.last_commit_at.map(rfc3339_ms),
            waiting: state.waiting,
            leased: state.leased,
        }
    }
}

fn invalid_cursor() -> DomainError {
    DomainError::invalid_field("cursor", "is not a cursor of this channel's events")
}

/// The `cursor` parameter or field, read.
///
/// # Errors
/// 400 naming `cursor`.
pub fn parse_cursor(text: &str) -> Result<Cursor, DomainError> {
    Cursor::decode(text).map_err(|_| invalid_cursor())
}

/// The `limit` parameter, checked (1 to [`MAX_BATCH`], default [`DEFAULT_BATCH`]).
///
/// # Errors
/// 400 naming `limit`.
pub fn batch_size(limit: Option<i64>) -> Result<i64, DomainError> {
    match limit {
        None => Ok(DEFAULT_BATCH),
        Some(n) if (1..=MAX_BATCH).contains(&n) => Ok(n),
        Some(n) => Err(DomainError::invalid_field(
            "limit",
            format!("must be 1 to {MAX_BATCH} (got {n})"),
        )),
    }
}

/// The path a channel's receiver fetches, under its scope.
pub fn endpoint(scope: &Scope, key: &ChannelKey) -> String {
    match scope {
        Scope::Wallet(wallet) => format!("/api/wallets/{wallet}/integration-channels/{key}/events"),
        Scope::Platform => format!("/api/integration-channels/{key}/events"),
    }
}

/// Whether `token` is one of the channel's secrets now (the current one, or the previous one
/// while its grace window lasts), compared in constant time.
fn holds_secret(secrets: &ChannelSecrets, token: &str, now: i64) -> bool {
    secrets.signing_secrets(now).iter().fold(false, |found, secret| {
        constant_time_eq(secret.as_bytes(), token.as_bytes()) | found
    })
}

/// Compares without leaking where the first difference is (the lengths of secrets are public:
/// every secret has the same one).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The channel the caller may fetch from and commit to, or `None` when a channel secret was
/// presented that is not this channel's (a 401: whether the channel exists is not said).
///
/// # Errors
/// 403/404 for a principal; 404 too for a channel that is not a PULL channel; 409 for a
/// disabled one.
async fn authorize(
    state: &AppState,
    caller: Caller<'_>,
    scope: &Scope,
    key: &ChannelKey,
) -> Result<Option<ChannelRow>, DomainError> {
    let row = match caller {
        Caller::Principal(principal) => {
            super::scope::authorize(state, principal, scope, Authority::WalletIntegrationDeliveryCrud).await?;
            store_channels::find(&state.db, scope, key)
                .await?
                .ok_or_else(|| DomainError::NotFound(format!("channel {key} does not exist")))?
        }
        Caller::ChannelSecret(token) => {
            let Some(row) = store_channels::find(&state.db, scope, key).await? else {
                return Ok(None);
            };
            let secrets = match &row.secrets {
                Some(sealed) => ChannelSecrets::open(&state.secrets, sealed).map_err(DomainError::internal)?,
                None => return Ok(None),
            };
            if !holds_secret(&secrets, token, store::now_ms()) {
                return Ok(None);
            }
            row
        }
    };
    if ChannelKind::parse(&row.channel_type) != ChannelKind::Pull {
        // The channel exists, its events resource does not: only a PULL channel has one.
        return Err(DomainError::NotFound(format!(
            "channel {key} is a {} channel: it has no events to fetch (only {PULL} channels do)",
            row.channel_type
        )));
    }
    if !row.enabled {
        return Err(DomainError::Conflict(format!(
            "channel {key} is disabled: its events wait until it is enabled again"
        )));
    }
    Ok(Some(row))
}

/// The request as the deliveries log keeps it (the bearer token redacted).
fn logged_request(method: &str, url: &str, body: String) -> String {
    let record = RequestRecord {
        method: method.into(),
        url: url.into(),
        headers: vec![("Authorization".into(), crate::channels::prelude::REDACTED.into())],
        body,
    };
    serde_json::to_string(&record).expect("a request record serialises")
}

/// What a fetch asks for.
#[derive(Debug, Clone)]
pub struct FetchRequest<'a> {
    /// Continue after this cursor (none: from the oldest waiting event).
    pub cursor: Option<&'a str>,
    /// Most events (checked with [`batch_size`]).
    pub limit: Option<i64>,
    /// The request's path and query, for the deliveries log.
    pub url: &'a str,
}

/// Fetches the next batch: leases it to the caller and logs a fetch attempt per event.
/// `Ok(None)`: the channel secret presented is not this channel's.
///
/// # Errors
/// 400 for a bad cursor or limit; 403/404/409/422 (see the module).
pub async fn fetch(
    state: &AppState,
    caller: Caller<'_>,
    scope: &Scope,
    key: &ChannelKey,
    request: FetchRequest<'_>,
) -> Result<Option<PullBatch>, DomainError> {
    let given = request.cursor.map(parse_cursor).transpose()?;
    let limit = batch_size(request.limit)?;
    let Some(row) = authorize(state, caller, scope, key).await? else {
        return Ok(None);
    };
    let config = serde_json::from_str(&row.config).map_err(DomainError::internal)?;
    let lease = PullChannelConfig::from_value(&config)
        .map_err(|e| DomainError::internal(anyhow::anyhow!("stored pull block: {e}")))?
        .lease();
    let lease_token = uuid::Uuid::new_v4().to_string();
    let logged = logged_request("GET", request.url, String::new());
    let pulled = store_pull::fetch(
        &state.db,
        &store_pull::Fetch {
            channel_id: row.id,
            after: given.as_ref().map_or(0, |c| c.position),
            limit,
            lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
            lease_token: &lease_token,
            request: &logged,
            started_at: store::now_ms(),
        },
    )
    .await?;
    let Some(last) = pulled.last() else {
        return Ok(Some(PullBatch {
            events: Vec::new(),
            cursor: request.cursor.map(str::to_string),
            lease_expires_at: None,
        }));
    };
    let cursor = Cursor {
        position: last.id,
        lease_token,
    };
    let lease_expires_at = Some(rfc3339_ms(last.due_at));
    let events = pulled
        .iter()
        .map(|p| CloudEvent::from_row(&p.event))
        .collect::<Result<Vec<_>, _>>()
        .map_err(DomainError::internal)?;
    Ok(Some(PullBatch {
        events,
        cursor: Some(cursor.encode()),
        lease_expires_at,
    }))
}

/// Commits a fetched batch: its events still leased to it become DELIVERED, each with a
/// delivered attempt in the log. `Ok(None)`: the channel secret presented is not this
/// channel's.
///
/// # Errors
/// 400 for a bad cursor; 403/404/409/422 (see the module).
pub async fn commit(
    state: &AppState,
    caller: Caller<'_>,
    scope: &Scope,
    key: &ChannelKey,
    body: &CommitBody,
    url: &str,
) -> Result<Option<CommitReport>, DomainError> {
    let cursor = parse_cursor(&body.cursor)?;
    let Some(row) = authorize(state, caller, scope, key).await? else {
        return Ok(None);
    };
    let logged = logged_request("POST", url, json!({ "cursor": body.cursor }).to_string());
    let committed = store_pull::commit(
        &state.db,
        &store_pull::Commit {
            channel_id: row.id,
            lease_token: &cursor.lease_token,
            up_to: cursor.position,
            request: &logged,
            started_at: store::now_ms(),
        },
    )
    .await?;
    let now = store::now_ms();
    for delivery in &committed {
        crate::metrics::attempt(PULL, crate::domain::AttemptOutcome::Delivered.as_str());
        crate::metrics::delivered(now - delivery.created_at);
    }
    Ok(Some(CommitReport {
        committed: committed.len() as u64,
    }))
}

/// Where the receiver of a pull channel is (for the channel's page); `None` for other types.
///
/// # Errors
/// 403/404 as reading the channel; database failure.
pub async fn status(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &ChannelKey,
) -> Result<Option<PullStatus>, DomainError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelRead).await?;
    let row = store_channels::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("channel {key} does not exist")))?;
    if ChannelKind::parse(&row.channel_type) != ChannelKind::Pull {
        return Ok(None);
    }
    let figures = store_pull::state(&state.db, row.id).await?;
    Ok(Some(PullStatus::new(endpoint(scope, key), figures)))
}
