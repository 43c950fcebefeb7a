//! The wallet picker, shown to a GLOBAL_WALLET_CRUD holder who has chosen no wallet yet: the
//! wallets a page at a time, searched by name, through the same service and the same query
//! rules as `GET /api/v1/wallets`; the platform; or a wallet key typed in. Every choice opens
//! the tab the picker was shown for with `?wallet=...`, which every link of the pages then
//! carries.

use askama::Template;

use super::{href, Ctx, InPage, PageError};
use crate::auth::Principal;
use crate::domain::wallet::{self, ListQuery};
use crate::state::AppState;
use crate::web::forms::{field, Pairs};

/// Wallets on one page of the picker.
pub const PAGE_SIZE: i64 = 20;

/// A wallet as the picker lists it.
#[derive(Debug)]
struct PickerWallet {
    key: String,
    name: String,
    created_at: String,
    /// The tab, opened for this wallet.
    href: String,
}

/// The picker page, ready to render.
#[derive(Debug, Template)]
#[template(path = "choose_wallet.html")]
pub struct WalletPicker {
    ctx: Ctx,
    /// The tab a choice opens.
    action: &'static str,
    /// The search text, trimmed (empty: every wallet).
    name: String,
    wallets: Vec<PickerWallet>,
    /// The tab, opened for the platform channels.
    platform_href: String,
    /// The next page of the same search, if there is one.
    next_href: Option<String>,
    /// The first page of the same search, when this is a later one.
    first_href: Option<String>,
}

/// The picker for `action`, reading `name` (the search) and `cursor` from `query`.
///
/// # Errors
/// 400 for a cursor that is not one of this list (shown inside the navigation of `ctx`); the
/// error page when the wallets cannot be read.
pub async fn picker(
    state: &AppState,
    principal: &Principal,
    ctx: Ctx,
    query: &Pairs,
    action: &'static str,
) -> Result<WalletPicker, PageError> {
    let cursor = field(query, "cursor").filter(|c| !c.is_empty());
    let list = ListQuery::parse(field(query, "name"), cursor, PAGE_SIZE).in_page(&ctx)?;
    let page = wallet::list(state, principal, &list).await.in_page(&ctx)?;
    let name = list.name.unwrap_or_default();
    let search = (!name.is_empty()).then_some(("name", name.as_str()));
    let next_href = page
        .next_cursor
        .as_deref()
        .map(|next| href(action, search.into_iter().chain([("cursor", next)])));
    let first_href = cursor.map(|_| href(action, search));
    let wallets = page
        .items
        .into_iter()
        .map(|w| {
            let key = w.wallet_external_key.to_string();
            PickerWallet {
                href: href(action, [("wallet", key.as_str())]),
                key,
                name: w.display_name,
                created_at: w.created_at,
            }
        })
        .collect();
    Ok(WalletPicker {
        platform_href: href(action, [("wallet", "platform")]),
        ctx,
        action,
        name,
        wallets,
        next_href,
        first_href,
    })
}
