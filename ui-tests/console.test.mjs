// Browser scenarios of the operator console: searching and reading the deliveries log, attempts
// across a replay, bulk dismiss behind its confirmation, notices, the channel form's errors and a
// draft test send, at laptop and phone size (scripts/checks/ui.sh).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ADMIN, BASE, IDENTIFIER_CREATED, PHONE, WIDE, api, browser, createChannel, createIdentifier, createWallet,
  deliveries, eventually, inspect, mint, receiver, signIn,
} from "./lib.mjs";

const OPERATOR = [
  "WALLET_INTEGRATION_CHANNEL_CRUD",
  "WALLET_INTEGRATION_DELIVERY_CRUD",
  "WALLET_IDENTIFIER_CRUD",
];

test("search the log, read a delivery's attempts across a replay, and bulk dismiss after confirming", async () => {
  const wallet = await createWallet("Console");
  const failing = await receiver(404);
  try {
    await createChannel(wallet, "Refusing", failing.url);
    await createIdentifier(wallet);
    await createIdentifier(wallet);
    const failed = await eventually("two FAILED deliveries", async () => {
      const items = await deliveries(wallet, "FAILED");
      return items.length === 2 && items;
    });
    const { page, close } = await browser();
    try {
      await signIn(page, mint("operator", OPERATOR, wallet));
      await page.goto(`${BASE}/ui/integrations/deliveries`);
      await inspect(page, "console-deliveries");

      // Times read in UTC, on one line, with their age.
      const stamp = page.locator("time.stamp").first();
      assert.match(await stamp.textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      assert.equal(await stamp.evaluate((el) => getComputedStyle(el).whiteSpace), "nowrap");

      // Search by event id: the one delivery of that event.
      const [target, other] = failed;
      await page.locator("details.filters > summary").click();
      await page.getByLabel("Event id").fill(target.eventId);
      await page.getByLabel("Event type").selectOption(IDENTIFIER_CREATED);
      await page.getByRole("button", { name: "Apply filters" }).click();
      assert.equal(await page.locator("tr[data-delivery]").count(), 1);
      assert.equal(await page.locator(`tr[data-delivery="${target.deliveryExternalKey}"]`).count(), 1);
      assert.match(await page.getByTestId("filter-summary").textContent(), new RegExp(`event id ${target.eventId}`));
      await inspect(page, "console-search-by-event-id");

      // On a phone the row is a card: its state and last error are on screen, not to the side.
      await page.setViewportSize(PHONE);
      for (const cell of ["State", "Last error"]) {
        const box = await page.locator(`tr[data-delivery="${target.deliveryExternalKey}"] td[data-label="${cell}"]`).boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `${cell} is within the 390 px screen: ${JSON.stringify(box)}`);
      }
      assert.match(
        await page.locator(`tr[data-delivery="${target.deliveryExternalKey}"] td[data-label="Last error"]`).textContent(),
        /404/,
      );
      await page.setViewportSize(WIDE);

      // Replay it while the receiver still refuses: a second round of attempts.
      await page.locator(`tr[data-delivery="${target.deliveryExternalKey}"] a`).click();
      await page.getByRole("button", { name: "Replay" }).click();
      assert.match(await page.getByTestId("notice").textContent(), /Delivery queued again/);
      await eventually("the replay to fail again", async () => {
        await page.reload();
        return (await page.getByTestId("state").textContent()) === "FAILED";
      });
      await page.goto(`${BASE}/ui/integrations/deliveries/${target.deliveryExternalKey}`);
      // Newest first, numbered on across the replay, the boundary marked; only the newest open.
      const attempts = page.getByTestId("attempt");
      assert.equal(await attempts.count(), 2);
      assert.deepEqual(await attempts.evaluateAll((els) => els.map((e) => [e.dataset.number, e.open])), [["2", true], ["1", false]]);
      assert.match(await attempts.first().locator("> summary").textContent(), /Attempt 2.*attempt 1 after replay 1/s);
      assert.match(await page.getByTestId("replay-boundary").textContent(), /after replay 1/);
      // The request body is indented JSON; it and the request as curl can be copied.
      const body = await attempts.first().locator("pre").first().textContent();
      assert.match(body, /^\{\n {2}"/, "the body is pretty-printed");
      await attempts.first().getByText("As a curl command").click();
      const curl = await attempts.first().getByTestId("curl").textContent();
      assert.match(curl, /^curl -X POST '?http:\/\/127\.0\.0\.1:\d+\/hook'? /);
      assert.match(curl, /x-credenco-signature: t=\d+,v1=\[redacted\]/i, "the signature stays redacted");
      await attempts.first().getByRole("button", { name: "Copy curl" }).click();
      assert.match(await attempts.first().getByRole("button", { name: /Copied|Selected/ }).textContent(), /Copied|Selected/);
      await inspect(page, "console-delivery-after-replay");
      await attempts.nth(1).locator("> summary").click();
      await inspect(page, "console-delivery-both-attempts-open");

      // Bulk dismiss: the count first, nothing done until confirmed, then a notice and history.
      await page.goto(`${BASE}/ui/integrations/deliveries`);
      await page.getByRole("link", { name: /Dismiss the FAILED deliveries matching/ }).click();
      assert.match(await page.getByTestId("bulk-count").textContent(), /2 FAILED deliveries match these filters/);
      await inspect(page, "console-confirm-bulk-dismiss");
      assert.equal((await deliveries(wallet, "FAILED")).length, 2, "nothing dismissed before the confirmation");
      await page.getByRole("button", { name: "Dismiss 2 deliveries" }).click();
      assert.match(await page.getByTestId("notice").textContent(), /Failed deliveries dismissed: 2\./);
      await inspect(page, "console-bulk-dismissed");
      assert.equal((await deliveries(wallet, "DISMISSED")).length, 2);
      assert.ok((await deliveries(wallet, "DISMISSED")).some((d) => d.deliveryExternalKey === other.deliveryExternalKey));
      await page.getByRole("link", { name: "History" }).click();
      assert.match(await page.getByTestId("history").textContent(), /DELIVERIES_DISMISSED/);
      await inspect(page, "console-history");
    } finally {
      await close();
    }
  } finally {
    await failing.close();
  }
});

test("the channel form shows every error at once, and a failed draft test keeps what was typed", async () => {
  const wallet = await createWallet("Form");
  const refusing = await receiver(404);
  try {
    const { page, close } = await browser();
    try {
      await signIn(page, mint("operator", OPERATOR, wallet));
      await page.goto(`${BASE}/ui/integrations/channels/new`);
      await page.getByLabel("URL", { exact: true }).fill("not a url");
      await page.getByLabel("Timeout (milliseconds)").fill("soon");
      await page.getByRole("button", { name: "Create channel" }).click();
      const summary = page.getByTestId("form-error");
      assert.match(await summary.textContent(), /4 things need fixing/);
      assert.equal(await summary.locator("li").count(), 4);
      for (const [label, message] of [
        ["Name", /must not be empty/],
        ["URL", /webhook\.url/],
        ["Timeout (milliseconds)", /whole number of milliseconds/],
      ]) {
        // Each error sits right after its field.
        const next = await page.getByLabel(label, { exact: true }).evaluate((el) => el.nextElementSibling?.textContent ?? "");
        assert.match(next, message, `${label}: ${next}`);
      }
      assert.equal(await page.getByLabel("URL", { exact: true }).inputValue(), "not a url", "what was typed is kept");
      await inspect(page, "console-form-errors");

      // A draft test send to a receiver that refuses: the result, and the form as it was typed.
      await page.getByLabel("Name", { exact: true }).fill("Draft to a refusing receiver");
      await page.getByLabel("Description").fill("kept after the test");
      await page.getByLabel(IDENTIFIER_CREATED).check();
      await page.getByLabel("URL", { exact: true }).fill(refusing.url);
      await page.getByLabel("Timeout (milliseconds)").fill("3000");
      await page.getByRole("button", { name: /Send test event/ }).click();
      const result = await page.getByTestId("test-result").textContent();
      assert.match(result, /REJECTED|FAILED|RETRYABLE/);
      assert.match(result, /404/);
      assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), "Draft to a refusing receiver");
      assert.equal(await page.getByLabel("Description").inputValue(), "kept after the test");
      assert.equal(await page.getByLabel("URL", { exact: true }).inputValue(), refusing.url);
      assert.ok(await page.getByLabel(IDENTIFIER_CREATED).isChecked());
      await inspect(page, "console-draft-test-failed");
      // Saved from there, it is a channel, with a notice on the list after an edit.
      await page.getByRole("button", { name: "Create channel" }).click();
      await page.getByTestId("secret").waitFor();
      await page.goto(`${BASE}/ui/integrations/channels`);
      await page.getByRole("link", { name: "Draft to a refusing receiver" }).click();
      await page.getByRole("button", { name: "Save changes" }).click();
      assert.match(await page.getByTestId("notice").textContent(), /Channel saved/);
      await inspect(page, "console-channel-saved");
      // Deleting asks first, then says it is done.
      await page.getByRole("link", { name: "Delete" }).click();
      await inspect(page, "console-confirm-delete");
      await page.getByRole("button", { name: "Delete channel" }).click();
      assert.match(await page.getByTestId("notice").textContent(), /Channel deleted/);
      assert.equal(await page.getByRole("link", { name: "Draft to a refusing receiver" }).count(), 0);
      await inspect(page, "console-channel-deleted");
      // A filter that is no filter: the error page, with the way back.
      await page.goto(`${BASE}/ui/integrations/deliveries?event_id=nope`);
      assert.match(await page.getByTestId("error-message").textContent(), /eventId/);
      await inspect(page, "console-error-page");
    } finally {
      await close();
    }
  } finally {
    await refusing.close();
  }
});

