//! Access: bearer JWT validation, the authorities, and minting tokens with the local key.
//!
//! Keys come from one of two places, fixed by configuration: a JWKS URL (RS256 or ES256 keys,
//! cached and refreshed) or a local HS256 key file generated into the data directory. The
//! algorithm a token is checked with is the one of the configured key; the token's own `alg`
//! header is never trusted to choose it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use crate::channels::webhook::body::read_limited;
use crate::config::Settings;
use crate::crypto::read_or_create_key_file;
use crate::domain::{DomainError, WalletKey};
use crate::error::ApiError;

/// A permission carried in a token's `authorities` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Authority {
    /// View a wallet's channels (never their secrets).
    WalletIntegrationChannelRead,
    /// Create, edit, rotate and delete a wallet's channels. Implies read.
    WalletIntegrationChannelCrud,
    /// View a wallet's deliveries log.
    WalletIntegrationDeliveryRead,
    /// Replay and dismiss a wallet's deliveries. Implies read.
    WalletIntegrationDeliveryCrud,
    /// Create a wallet's identifiers.
    WalletIdentifierCrud,
    /// Everything on every wallet, creating wallets, and platform channels.
    GlobalWalletCrud,
}

impl Authority {
    /// Every authority, in a stable order.
    pub const ALL: [Authority; 6] = [
        Authority::WalletIntegrationChannelRead,
        Authority::WalletIntegrationChannelCrud,
        Authority::WalletIntegrationDeliveryRead,
        Authority::WalletIntegrationDeliveryCrud,
        Authority::WalletIdentifierCrud,
        Authority::GlobalWalletCrud,
    ];

    /// The name used in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::WalletIntegrationChannelRead => "WALLET_INTEGRATION_CHANNEL_READ",
            Authority::WalletIntegrationChannelCrud => "WALLET_INTEGRATION_CHANNEL_CRUD",
            Authority::WalletIntegrationDeliveryRead => "WALLET_INTEGRATION_DELIVERY_READ",
            Authority::WalletIntegrationDeliveryCrud => "WALLET_INTEGRATION_DELIVERY_CRUD",
            Authority::WalletIdentifierCrud => "WALLET_IDENTIFIER_CRUD",
            Authority::GlobalWalletCrud => "GLOBAL_WALLET_CRUD",
        }
    }

    /// The authority that implies this one, if any (CRUD implies READ).
    fn implied_by(self) -> Option<Authority> {
        match self {
            Authority::WalletIntegrationChannelRead => Some(Authority::WalletIntegrationChannelCrud),
            Authority::WalletIntegrationDeliveryRead => Some(Authority::WalletIntegrationDeliveryCrud),
            _ => None,
        }
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authority name that the product does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown authority `{0}`")]
pub struct UnknownAuthority(pub String);

impl FromStr for Authority {
    type Err = UnknownAuthority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Authority::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAuthority(s.to_string()))
    }
}

/// The caller of a request, from a validated token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's `sub`.
    pub sub: String,
    /// Known authorities of the token (unknown names are ignored).
    pub authorities: BTreeSet<Authority>,
    /// The wallet that non-global authorities apply to.
    pub wallet: Option<String>,
}

impl Principal {
    /// Whether the principal holds GLOBAL_WALLET_CRUD.
    pub fn is_global(&self) -> bool {
        self.authorities.contains(&Authority::GlobalWalletCrud)
    }

    /// Whether the principal may do what `authority` grants on `wallet`.
    pub fn has(&self, authority: Authority, wallet: &WalletKey) -> bool {
        if self.is_global() {
            return true;
        }
        let held = self.authorities.contains(&authority)
            || authority.implied_by().is_some_and(|a| self.authorities.contains(&a));
        held && self.wallet.as_deref() == Some(wallet.as_str())
    }

    /// Like [`Principal::has`], as a 403.
    ///
    /// # Errors
    /// 403 naming the missing authority.
    pub(crate) fn require(&self, authority: Authority, wallet: &WalletKey) -> Result<(), DomainError> {
        if self.has(authority, wallet) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "this requires {authority} on wallet {wallet}"
            )))
        }
    }

    /// Requires GLOBAL_WALLET_CRUD.
    ///
    /// # Errors
    /// 403.
    pub(crate) fn require_global(&self) -> Result<(), DomainError> {
        if self.is_global() {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "this requires {}",
                Authority::GlobalWalletCrud
            )))
        }
    }

    /// The wallets this principal may read: every wallet (`None`) with GLOBAL_WALLET_CRUD, else
    /// the token's own wallet when it grants something on it (the rule of
    /// [`Principal::require_any_on`]).
    ///
    /// # Errors
    /// 403 for a token that names no wallet or grants nothing.
    pub(crate) fn readable_wallets(&self) -> Result<Option<&str>, DomainError> {
        if self.is_global() {
            return Ok(None);
        }
        match self.wallet.as_deref() {
            Some(wallet) if !self.authorities.is_empty() => Ok(Some(wallet)),
            _ => Err(DomainError::Forbidden(format!(
                "this requires {} or a token that grants something on a wallet",
                Authority::GlobalWalletCrud
            ))),
        }
    }

    /// Requires some authority on `wallet` (reading the wallet itself and its identifiers).
    ///
    /// # Errors
    /// 403.
    pub(crate) fn require_any_on(&self, wallet: &WalletKey) -> Result<(), DomainError> {
        if self.is_global() || (!self.authorities.is_empty() && self.wallet.as_deref() == Some(wallet.as_str())) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "this token grants nothing on wallet {wallet}"
            )))
        }
    }
}

