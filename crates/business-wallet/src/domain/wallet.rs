//! Wallets: validation of the create body, the stored row, creation with its
//! `wallet.created.v1` event, and the wallet list.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::ToSchema;

use super::ids::WalletKey;
use super::validate::{optional_email, optional_phone, optional_text, optional_web_url, required_text};
use crate::api::doc;
use crate::auth::Principal;
use crate::domain::error::DomainError;
use crate::events::{TraceContext, WALLET_CREATED_V1};
use crate::outbox::NewEvent;
use crate::state::AppState;
use crate::store::{self, rfc3339_ms, wallets::WalletRow};

/// Body of `POST /api/v1/wallets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWallet {
    /// Name shown for the wallet (1 to 200 characters).
    #[schema(schema_with = display_name_schema)]
    pub display_name: String,
    /// Contact email.
    #[serde(default)]
    #[schema(schema_with = email_schema)]
    pub email: Option<String>,
    /// Website, an http(s) URL.
    #[serde(default)]
    #[schema(schema_with = website_schema)]
    pub website: Option<String>,
    /// Phone number.
    #[serde(default)]
    #[schema(schema_with = phone_schema)]
    pub phone_number: Option<String>,
    /// Postal address.
    #[serde(default, deserialize_with = "super::validate::optional_object")]
    #[schema(value_type = Option<Address>)]
    pub address: Option<Address>,
}

// The schemas of the rules `create` applies (see `super::validate`).
fn display_name_schema() -> ObjectBuilder {
    doc::required_text(200).description(Some("Name shown for the wallet, 1 to 200 characters (trimmed)."))
}

fn email_schema() -> ObjectBuilder {
    // A dot-atom address whose domain has at least one dot: the form the email check accepts
    // (it reads more exotic RFC 5322 forms too). Blank counts as absent.
    let atom = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
    let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?";
    let pattern = format!(
        r"^[{ws}]*(?:{atom}{{1,32}}(?:\.{atom}{{1,16}})?@(?:{label}\.){{1,4}}[A-Za-z]{{2,16}}[{ws}]*)?$",
        ws = doc::WS
    );
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(pattern))
        .description(Some("Contact email address (blank or null: none)."))
}

fn website_schema() -> ObjectBuilder {
    doc::optional_web_url().description(Some("Website, an absolute http(s) URL (blank or null: none)."))
}

fn phone_schema() -> AllOfBuilder {
    // Two patterns, both on the trimmed text: at most 32 characters from the allowed set (a
    // `+` only first), and at least 3 digits. Blank counts as absent.
    let ws = doc::WS;
    let text = |pattern: String| {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .pattern(Some(pattern))
    };
    AllOfBuilder::new()
        .item(text(format!(
            r"^[{ws}]*(?:[+0-9().-](?:[0-9 ().-]{{0,30}}[0-9().-])?[{ws}]*)?$"
        )))
        .item(text(format!(
            r"^[{ws}]*(?:\+?(?:[ ().-]*[0-9]){{3}}[0-9 ().-]*[{ws}]*)?$"
        )))
        .description(Some(
            "Phone number: digits (at least 3) with an optional leading `+`, spaces, dashes, dots and \
             parentheses; at most 32 characters (blank or null: none).",
        ))
}

fn street_schema() -> ObjectBuilder {
    doc::optional_text(200).description(Some("Street and number (at most 200 characters)."))
}

fn postal_code_schema() -> ObjectBuilder {
    doc::optional_text(20).description(Some("Postal code (at most 20 characters)."))
}

fn city_schema() -> ObjectBuilder {
    doc::optional_text(100).description(Some("City (at most 100 characters)."))
}

fn country_schema() -> ObjectBuilder {
    doc::optional_text(100).description(Some(
        "Country (at most 100 characters, e.g. an ISO 3166 code such as `NL`).",
    ))
}