test("a channel whose receiver answers 500 shows as failing, with its failures in a row, last error and chart", async () => {
  const wallet = await createWallet("Health");
  const broken = await receiver(500);
  const fine = await receiver(200);
  try {
    const failing = await createChannel(wallet, "Broken receiver", broken.url);
    await createChannel(wallet, "Working receiver", fine.url);
    await createIdentifier(wallet);
    await eventually("the broken receiver to be tried", () => broken.seen.length > 0);
    await eventually("the working receiver to get the event", () => fine.seen.length > 0);
    const { page, close } = await browser();
    try {
      await signIn(page, mint("operator", OPERATOR, wallet));
      const row = page.locator(`tr[data-channel="${failing.channelExternalKey}"]`);
      await eventually("the channel list to show it failing", async () => {
        await page.goto(`${BASE}/ui/integrations/channels`);
        return (await row.locator("[data-health]").getAttribute("data-health")) === "failing";
      });
      assert.match(await row.getByTestId("consecutive-failures").textContent(), /^\d+ failed in a row$/);
      assert.match(await row.getByTestId("last-error").textContent({ timeout: 1000 }), /500/);
      const healthy = page.locator("tr[data-channel]").filter({ hasText: "Working receiver" });
      assert.equal(await healthy.locator("[data-health]").getAttribute("data-health"), "healthy");
      assert.match(await healthy.textContent(), /1 h: 1 attempts, 100% ok/);
      await inspect(page, "health-channels");

      // At phone size the list is cards: the badge is on screen.
      await page.setViewportSize(PHONE);
      const badge = await row.locator("[data-health]").boundingBox();
      assert.ok(badge && badge.x + badge.width <= PHONE.width, `the badge is within the screen: ${JSON.stringify(badge)}`);
      await page.setViewportSize(WIDE);

      // The channel's page: its health and its chart of the last day.
      await row.getByRole("link", { name: "Broken receiver" }).click();
      const health = page.getByTestId("health");
      assert.equal(await health.locator("[data-health]").getAttribute("data-health"), "failing");
      assert.match(await health.getByTestId("last-error").textContent(), /500/);
      assert.ok(Number(await health.getByTestId("consecutive-failures").textContent()) >= 1);
      assert.equal(await page.locator("figure.chart svg").count(), 1, "an inline SVG chart");
      await inspect(page, "health-channel-page");

      // The deliveries page's chart covers the whole wallet.
      await page.getByRole("link", { name: "Deliveries" }).click();
      const chart = page.locator("figure.chart svg");
      assert.equal(await chart.count(), 1);
      assert.match(await page.locator("figure.chart svg > title").textContent(), /\d/, "the chart says its totals");
      await inspect(page, "health-deliveries-chart");
    } finally {
      await close();
    }
  } finally {
    await broken.close();
    await fine.close();
  }
});