/// The claims the product reads and, for local tokens, writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Subject.
    pub sub: String,
    /// Authority names.
    #[serde(default)]
    pub authorities: Vec<String>,
    /// Wallet that non-global authorities apply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, written into local tokens when `auth.audience` is set. Never read from here:
    /// a token may carry a list, which the validation checks on its own.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Validates bearer tokens against the configured keys.
pub struct Authenticator {
    source: KeySource,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

enum KeySource {
    Local(DecodingKey),
    Jwks(JwksCache),
}

struct JwksCache {
    url: String,
    client: reqwest::Client,
    max_age: Duration,
    keys: RwLock<Option<FetchedKeys>>,
    refresh: Mutex<()>,
}

struct FetchedKeys {
    fetched: Instant,
    keys: Vec<VerificationKey>,
}

struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The largest key set read; a set of a few dozen keys is well under it.
const JWKS_RESPONSE_LIMIT: usize = 256 * 1024;

/// Shortest interval between two fetches caused by unknown key ids.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

impl Authenticator {
    /// Builds the validator the settings describe; for the local key, creates the key file
    /// (mode 0600) when missing.
    ///
    /// # Errors
    /// The key file cannot be read or created, or the HTTP client cannot be built.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Authenticator> {
        let source = match &settings.auth.jwks_url {
            Some(url) => KeySource::Jwks(JwksCache {
                url: url.clone(),
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
                max_age: Duration::from_secs(settings.auth.jwks_refresh_secs.unwrap_or(300)),
                keys: RwLock::new(None),
                refresh: Mutex::new(()),
            }),
            None => KeySource::Local(DecodingKey::from_secret(&local_key(settings)?)),
        };
        Ok(Authenticator {
            source,
            issuer: settings.auth.issuer.clone(),
            audience: settings.auth.audience.clone(),
            leeway: settings.auth.leeway_secs.unwrap_or(30),
        })
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        // A configured issuer or audience is a required claim: the library checks `iss` and
        // `aud` only when a token carries them, so a token without them must be refused here.
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// Validates a token and returns its principal.
    ///
    /// # Errors
    /// 401 for a token that is malformed, expired, not yet valid, wrongly signed or for another
    /// issuer or audience; 503 when the key set cannot be fetched.
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let invalid = |e: jsonwebtoken::errors::Error| ApiError::Unauthorized(format!("invalid bearer token: {e}"));
        let claims = match &self.source {
            KeySource::Local(key) => {
                jsonwebtoken::decode::<Claims>(token, key, &self.validation(Algorithm::HS256))
                    .map_err(invalid)?
                    .claims
            }
            KeySource::Jwks(cache) => {
                let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
                let (algorithm, key) = cache.key_for(header.kid.as_deref()).await?;
                jsonwebtoken::decode::<Claims>(token, &key, &self.validation(algorithm))
                    .map_err(invalid)?
                    .claims
            }
        };
        // The subject is stored as the actor of what the request changes; the wallet claim is
        // compared with stored keys. A control character (NUL above all, which PostgreSQL
        // cannot store) makes the token unusable rather than the request a server error.
        for (claim, value) in [("sub", Some(&claims.sub)), ("wallet", claims.wallet.as_ref())] {
            if value.is_some_and(|v| v.chars().any(char::is_control)) {
                return Err(ApiError::Unauthorized(format!(
                    "invalid bearer token: the `{claim}` claim contains a control character"
                )));
            }
        }
        Ok(Principal {
            sub: claims.sub,
            authorities: claims.authorities.iter().filter_map(|a| a.parse().ok()).collect(),
            wallet: claims.wallet,
        })
    }
}

impl JwksCache {
    async fn key_for(&self, kid: Option<&str>) -> Result<(Algorithm, DecodingKey), ApiError> {
        if let Some(found) = self.lookup(kid, false).await {
            return Ok(found);
        }
        // Unknown kid or stale set: fetch once (one fetch at a time, rate limited).
        let _guard = self.refresh.lock().await;
        if let Some(found) = self.lookup(kid, false).await {
            return Ok(found);
        }
        let recently = self
            .keys
            .read()
            .await
            .as_ref()
            .is_some_and(|k| k.fetched.elapsed() < JWKS_MIN_REFETCH);
        if !recently {
            let keys = self.fetch().await?;
            *self.keys.write().await = Some(FetchedKeys {
                fetched: Instant::now(),
                keys,
            });
        }
        self.lookup(kid, true)
            .await
            .ok_or_else(|| ApiError::Unauthorized("invalid bearer token: no key matches its key id".into()))
    }

