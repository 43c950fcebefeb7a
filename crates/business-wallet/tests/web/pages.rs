//! The wallet picker of a GLOBAL_WALLET_CRUD holder (listed, searched by name, a page at a
//! time, every choice and link keeping the wallet) and the event catalog page with the channel
//! form's links into it.

use business_wallet::events::CATALOG;
use serde_json::{json, Value};

use super::{common::TestApp, page, sign_in, wallet_with_channel};
use crate::both_backends;

/// The external keys the picker lists, in their order.
fn listed(html: &str) -> Vec<String> {
    html.split("<li data-wallet=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

/// The target of the link marked `rel="next"`, decoded from its HTML attribute.
fn next_href(html: &str) -> Option<String> {
    let end = html.find("\" rel=\"next\"")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(unescape(&html[start..end]))
}

/// Undoes askama's HTML escaping.
fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The text of the first `<pre>` marked `data-testid="{testid}"` in `html`, as JSON.
fn pre_json(html: &str, testid: &str) -> Value {
    let marker = format!("data-testid=\"{testid}\">");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {testid} in {html}")) + marker.len();
    let end = start + html[start..].find("</pre>").unwrap();
    serde_json::from_str(&unescape(&html[start..end])).unwrap()
}

async fn wallet(app: &TestApp, name: &str) -> String {
    app.create_wallet(name).await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn picker_lists_searches_and_pages_wallets(app: TestApp) {
    let zurich = wallet(&app, "Zürich Logistics").await;
    let ports = wallet(&app, "Amsterdam Ports <b>").await;
    let mut fillers = Vec::new();
    for n in 0..21 {
        fillers.push(wallet(&app, &format!("Filler {n:02}")).await);
    }
    let cookie = sign_in(&app, &app.admin_token.clone()).await;

    // The first page: 20 wallets in the order they were created, each opening the tab.
    let (status, html) = page(&app, &cookie, "/ui/integrations/deliveries").await;
    assert_eq!(status, 200);
    assert!(html.contains("Choose a wallet"), "{html}");
    assert!(
        html.contains("<label for=\"wallet-search\">"),
        "the search box is labelled"
    );
    assert!(html.contains("<label for=\"wallet\">"), "a key can still be typed in");
    assert!(
        html.contains("href=\"/ui/integrations/deliveries?wallet=platform\""),
        "{html}"
    );
    assert!(html.contains("Platform (all wallets)"));
    let first = listed(&html);
    assert_eq!(first.len(), 20, "{html}");
    assert_eq!(first[..2], [zurich.clone(), ports.clone()]);
    assert!(html.contains(&format!("href=\"/ui/integrations/deliveries?wallet={zurich}\"")));
    assert!(html.contains("Zürich Logistics"));
    assert!(
        html.contains("Amsterdam Ports &#60;b&#62;") || html.contains("Amsterdam Ports &lt;b&gt;"),
        "names are escaped"
    );

    // The next page has the rest, and a way back to the first.
    let next = next_href(&html).expect("a next page");
    assert!(next.starts_with("/ui/integrations/deliveries?cursor="), "{next}");
    let (status, html) = page(&app, &cookie, &next).await;
    assert_eq!(status, 200);
    let second = listed(&html);
    assert_eq!(second, fillers[18..], "{html}");
    assert!(next_href(&html).is_none(), "the last page has no next page");
    assert!(html.contains("First page"));

    // The name search ignores letter case and accents, and keeps its text on the next page.
    for search in ["ZURICH", "zürich", "  zuRich "] {
        let (status, html) = page(&app, &cookie, &format!("/ui/integrations/channels?name={search}")).await;
        assert_eq!(status, 200);
        assert_eq!(listed(&html), std::slice::from_ref(&zurich), "{search}");
    }
    let (_, html) = page(&app, &cookie, "/ui/integrations/channels?name=filler").await;
    assert_eq!(listed(&html), fillers[..20]);
    assert!(html.contains("value=\"filler\""), "the search box keeps its text");
    let next = next_href(&html).expect("a next page of the search");
    assert!(
        next.starts_with("/ui/integrations/channels?name=filler&cursor="),
        "{next}"
    );
    let (_, html) = page(&app, &cookie, &next).await;
    assert_eq!(listed(&html), fillers[20..]);
    let (_, html) = page(&app, &cookie, "/ui/integrations/channels?name=nothing+like+it").await;
    assert!(listed(&html).is_empty());
    assert!(html.contains("data-testid=\"no-wallets\""), "{html}");

    // A cursor that is not one of the list is the UI's 400, inside the navigation.
    for cursor in ["abc", "0", "-1", "99999999999999999999", "1%202"] {
        let (status, html) = page(&app, &cookie, &format!("/ui/integrations/channels?cursor={cursor}")).await;
        assert_eq!(status, 400, "{cursor}: {html}");
        assert!(html.contains("cursor: is not a cursor of this list"), "{html}");
        assert!(html.contains("Signed in as"), "{html}");
    }
    // Any search text is only a search.
    let (status, _) = page(&app, &cookie, "/ui/integrations/channels?name=%25_%5C%27%22%3Cx%3E").await;
    assert_eq!(status, 200);

    // A chosen wallet is kept by every tab and by the way back to the picker.
    let (status, html) = page(&app, &cookie, &format!("/ui/integrations/history?wallet={zurich}")).await;
    assert_eq!(status, 200);
    for tab in ["channels", "deliveries", "history", "events"] {
        assert!(
            html.contains(&format!("href=\"/ui/integrations/{tab}?wallet={zurich}\"")),
            "{tab}: {html}"
        );
    }
    assert!(
        html.contains("href=\"/ui/integrations/history?wallet=\">Change wallet"),
        "{html}"
    );
    let (status, html) = page(&app, &cookie, "/ui/integrations/history?wallet=").await;
    assert_eq!(status, 200);
    assert!(html.contains("Choose a wallet"));
    assert!(html.contains(&format!("href=\"/ui/integrations/history?wallet={zurich}\"")));
}

async fn a_wallet_token_gets_no_picker(app: TestApp) {
    let own = wallet(&app, "Own").await;
    let other = wallet(&app, "Other").await;
    let token = app.token("reader", &["WALLET_INTEGRATION_CHANNEL_READ"], Some(&own));
    let cookie = sign_in(&app, &token).await;
    for path in [
        "/ui/integrations/channels",
        "/ui/integrations/channels?wallet=",
        "/ui/integrations/channels?name=Other&cursor=garbage",
    ] {
        let (status, html) = page(&app, &cookie, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains("Choose a wallet"), "{path}: {html}");
        assert!(!html.contains(&other), "{path}: another wallet is not listed");
        assert!(!html.contains("Change wallet"), "{path}");
        assert!(html.contains(&own), "{path}");
    }
}

async fn catalog_page_shows_every_event_type(app: TestApp) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/ui/integrations/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "the catalog page needs a session");

    let cookie = sign_in(&app, &app.admin_token.clone()).await;
    // A GLOBAL holder reads it without choosing a wallet first.
    let (status, html) = page(&app, &cookie, "/ui/integrations/events").await;
    assert_eq!(status, 200);
    assert!(!html.contains("Choose a wallet"), "{html}");
    assert!(html.contains("aria-current=\"page\">Event types</a>"), "{html}");
    assert!(
        html.contains("href=\"/ui/integrations/channels?wallet=\">Change wallet"),
        "{html}"
    );
    let sections: Vec<&str> = html.split("<section class=\"card event-type\" id=\"").skip(1).collect();
    assert_eq!(sections.len(), CATALOG.len());
    for (entry, section) in CATALOG.iter().zip(&sections) {
        assert!(section.starts_with(&format!("{}\"", entry.type_name)), "{section}");
        assert!(
            html.contains(&format!("href=\"#{}\"", entry.type_name)),
            "a table of contents"
        );
        assert!(section.contains(entry.description), "{section}");
        assert!(
            section.contains(&format!("data-testid=\"subject\">{}</code>", entry.subject_pattern)),
            "{section}"
        );
        // The schema link is the public URL the API serves, and the page shows that schema.
        let url = format!(
            "{}/api/public/schemas/integration/{}/v{}.json",
            app.address, entry.slug, entry.major
        );
        assert!(
            section.contains(&format!("<a href=\"{url}\" data-testid=\"schema-link\">")),
            "{section}"
        );
        let served: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(pre_json(section, "schema"), served);
        // The sample is a whole envelope around the catalog's sample data.
        let sample = pre_json(section, "sample");
        assert_eq!(sample["specversion"], "1.0");
        assert_eq!(sample["type"], entry.type_name);
        assert_eq!(sample["dataschema"], url.as_str());
        assert_eq!(sample["data"], entry.sample_data());
        assert!(sample["subject"].as_str().unwrap().starts_with("wallets/"));
    }

    // With a wallet chosen (or one in the token), its links keep the wallet.
    let (wallet, _) = wallet_with_channel(&app, "Catalogued").await;
    let (status, html) = page(&app, &cookie, &format!("/ui/integrations/events?wallet={wallet}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("href=\"/ui/integrations/deliveries?wallet={wallet}\"")));
    let token = app.token("reader", &["WALLET_INTEGRATION_CHANNEL_READ"], Some(&wallet));
    let reader = sign_in(&app, &token).await;
    let (status, html) = page(&app, &reader, "/ui/integrations/events").await;
    assert_eq!(status, 200);
    assert_eq!(
        html.matches("<section class=\"card event-type\"").count(),
        CATALOG.len()
    );
    let (status, _) = page(&app, &cookie, "/ui/integrations/events?wallet=nope").await;
    assert_eq!(status, 400, "a wallet that is not a key is refused here too");
}

