//! The extractors of the pages: a form posted in a session with its CSRF token checked
//! ([`CsrfForm`]), and the signed-in user with the scope the request is about, the page context
//! and the parsed query, for a page ([`Page`]) or a form post ([`Post`]).
//!
//! Each does its checks in the order the UI has always answered them: the session first (none:
//! back to sign-in), then, for a post, the CSRF token (wrong: 403), then the scope (a GLOBAL
//! holder who has chosen no wallet gets the wallet picker, or a 400 for a post). A page that
//! is the same for every scope ([`Viewer`], the event catalog) needs no chosen wallet.

use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::Form;

use super::error::{PageError, Rejection};
use super::{href, wallets};
use crate::auth::{Authority, Principal};
use crate::domain::{Scope, WalletKey};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::forms::{self, field, Pairs};
use crate::web::session::Session;

/// A tab of the integrations pages: the one highlighted in the navigation, and where the
/// wallet chooser sends a GLOBAL holder who has not chosen a wallet yet.
pub trait Tab: Send + Sync + 'static {
    /// `channels`, `deliveries`, `history` or `events`.
    const NAME: &'static str;
    /// The page the chooser's form opens with `?wallet=...`.
    const CHOOSER: &'static str;
}

/// The channel pages.
pub struct ChannelsTab;
/// The new-channel form (the chooser comes back to it).
pub struct NewChannelTab;
/// The deliveries log and a delivery.
pub struct DeliveriesTab;
/// The history of integration changes.
pub struct HistoryTab;

impl Tab for ChannelsTab {
    const NAME: &'static str = "channels";
    const CHOOSER: &'static str = "/ui/integrations/channels";
}

impl Tab for NewChannelTab {
    const NAME: &'static str = "channels";
    const CHOOSER: &'static str = "/ui/integrations/channels/new";
}

impl Tab for DeliveriesTab {
    const NAME: &'static str = "deliveries";
    const CHOOSER: &'static str = "/ui/integrations/deliveries";
}

impl Tab for HistoryTab {
    const NAME: &'static str = "history";
    const CHOOSER: &'static str = "/ui/integrations/history";
}

/// The event catalog. It is the same for every wallet, so it never shows the picker; its
/// "Change wallet" goes to the channels' picker.
pub struct EventsTab;

impl Tab for EventsTab {
    const NAME: &'static str = "events";
    const CHOOSER: &'static str = "/ui/integrations/channels";
}

/// What every page of a signed-in user needs: who, which wallet, the CSRF token and what the
/// user may do there.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The token's subject.
    pub sub: String,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// `?wallet=...` for links and form actions of GLOBAL holders; empty otherwise.
    pub q: String,
    /// The `wallet` parameter as requested, carried on by links and redirects; `None` when the
    /// scope comes from the token.
    pub wallet: Option<String>,
    /// What the pages are about: a wallet key, or "Platform".
    pub wallet_label: String,
    /// The current tab: channels, deliveries, history or events.
    pub tab: &'static str,
    /// May create, edit, rotate, test and delete channels here.
    pub can_manage_channels: bool,
    /// May replay and dismiss deliveries here.
    pub can_manage_deliveries: bool,
    /// Holds GLOBAL_WALLET_CRUD (may switch wallets).
    pub is_global: bool,
    /// What the action that led here did ([`super::notice`]), shown at the top of the page.
    pub notice: Option<String>,
}

impl Ctx {
    /// The `wallet` query parameter to carry on, if any, for [`href`].
    pub fn wallet_param(&self) -> Option<(&'static str, &str)> {
        self.wallet.as_deref().map(|w| ("wallet", w))
    }

    /// Where "Change wallet" leads: the picker, whose choice comes back to this tab (to the
    /// channels from the event catalog, which is the same for every wallet).
    pub fn change_wallet_href(&self) -> String {
        let tab = if self.tab == EventsTab::NAME {
            ChannelsTab::NAME
        } else {
            self.tab
        };
        format!("/ui/integrations/{tab}?wallet=")
    }
}

/// The wallet (or platform) a request is about.
enum Target {
    /// A scope to show.
    Scope(Scope, Box<Ctx>),
    /// A GLOBAL holder who has not chosen a wallet yet.
    Choose(Box<Ctx>),
}

