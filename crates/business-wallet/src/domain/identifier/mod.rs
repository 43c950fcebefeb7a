//! Identifiers of a wallet (DID, X509, JWK): validation of the create body, generation of the
//! key material, and creation with its `identifier.created.v1` event.
//!
//! Private keys are encrypted with the secret box before they are stored and are never
//! returned.

mod material;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::ids::{IdentifierKey, WalletKey};
use super::keys::KeyType;
use super::validate::required_text;
use crate::auth::{Authority, Principal};
use crate::domain::error::DomainError;
use crate::events::{TraceContext, IDENTIFIER_CREATED_V1};
use crate::outbox::NewEvent;
use crate::state::AppState;
use crate::store::{self, identifiers::IdentifierRow, rfc3339_ms};
use material::make_material;

/// Kind of identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum IdentifierType {
    /// A decentralized identifier.
    #[serde(rename = "DID")]
    Did,
    /// An X.509 certificate, identified by its subject.
    #[serde(rename = "X509")]
    X509,
    /// A JSON Web Key, identified by its RFC 7638 thumbprint.
    #[serde(rename = "JWK")]
    Jwk,
}

impl IdentifierType {
    fn as_str(self) -> &'static str {
        match self {
            IdentifierType::Did => "DID",
            IdentifierType::X509 => "X509",
            IdentifierType::Jwk => "JWK",
        }
    }
}

/// DID method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum DidType {
    /// `did:web`, built from a domain.
    #[serde(rename = "did:web")]
    Web,
    /// `did:key`, from a generated key pair.
    #[serde(rename = "did:key")]
    Key,
    /// `did:ebsi`, with an environment such as `pilot` or `production`.
    #[serde(rename = "did:ebsi")]
    Ebsi,
}

impl DidType {
    fn as_str(self) -> &'static str {
        match self {
            DidType::Web => "did:web",
            DidType::Key => "did:key",
            DidType::Ebsi => "did:ebsi",
        }
    }
}

/// Algorithm of a generated key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum KeyAlgorithm {
    /// Ed25519 (EdDSA).
    #[serde(rename = "Ed25519")]
    Ed25519,
    /// NIST P-256 (ES256).
    #[serde(rename = "P-256")]
    P256,
}

impl From<KeyAlgorithm> for KeyType {
    fn from(k: KeyAlgorithm) -> Self {
        match k {
            KeyAlgorithm::Ed25519 => KeyType::Ed25519,
            KeyAlgorithm::P256 => KeyType::P256,
        }
    }
}

impl KeyAlgorithm {
    fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "Ed25519",
            KeyAlgorithm::P256 => "P-256",
        }
    }
}

/// Body of `POST /api/v1/wallets/{walletExternalKey}/identifiers`. Its OpenAPI schema (below)
/// lists each valid combination of fields as a variant of its own.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIdentifier {
    /// DID, X509 or JWK.
    pub identifier_type: IdentifierType,
    /// Label (1 to 200 characters).
    pub display_name: String,
    /// DID method; required for DID.
    #[serde(default)]
    pub did_type: Option<DidType>,
    /// Domain (with optional port and path) for did:web.
    #[serde(default)]
    pub domain: Option<String>,
    /// Environment for did:ebsi, e.g. `pilot` or `production`.
    #[serde(default)]
    pub did_environment: Option<String>,
    /// Key algorithm for did:key, did:ebsi and JWK (default Ed25519; P-256 for did:ebsi).
    #[serde(default)]
    pub key_type: Option<KeyAlgorithm>,
    /// X.500 distinguished name of a generated self-signed certificate, e.g.
    /// `CN=Issuer,O=Example B.V.,C=NL` (X509).
    #[serde(default)]
    pub subject: Option<String>,
    /// A supplied certificate in PEM (X509), instead of `subject`.
    #[serde(default)]
    pub certificate_pem: Option<String>,
}

/// A did:web domain as [`super::keys::did_web`] reads it: a host name (letters, digits, hyphens; any
/// letter case), an optional port, and optional path segments of letters, digits, `.`, `-`, `_`.
const DID_WEB_DOMAIN: &str = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){0,8}[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?::[1-9][0-9]{0,3})?(?:/(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}|\.{1,2}[A-Za-z0-9_-][A-Za-z0-9._-]{0,61}))*/?$";

/// One value of a generated certificate's subject: printable characters other than the
/// separators `\ , + ;`, not starting or ending with a space.
fn dn_value(max: usize) -> String {
    let char = r"[!-*\--:<-\[\]-~\xA0-\u07FF]";
    let inner = r"[ !-*\--:<-\[\]-~\xA0-\u07FF]";
    format!("{char}(?:{inner}{{0,{}}}{char})?", max - 2)
}