async fn channel_form_links_to_the_catalog(app: TestApp) {
    let (wallet, channel) = wallet_with_channel(&app, "Linked").await;
    let cookie = sign_in(&app, &app.admin_token.clone()).await;
    let (_, catalog) = page(&app, &cookie, &format!("/ui/integrations/events?wallet={wallet}")).await;
    for path in [
        format!("/ui/integrations/channels/new?wallet={wallet}"),
        format!("/ui/integrations/channels/{channel}?wallet={wallet}"),
    ] {
        let (status, html) = page(&app, &cookie, &path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains(&format!(
                "href=\"/ui/integrations/events?wallet={wallet}\" data-testid=\"catalog-link\""
            )),
            "{path}: {html}"
        );
        for entry in CATALOG {
            let anchor = format!("/ui/integrations/events?wallet={wallet}#{}", entry.type_name);
            assert!(html.contains(&format!("href=\"{anchor}\"")), "{path}: {anchor}");
            assert!(
                catalog.contains(&format!("id=\"{}\"", entry.type_name)),
                "the anchor exists"
            );
        }
    }
}

both_backends!(
    picker_lists_searches_and_pages_wallets,
    a_wallet_token_gets_no_picker,
    catalog_page_shows_every_event_type,
    channel_form_links_to_the_catalog,
);