/// A postal address; every part is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    /// Street and number (at most 200 characters).
    #[serde(default)]
    #[schema(schema_with = street_schema)]
    pub street: Option<String>,
    /// Postal code (at most 20 characters).
    #[serde(default)]
    #[schema(schema_with = postal_code_schema)]
    pub postal_code: Option<String>,
    /// City (at most 100 characters).
    #[serde(default)]
    #[schema(schema_with = city_schema)]
    pub city: Option<String>,
    /// Country (at most 100 characters, e.g. an ISO 3166 code such as `NL`).
    #[serde(default)]
    #[schema(schema_with = country_schema)]
    pub country: Option<String>,
}

/// A wallet as the API returns it. Its JSON is also the data of `wallet.created.v1`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    /// Stable external key (UUID).
    #[schema(value_type = String)]
    pub wallet_external_key: WalletKey,
    /// Name shown for the wallet.
    pub display_name: String,
    /// Contact email.
    pub email: Option<String>,
    /// Website URL.
    pub website: Option<String>,
    /// Phone number.
    pub phone_number: Option<String>,
    /// Postal address.
    pub address: Option<Address>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// `sub` of the creator.
    pub created_by: String,
}

impl From<WalletRow> for Wallet {
    fn from(row: WalletRow) -> Self {
        Wallet {
            wallet_external_key: row.wallet_external_key,
            display_name: row.display_name,
            email: row.email,
            website: row.website,
            phone_number: row.phone_number,
            address: row.address.and_then(|a| serde_json::from_str(&a).ok()),
            created_at: rfc3339_ms(row.created_at),
            created_by: row.created_by,
        }
    }
}

fn validate_address(address: Option<Address>) -> Result<Option<Address>, DomainError> {
    let Some(a) = address else { return Ok(None) };
    let address = Address {
        street: optional_text("address.street", a.street.as_deref(), 200)?,
        postal_code: optional_text("address.postalCode", a.postal_code.as_deref(), 20)?,
        city: optional_text("address.city", a.city.as_deref(), 100)?,
        country: optional_text("address.country", a.country.as_deref(), 100)?,
    };
    Ok((address != Address::default()).then_some(address))
}

/// Creates a wallet and publishes `wallet.created.v1` in the same transaction.
///
/// # Errors
/// 403 without GLOBAL_WALLET_CRUD; 400 for invalid fields; 5xx on database failure (nothing
/// is written then).
pub async fn create(
    state: &AppState,
    principal: &Principal,
    correlation_id: &str,
    trace: &TraceContext,
    body: CreateWallet,
) -> Result<Wallet, DomainError> {
    principal.require_global()?;
    let now = store::now_ms();
    let row = WalletRow {
        id: 0,
        wallet_external_key: WalletKey::generate(),
        display_name: required_text("displayName", &body.display_name, 200)?,
        email: optional_email("email", body.email.as_deref())?,
        website: optional_web_url("website", body.website.as_deref())?,
        phone_number: optional_phone("phoneNumber", body.phone_number.as_deref())?,
        address: validate_address(body.address)?
            .map(|a| serde_json::to_string(&a))
            .transpose()
            .map_err(DomainError::internal)?,
        created_at: now,
        created_by: principal.sub.clone(),
    };

    let mut tx = state.db.begin().await?;
    store::wallets::insert(&mut tx, &row).await?;
    let wallet = Wallet::from(row);
    let data = serde_json::to_value(&wallet).map_err(DomainError::internal)?;
    state
        .outbox
        .publish(
            &mut tx,
            NewEvent {
                event_type: &WALLET_CREATED_V1,
                wallet_external_key: &wallet.wallet_external_key,
                subject_values: &[(WalletKey::FIELD, wallet.wallet_external_key.as_str())],
                data,
                correlation_id,
                trace,
                time: now,
            },
        )
        .await?;
    tx.commit().await?;
    tracing::info!(wallet = %wallet.wallet_external_key, "wallet created");
    Ok(wallet)
}

