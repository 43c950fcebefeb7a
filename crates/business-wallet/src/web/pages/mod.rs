//! The pages and form handlers of the Web UI, one file per part of it: [`sign_in`],
//! [`channels`], [`deliveries`], [`history`], the event catalog ([`events`]) and the wallet
//! picker ([`wallets`]).
//!
//! What they share lives beside them: the extractors that give a handler its signed-in user,
//! scope and page context ([`extract`]), the error that every handler returns with `?` and that
//! renders the error page ([`error`]), and [`query_string`] and [`href`], the one place where
//! query strings, links and redirects are encoded.

pub mod channels;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod extract;
pub mod history;
pub mod sign_in;
pub mod wallets;

pub use error::{ErrorPage, InPage, PageError, Rejection};
pub use extract::{
    ChannelsTab, CsrfForm, Ctx, DeliveriesTab, EventsTab, HistoryTab, NewChannelTab, Page, Post, Tab, Viewer,
};

use axum::response::{IntoResponse, Redirect, Response};

/// `params` form-encoded as a query string (without the `?`). Every query string the pages
/// build is built here, through [`href`] or for the API's own parser.
pub fn query_string<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// `path` followed by `params` as its query string; the path alone when there are no
/// parameters. Every link and redirect of the pages that carries parameters is built here.
pub fn href<'a>(path: &str, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let query = query_string(params);
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// A 303 to `location`.
fn see_other(location: String) -> Response {
    Redirect::to(&location).into_response()
}

#[cfg(test)]
mod tests {
    use super::href;

    #[test]
    fn href_encodes_its_parameters_and_drops_an_empty_query() {
        assert_eq!(href("/ui/integrations/channels", []), "/ui/integrations/channels");
        assert_eq!(href("", [("wallet", "platform")]), "?wallet=platform");
        assert_eq!(
            href("/ui/integrations/deliveries", [("channel", "a b&c"), ("cursor", "7")]),
            "/ui/integrations/deliveries?channel=a+b%26c&cursor=7"
        );
    }
}