    async fn lookup(&self, kid: Option<&str>, allow_stale: bool) -> Option<(Algorithm, DecodingKey)> {
        let guard = self.keys.read().await;
        let fetched = guard.as_ref()?;
        if !allow_stale && fetched.fetched.elapsed() > self.max_age {
            return None;
        }
        let key = match kid {
            Some(kid) => fetched.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if fetched.keys.len() == 1 => fetched.keys.first(),
            None => None,
        }?;
        Some((key.algorithm, key.key.clone()))
    }

    async fn fetch(&self) -> Result<Vec<VerificationKey>, ApiError> {
        let unavailable = |e: reqwest::Error| {
            tracing::warn!(error = %e, url = %self.url, "cannot fetch the JWKS");
            ApiError::Unavailable("the token keys cannot be fetched; try again".into())
        };
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?;
        let bytes = read_limited(response, JWKS_RESPONSE_LIMIT).await.map_err(|e| {
            tracing::warn!(error = %e, url = %self.url, "cannot read the JWKS");
            ApiError::Unavailable("the token keys cannot be fetched; try again".into())
        })?;
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| {
            tracing::warn!(error = %e, url = %self.url, "the JWKS is not a key set");
            ApiError::Unavailable("the token keys cannot be fetched; try again".into())
        })?;
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let algorithm = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
                    _ => return None,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(VerificationKey {
                    kid: jwk.common.key_id.clone(),
                    algorithm,
                    key,
                })
            })
            .collect();
        Ok(keys)
    }
}

fn local_key(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    read_or_create_key_file(&settings.local_key_file(), 32)
}

/// Mints a token signed with the local HS256 key (creating the key when missing).
///
/// # Errors
/// An unknown authority name, or the key file cannot be read or created.
pub fn mint_local_token(
    settings: &Settings,
    sub: &str,
    authorities: &[String],
    wallet: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<String> {
    for name in authorities {
        name.parse::<Authority>()?;
    }
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_string(),
        authorities: authorities.to_vec(),
        wallet: wallet.map(str::to_string),
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        iat: Some(now),
        nbf: None,
        iss: settings.auth.issuer.clone(),
        aud: settings.auth.audience.clone(),
    };
    let key = EncodingKey::from_secret(&local_key(settings)?);
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)?)
}

impl<S> FromRequestParts<S> for Principal
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
        let auth = Arc::<Authenticator>::from_ref(state);
        auth.authenticate(token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(authorities: &[Authority], wallet: Option<&str>) -> Principal {
        Principal {
            sub: "s".into(),
            authorities: authorities.iter().copied().collect(),
            wallet: wallet.map(str::to_string),
        }
    }

    #[test]
    fn crud_implies_read_only_on_its_own_wallet() {
        let a = WalletKey::generate();
        let b = WalletKey::generate();
        let p = principal(&[Authority::WalletIntegrationChannelCrud], Some(a.as_str()));
        assert!(p.has(Authority::WalletIntegrationChannelRead, &a));
        assert!(p.has(Authority::WalletIntegrationChannelCrud, &a));
        assert!(!p.has(Authority::WalletIntegrationChannelRead, &b));
        assert!(!p.has(Authority::WalletIntegrationDeliveryRead, &a));
        let read = principal(&[Authority::WalletIntegrationChannelRead], Some(a.as_str()));
        assert!(!read.has(Authority::WalletIntegrationChannelCrud, &a));
        let global = principal(&[Authority::GlobalWalletCrud], None);
        assert!(global.has(Authority::WalletIntegrationDeliveryCrud, &b));
    }

    #[test]
    fn authority_names_round_trip() {
        for a in Authority::ALL {
            assert_eq!(a.as_str().parse::<Authority>().unwrap(), a);
        }
        assert!("WALLET_ADMIN".parse::<Authority>().is_err());
    }

    #[tokio::test]
    async fn local_tokens_validate_and_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let auth = Authenticator::from_settings(&settings).unwrap();
        let token = mint_local_token(
            &settings,
            "admin",
            &["GLOBAL_WALLET_CRUD".into()],
            None,
            Duration::from_secs(60),
        )
        .unwrap();
        let p = auth.authenticate(&token).await.unwrap();
        assert_eq!(p.sub, "admin");
        assert!(p.is_global());
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(
            auth.authenticate(&tampered).await,
            Err(ApiError::Unauthorized(_))
        ));
        assert!(mint_local_token(&settings, "x", &["NOPE".into()], None, Duration::from_secs(1)).is_err());
    }
}