/// The subject of a generated certificate: `CN=...` then, each at most once and in this order,
/// `O`, `OU`, `L`, `ST` and a two-letter `C`. (The server also reads other orders, escapes and
/// letter cases; this is the form the description promises.)
fn dn_pattern() -> String {
    format!(
        "^CN={cn}(?:,O={o})?(?:,OU={o})?(?:,L={l})?(?:,ST={l})?(?:,C=[A-Za-z]{{2}})?$",
        cn = dn_value(64),
        o = dn_value(64),
        l = dn_value(128)
    )
}

impl utoipa::PartialSchema for CreateIdentifier {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::api::doc::{closed_object, null, one_of_strings, optional_one_of_strings, required_text};
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};

        const KEY_TYPES: [&str; 2] = ["Ed25519", "P-256"];
        const FIELDS: [&str; 6] = [
            "didType",
            "domain",
            "didEnvironment",
            "keyType",
            "subject",
            "certificatePem",
        ];
        // One variant: its identifierType (and didType), its own fields; every other field
        // may only be null or left out.
        let variant = |title: &str, identifier_type: &str, own: Vec<(&str, ObjectBuilder, bool)>| {
            let own: Vec<(&str, utoipa::openapi::schema::Object, bool)> = own
                .into_iter()
                .map(|(name, schema, required)| (name, schema.build(), required))
                .collect();
            let mut object = closed_object()
                .title(Some(title))
                .property("identifierType", one_of_strings([identifier_type]))
                .required("identifierType")
                .property(
                    "displayName",
                    required_text(200).description(Some("Label, 1 to 200 characters (trimmed).")),
                )
                .required("displayName");
            for field in FIELDS {
                match own.iter().find(|(name, _, _)| *name == field) {
                    Some((name, schema, required)) => {
                        object = object.property(*name, schema.clone());
                        if *required {
                            object = object.required(*name);
                        }
                    }
                    None => object = object.property(field, null()),
                }
            }
            object
        };
        let key_type = || {
            optional_one_of_strings(KEY_TYPES).description(Some("Key algorithm (default Ed25519; P-256 for did:ebsi)."))
        };
        OneOfBuilder::new()
            .description(Some(
                "A DID (did:web from a domain, did:key or did:ebsi from a new key pair), a JWK from a \
                 new key pair, or an X509 certificate, generated for a subject or supplied in PEM. \
                 Fields that do not apply to the chosen kind must be left out (or null); a request \
                 that sets one is answered 422.",
            ))
            .item(variant(
                "did:web",
                "DID",
                vec![
                    ("didType", one_of_strings(["did:web"]), true),
                    (
                        "domain",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some(DID_WEB_DOMAIN))
                            .description(Some("Host name with optional port and path, e.g. `example.com:8443/issuer`.")),
                        true,
                    ),
                ],
            ))
            .item(variant(
                "did:key",
                "DID",
                vec![("didType", one_of_strings(["did:key"]), true), ("keyType", key_type(), false)],
            ))
            .item(variant(
                "did:ebsi",
                "DID",
                vec![
                    ("didType", one_of_strings(["did:ebsi"]), true),
                    (
                        "didEnvironment",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some("^[a-z0-9-]{1,32}$"))
                            .description(Some("EBSI environment, e.g. `pilot` or `production`.")),
                        true,
                    ),
                    ("keyType", key_type(), false),
                ],
            ))
            .item(variant("JWK", "JWK", vec![("keyType", key_type(), false)]))
            .item(variant(
                "X509 (generated)",
                "X509",
                vec![(
                    "subject",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(dn_pattern()))
                        .description(Some(
                            "X.500 distinguished name of a new self-signed certificate, e.g. \
                             `CN=Issuer,O=Example B.V.,C=NL` (CN required).",
                        )),
                    true,
                )],
            ))
            .item(variant(
                "X509 (supplied)",
                "X509",
                vec![(
                    "certificatePem",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(
                            r"^-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+-----END CERTIFICATE-----(?:\r?\n)?$",
                        ))
                        .max_length(Some(16 * 1024))
                        .description(Some(
                            "One X.509 certificate in PEM. Its content must be a valid DER \
                             certificate (400 otherwise).",
                        )),
                    true,
                )],
            ))
            .into()
    }
}

impl ToSchema for CreateIdentifier {}

/// An identifier as the API returns it. Never contains private key material.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    /// Stable external key (UUID).
    #[schema(value_type = String)]
    pub identifier_external_key: IdentifierKey,
    /// Owning wallet.
    #[schema(value_type = String)]
    pub wallet_external_key: WalletKey,
    /// DID, X509 or JWK.
    pub identifier_type: String,
    /// A DID URI, an X.509 subject, or a JWK thumbprint.
    pub identifier: String,
    /// Label.
    pub display_name: String,
    /// DID method (DID only).
    pub did_type: Option<String>,
    /// DID environment (did:ebsi only).
    pub did_environment: Option<String>,
    /// Algorithm of the generated key pair, if any.
    pub key_type: Option<String>,
    /// The public key as a JWK, if a key pair was generated.
    #[schema(value_type = Option<Object>)]
    pub public_jwk: Option<Value>,
    /// The certificate (X509 only).
    pub certificate_pem: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// `sub` of the creator.
    pub created_by: String,
}

