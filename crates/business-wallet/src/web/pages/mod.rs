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

use crate::web::forms::field;

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

/// What an action did, for the `done` parameter of the redirect after it (with `n`, a count, for
/// the bulk actions); the page it leads to shows the notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Deliveries queued again.
    Replayed,
    /// Deliveries dismissed.
    Dismissed,
    /// A channel saved.
    Saved,
    /// A channel enabled.
    Enabled,
    /// A channel disabled.
    Disabled,
    /// A channel deleted.
    Deleted,
    /// A paused or failing channel resumed.
    Resumed,
}

impl Done {
    const ALL: [Done; 7] = [
        Done::Replayed,
        Done::Dismissed,
        Done::Saved,
        Done::Enabled,
        Done::Disabled,
        Done::Deleted,
        Done::Resumed,
    ];

    /// The value of the `done` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Replayed => "replayed",
            Done::Dismissed => "dismissed",
            Done::Saved => "saved",
            Done::Enabled => "enabled",
            Done::Disabled => "disabled",
            Done::Deleted => "deleted",
            Done::Resumed => "resumed",
        }
    }

    /// The notice, with the count of a bulk action.
    fn text(self, count: Option<u64>) -> String {
        match (self, count) {
            (Done::Replayed, Some(n)) => format!("Failed deliveries queued again: {n}."),
            (Done::Dismissed, Some(n)) => format!("Failed deliveries dismissed: {n}."),
            (Done::Replayed, None) => "Delivery queued again: the dispatcher sends it with its next round.".into(),
            (Done::Dismissed, None) => "Delivery dismissed: it is no longer retried or listed as active.".into(),
            (Done::Saved, _) => "Channel saved.".into(),
            (Done::Enabled, _) => "Channel enabled: it gets the events it subscribes to again.".into(),
            (Done::Disabled, _) => "Channel disabled: it gets no new deliveries until it is enabled.".into(),
            (Done::Deleted, _) => "Channel deleted.".into(),
            (Done::Resumed, _) => {
                "Channel resumed: every delivery that waited for it goes out now, oldest first.".into()
            }
        }
    }
}

/// The notice of the action named by `done` (and `n`) in a query. Only these fixed texts: a
/// link cannot make a page say anything else.
pub fn notice(query: &[(String, String)]) -> Option<String> {
    let done = field(query, "done")?;
    let count = field(query, "n").and_then(|n| n.parse::<u64>().ok());
    Done::ALL
        .into_iter()
        .find(|d| d.as_str() == done)
        .map(|d| d.text(count))
}

/// A 303 to `location`.
fn see_other(location: String) -> Response {
    Redirect::to(&location).into_response()
}

#[cfg(test)]
mod tests {
    use super::{href, notice};

    #[test]
    fn a_notice_is_one_of_the_fixed_texts() {
        let query = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(
            notice(&query(&[("done", "replayed"), ("n", "3")])).as_deref(),
            Some("Failed deliveries queued again: 3.")
        );
        assert_eq!(
            notice(&query(&[("done", "deleted")])).as_deref(),
            Some("Channel deleted.")
        );
        assert_eq!(notice(&query(&[("done", "<script>")])), None);
        assert_eq!(notice(&query(&[])), None);
    }

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