test("the platform view searches by the event's wallet and a UTC time, and a test send carries the channel's wallet", async () => {
  const north = await createWallet("North");
  const south = await createWallet("South");
  const hook = await receiver(200);
  try {
    const created = await api("POST", "/api/integration-channels", ADMIN, {
      name: `Every wallet ${Date.now()}`,
      type: "WEBHOOK",
      eventTypeFilters: [IDENTIFIER_CREATED],
      webhook: { url: hook.url },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await createIdentifier(north);
    await createIdentifier(south);
    const platformChannel = created.body.channelExternalKey;
    const delivered = (w) => api("GET", `/api/integration-deliveries?state=DELIVERED&wallet=${w}`, ADMIN);
    await eventually("both wallets' events delivered on the platform channel", async () =>
      (await delivered(north)).body.items.length === 1 && (await delivered(south)).body.items.length === 1);
    const { page, close } = await browser();
    try {
      await signIn(page, ADMIN);
      await page.goto(`${BASE}/ui/integrations/deliveries?wallet=platform`);
      await page.locator("details.filters > summary").click();
      await page.getByLabel("DELIVERED", { exact: true }).check();
      await page.getByLabel("Wallet of the event").fill(north);
      const hourAgo = new Date(Date.now() - 3_600_000).toISOString().slice(0, 16).replace("T", " ");
      await page.getByLabel("Created from (UTC)").fill(hourAgo);
      await page.getByRole("button", { name: "Apply filters" }).click();
      const rows = page.locator("tr[data-delivery]");
      assert.equal(await rows.count(), 1);
      assert.match(await rows.first().textContent(), new RegExp(north));
      assert.doesNotMatch(await rows.first().textContent(), new RegExp(south));
      const summary = await page.getByTestId("filter-summary").textContent();
      assert.match(summary, new RegExp(`wallet of the event ${north}`));
      assert.match(summary, new RegExp(`created from \\(utc\\) ${hourAgo}`));
      await inspect(page, "platform-search-by-wallet");
      // From a time still to come: nothing yet.
      const later = new Date(Date.now() + 3_600_000).toISOString().slice(0, 16).replace("T", " ");
      await page.locator("details.filters > summary").click();
      await page.getByLabel("Created from (UTC)").fill(later);
      await page.getByRole("button", { name: "Apply filters" }).click();
      assert.ok(await page.getByTestId("empty").isVisible());

      // A test send of a wallet's channel carries that wallet's key.
      const channel = await createChannel(north, "North receiver", hook.url);
      await page.goto(`${BASE}/ui/integrations/channels/${channel.channelExternalKey}?wallet=${north}`);
      const before = hook.seen.length;
      await page.getByRole("button", { name: "Send test event" }).click();
      assert.match(await page.getByTestId("test-result").textContent(), /DELIVERED/);
      const sent = hook.seen.slice(before).at(-1);
      assert.equal(sent.headers["ce-walletexternalkey"], north);
      assert.match(sent.body, new RegExp(north));
      await inspect(page, "test-send-wallet-key");
    } finally {
      await close();
      // The platform channel would get the events of the tests that follow.
      const removed = await api("DELETE", `/api/integration-channels/${platformChannel}`, ADMIN);
      assert.equal(removed.status, 204);
    }
  } finally {
    await hook.close();
  }
});

test("a channel that keeps failing shows as FAILING, and Resume makes it ACTIVE", async () => {
  const wallet = await createWallet("Ladder");
  const failing = await receiver(404);
  try {
    const channel = await createChannel(wallet, "Refusing ERP", failing.url);
    // Five refused attempts in a row (the default threshold) make the channel FAILING.
    for (let i = 0; i < 5; i++) await createIdentifier(wallet);
    await eventually("the channel to be FAILING", async () => {
      const { body } = await api("GET", `/api/wallets/${wallet}/integration-channels/${channel.channelExternalKey}`, ADMIN);
      return body.deliveryState === "FAILING";
    });
    const { page, close } = await browser();
    try {
      await signIn(page, mint("operator", OPERATOR, wallet));
      await page.goto(`${BASE}/ui/integrations/channels`);
      const row = page.locator(`tr[data-channel="${channel.channelExternalKey}"]`);
      assert.equal(await row.locator("[data-delivery-state]").textContent(), "FAILING");
      await inspect(page, "channels-failing");
      await page.goto(`${BASE}/ui/integrations/channels/${channel.channelExternalKey}`);
      assert.match(await page.getByTestId("delivery-state-notice").textContent(), /FAILING since .* UTC.*failed in a row/s);
      await inspect(page, "channel-failing");
      failing.setStatus(200);
      await page.getByTestId("delivery-state-notice").getByRole("button", { name: "Resume" }).click();
      assert.match(await page.getByTestId("notice").textContent(), /Channel resumed/);
      assert.equal(await page.locator(`tr[data-channel="${channel.channelExternalKey}"] [data-delivery-state]`).textContent(), "ACTIVE");
      assert.equal(await page.getByRole("button", { name: "Resume" }).count(), 0);
    } finally {
      await close();
    }
  } finally {
    await failing.close();
  }
});