/// A delivery whose wallet's integration data was erased still has its page, which says so and
/// shows the envelope without data.
async fn an_erased_delivery_has_its_page(app: TestApp) {
    let (wallet, _) = wallet_with_channel(&app, "erp").await;
    let response = app
        .post(
            &format!("/api/v1/wallets/{wallet}/identifiers"),
            Some(&app.admin_token),
            &json!({"identifierType": "JWK", "displayName": "Erased Person Hn36"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let (status, erased) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/wallets/{wallet}/integration-data/erase"),
            None,
        )
        .await;
    assert_eq!((status, erased["dismissed"].as_u64()), (200, Some(1)));
    let (_, log) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/wallets/{wallet}/integration-deliveries?state=all"),
            None,
        )
        .await;
    let key = log["items"][0]["deliveryExternalKey"].as_str().unwrap().to_string();
    let token = app.token("reader", &["WALLET_INTEGRATION_DELIVERY_READ"], Some(&wallet));
    let cookie = sign_in(&app, &token).await;
    let (status, html) = page(&app, &cookie, &format!("/ui/integrations/deliveries/{key}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-testid=\"data-erased\""), "{html}");
    assert!(html.contains("DISMISSED"));
    assert!(!html.contains("Erased Person Hn36"));
}

both_backends!(an_erased_delivery_has_its_page);