/// Reads a wallet.
///
/// # Errors
/// 403 without any authority on the wallet; 404 when it does not exist.
pub async fn get(state: &AppState, principal: &Principal, key: &WalletKey) -> Result<Wallet, DomainError> {
    principal.require_any_on(key)?;
    store::wallets::find(&state.db, key)
        .await?
        .map(Wallet::from)
        .ok_or_else(|| not_found(key))
}

/// What a page of the wallet list asks for, already checked.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only wallets whose display name contains this text (letter case and accents ignored).
    pub name: Option<String>,
    /// Only wallets after this row id (the cursor).
    pub after: Option<i64>,
    /// Page size, 1 to 200.
    pub limit: i64,
}

impl ListQuery {
    /// The query of a page of at most `limit` wallets, from the list's text parameters as the
    /// API and the UI's wallet picker receive them: `name` is trimmed (blank selects every
    /// wallet), and `cursor` must be a `nextCursor` of this list, passed unchanged.
    ///
    /// # Errors
    /// 400 naming `cursor` for any other cursor text.
    pub fn parse(name: Option<&str>, cursor: Option<&str>, limit: i64) -> Result<ListQuery, DomainError> {
        let after = cursor
            .map(|cursor| {
                // What `nextCursor` holds: a row id, at most 18 digits (so it always parses).
                let digits = cursor.len() <= 18
                    && cursor.bytes().all(|b| b.is_ascii_digit())
                    && cursor.bytes().next().is_some_and(|b| b != b'0');
                digits.then(|| cursor.parse::<i64>().ok()).flatten().ok_or_else(|| {
                    DomainError::invalid_field("cursor", "is not a cursor of this list (pass a nextCursor unchanged)")
                })
            })
            .transpose()?;
        let name = name.map(str::trim).filter(|name| !name.is_empty()).map(str::to_string);
        Ok(ListQuery { name, after, limit })
    }
}

/// A page of the wallet list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletPage {
    /// The wallets, in the order they were created.
    pub items: Vec<Wallet>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the wallets the principal may read, in the order they were created.
///
/// # Errors
/// 403 for a token with neither GLOBAL_WALLET_CRUD nor an authority on a wallet.
pub async fn list(state: &AppState, principal: &Principal, query: &ListQuery) -> Result<WalletPage, DomainError> {
    let filter = store::wallets::ListFilter {
        wallet: principal.readable_wallets()?,
        name: query.name.as_deref(),
        after: query.after,
    };
    let rows = store::wallets::list(&state.db, &filter, query.limit + 1).await?;
    let (rows, next_cursor) = super::page::split(rows, query.limit, |r| r.id);
    Ok(WalletPage {
        next_cursor,
        items: rows.into_iter().map(Wallet::from).collect(),
    })
}

/// The 404 for an unknown wallet.
pub fn not_found(key: &WalletKey) -> DomainError {
    DomainError::NotFound(format!("wallet {key} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::ListQuery;

    #[test]
    fn a_list_query_takes_trimmed_names_and_only_cursors_of_the_list() {
        let query = ListQuery::parse(Some("  Zürich "), Some("42"), 20).unwrap();
        assert_eq!(
            (query.name.as_deref(), query.after, query.limit),
            (Some("Zürich"), Some(42), 20)
        );
        let blank = ListQuery::parse(Some(" \t"), None, 50).unwrap();
        assert_eq!((blank.name, blank.after), (None, None));
        for cursor in ["", "0", "042", "-1", "1 2", "abc", "9999999999999999999"] {
            let err = ListQuery::parse(None, Some(cursor), 20).unwrap_err();
            assert!(err.to_string().starts_with("cursor: "), "{cursor}: {err}");
        }
        assert!(
            ListQuery::parse(None, Some("999999999999999999"), 20).is_ok(),
            "18 digits fit"
        );
    }
}