/// Picks the scope from `?wallet=` (GLOBAL holders: a wallet key or `platform`) or from the
/// token's `wallet` claim.
fn target(
    principal: &Principal,
    csrf: &str,
    query: &[(String, String)],
    tab: &'static str,
) -> Result<Target, ApiError> {
    let requested = field(query, "wallet").filter(|w| !w.is_empty());
    let scope = match requested {
        Some(w) if w.eq_ignore_ascii_case("platform") => Some(Scope::Platform),
        Some(w) => Some(Scope::Wallet(WalletKey::parse_as("wallet", w)?)),
        None => principal
            .wallet
            .as_deref()
            .map(|w| WalletKey::parse_as("wallet", w).map(Scope::Wallet))
            .transpose()?,
    };
    let mut ctx = Ctx {
        sub: principal.sub.clone(),
        csrf: csrf.to_string(),
        q: href("", requested.map(|w| ("wallet", w))),
        wallet: requested.map(str::to_string),
        wallet_label: String::new(),
        tab,
        can_manage_channels: false,
        can_manage_deliveries: false,
        is_global: principal.is_global(),
        notice: super::notice(query),
    };
    match scope {
        None if principal.is_global() => Ok(Target::Choose(Box::new(ctx))),
        None => Err(ApiError::Forbidden(
            "this token names no wallet; sign in with a token that has a `wallet` claim".into(),
        )),
        Some(scope) => {
            let (label, channels, deliveries) = match &scope {
                Scope::Platform => ("Platform".to_string(), principal.is_global(), principal.is_global()),
                Scope::Wallet(w) => (
                    w.to_string(),
                    principal.has(Authority::WalletIntegrationChannelCrud, w),
                    principal.has(Authority::WalletIntegrationDeliveryCrud, w),
                ),
            };
            ctx.wallet_label = label;
            ctx.can_manage_channels = channels;
            ctx.can_manage_deliveries = deliveries;
            Ok(Target::Scope(scope, Box::new(ctx)))
        }
    }
}

/// A page of a signed-in user about one scope, on tab `T`: who, the scope, the page context and
/// the query. A GLOBAL holder who has chosen no wallet is shown the chooser instead.
pub struct Page<T> {
    /// Who is signed in, validated on this request.
    pub principal: Principal,
    /// The wallet (or platform) the page is about.
    pub scope: Scope,
    /// What the templates need.
    pub ctx: Ctx,
    /// The decoded query string (empty when there is none).
    pub query: Pairs,
    tab: PhantomData<T>,
}

impl<T: Tab> FromRequestParts<AppState> for Page<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        let query = forms::pairs(parts.uri.query());
        match target(&session.principal, &session.csrf, &query, T::NAME) {
            Ok(Target::Scope(scope, ctx)) => Ok(Page {
                principal: session.principal,
                scope,
                ctx: *ctx,
                query,
                tab: PhantomData,
            }),
            Ok(Target::Choose(ctx)) => {
                let picker = wallets::picker(state, &session.principal, *ctx, &query, T::CHOOSER).await?;
                Err(Rejection::ChooseWallet(Box::new(picker)))
            }
            Err(err) => Err(PageError::new(None, err).into()),
        }
    }
}

/// A page of a signed-in user that is the same for every scope, on tab `T`: the page context,
/// with the chosen wallet (if any) in its navigation and links. It never shows the picker.
pub struct Viewer<T> {
    /// What the templates need.
    pub ctx: Ctx,
    tab: PhantomData<T>,
}

impl<T: Tab> FromRequestParts<AppState> for Viewer<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        let query = forms::pairs(parts.uri.query());
        match target(&session.principal, &session.csrf, &query, T::NAME) {
            Ok(Target::Scope(_, ctx) | Target::Choose(ctx)) => Ok(Viewer {
                ctx: *ctx,
                tab: PhantomData,
            }),
            Err(err) => Err(PageError::new(None, err).into()),
        }
    }
}

/// A form posted in a session, its CSRF token checked.
pub struct CsrfForm {
    /// The session the form was posted in.
    pub session: Session,
    /// The decoded form fields.
    pub form: Pairs,
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let Form(form) = Form::<Pairs>::from_request(Request::from_parts(parts, body), state).await?;
        if !session.csrf_matches(field(&form, "_csrf")) {
            return Err(PageError::csrf_refused().into());
        }
        Ok(CsrfForm { session, form })
    }
}

/// A form posted by a signed-in user about one scope, on tab `T`: the [`CsrfForm`], then the
/// scope from the query (a wallet must have been chosen).
pub struct Post<T> {
    /// Who is signed in, validated on this request.
    pub principal: Principal,
    /// The wallet (or platform) the post is about.
    pub scope: Scope,
    /// What the templates need.
    pub ctx: Ctx,
    /// The decoded form fields.
    pub form: Pairs,
    tab: PhantomData<T>,
}

impl<T: Tab> FromRequest<AppState> for Post<T> {
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let query = forms::pairs(req.uri().query());
        let CsrfForm { session, form } = CsrfForm::from_request(req, state).await?;
        match target(&session.principal, &session.csrf, &query, T::NAME) {
            Ok(Target::Scope(scope, ctx)) => Ok(Post {
                principal: session.principal,
                scope,
                ctx: *ctx,
                form,
                tab: PhantomData,
            }),
            Ok(Target::Choose(_)) => Err(PageError::new(None, ApiError::bad_request("choose a wallet first")).into()),
            Err(err) => Err(PageError::new(None, err).into()),
        }
    }
}