impl From<IdentifierRow> for Identifier {
    fn from(row: IdentifierRow) -> Self {
        Identifier {
            identifier_external_key: row.identifier_external_key,
            wallet_external_key: row.wallet_external_key,
            identifier_type: row.identifier_type,
            identifier: row.identifier,
            display_name: row.display_name,
            did_type: row.did_type,
            did_environment: row.did_environment,
            key_type: row.key_type,
            public_jwk: row.public_jwk.and_then(|j| serde_json::from_str(&j).ok()),
            certificate_pem: row.certificate_pem,
            created_at: rfc3339_ms(row.created_at),
            created_by: row.created_by,
        }
    }
}

impl Identifier {
    /// The data of `identifier.created.v1`.
    pub fn event_data(&self) -> Value {
        json!({
            "walletExternalKey": self.wallet_external_key,
            "identifierExternalKey": self.identifier_external_key,
            "identifierType": self.identifier_type,
            "identifier": self.identifier,
            "displayName": self.display_name,
            "didType": self.did_type,
            "didEnvironment": self.did_environment,
            "createdAt": self.created_at,
            "createdBy": self.created_by,
        })
    }
}

/// Creates an identifier for a wallet and publishes `identifier.created.v1` in the same
/// transaction.
///
/// # Errors
/// 403 without WALLET_IDENTIFIER_CRUD on the wallet; 404 for an unknown wallet; 400/422 for
/// invalid input; nothing is written on any error.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    correlation_id: &str,
    trace: &TraceContext,
    wallet_key: &WalletKey,
    body: CreateIdentifier,
) -> Result<Identifier, DomainError> {
    principal.require(Authority::WalletIdentifierCrud, wallet_key)?;
    let display_name = required_text("displayName", &body.display_name, 200)?;
    // Key generation is CPU work of a few milliseconds at most; it runs before the transaction
    // so no database connection waits on it.
    let material = make_material(&body)?;

    let mut tx = state.db.begin().await?;
    let wallet = store::wallets::find_in(&mut tx, wallet_key)
        .await?
        .ok_or_else(|| super::wallet::not_found(wallet_key))?;
    let now = store::now_ms();
    let row = IdentifierRow {
        identifier_external_key: IdentifierKey::generate(),
        wallet_external_key: wallet.wallet_external_key.clone(),
        identifier_type: body.identifier_type.as_str().to_string(),
        identifier: material.identifier,
        display_name,
        did_type: material.did_type.map(|d| d.as_str().to_string()),
        did_environment: material.did_environment,
        key_type: material.key_type.map(|k| k.as_str().to_string()),
        public_jwk: material.public_jwk.map(|j| j.to_string()),
        certificate_pem: material.certificate_pem,
        created_at: now,
        created_by: principal.sub.clone(),
    };
    let sealed = material.private_key.map(|k| state.secrets.encrypt(&k));
    store::identifiers::insert(&mut tx, wallet.id, &row, sealed.as_deref()).await?;
    let identifier = Identifier::from(row);
    state
        .outbox
        .publish(
            &mut tx,
            NewEvent {
                event_type: &IDENTIFIER_CREATED_V1,
                wallet_external_key: &identifier.wallet_external_key,
                subject_values: &[
                    (WalletKey::FIELD, identifier.wallet_external_key.as_str()),
                    (IdentifierKey::FIELD, identifier.identifier_external_key.as_str()),
                ],
                data: identifier.event_data(),
                correlation_id,
                trace,
                time: now,
            },
        )
        .await?;
    tx.commit().await?;
    tracing::info!(wallet = %wallet_key, identifier = %identifier.identifier_external_key, "identifier created");
    Ok(identifier)
}

/// Lists a wallet's identifiers.
///
/// # Errors
/// 403 without any authority on the wallet; 404 for an unknown wallet.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    wallet_key: &WalletKey,
) -> Result<Vec<Identifier>, DomainError> {
    principal.require_any_on(wallet_key)?;
    if store::wallets::find(&state.db, wallet_key).await?.is_none() {
        return Err(super::wallet::not_found(wallet_key));
    }
    Ok(store::identifiers::list(&state.db, wallet_key)
        .await?
        .into_iter()
        .map(Identifier::from)
        .collect())
}

/// Reads one identifier.
///
/// # Errors
/// 403 without any authority on the wallet; 404 for an unknown wallet or identifier.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    wallet_key: &WalletKey,
    identifier_key: &IdentifierKey,
) -> Result<Identifier, DomainError> {
    principal.require_any_on(wallet_key)?;
    store::identifiers::find(&state.db, wallet_key, identifier_key)
        .await?
        .map(Identifier::from)
        .ok_or_else(|| {
            DomainError::NotFound(format!(
                "identifier {identifier_key} does not exist in wallet {wallet_key}"
            ))
        })
}
