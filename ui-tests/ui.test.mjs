// Browser scenarios of Settings -> Integrations, against the real server (scripts/checks/ui.sh).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  BASE, IDENTIFIER_CREATED, browser, createChannel, createIdentifier, createWallet, csrfOf, deliveries, inspect,
  eventually, mint, postFrom, receiver, signIn,
} from "./lib.mjs";

const OPERATOR = [
  "WALLET_INTEGRATION_CHANNEL_CRUD",
  "WALLET_INTEGRATION_DELIVERY_CRUD",
  "WALLET_IDENTIFIER_CRUD",
];
let hook;
before(async () => {
  hook = await receiver(200);
});
after(async () => {
  await hook.close();
});

test("create a webhook channel, see its secret once, and a DELIVERED delivery with request and response", async () => {
  const wallet = await createWallet("Acme UI");
  const token = mint("operator", OPERATOR, wallet);
  const { page, close } = await browser();
  try {
    await signIn(page, token);
    await inspect(page, "channels-empty");
    assert.ok(await page.getByTestId("empty").isVisible());

    await page.getByRole("link", { name: "New channel" }).click();
    await page.getByLabel("Name", { exact: true }).fill("Orders webhook");
    await page.getByLabel("Description").fill("Sends identifier events to the order system");
    await page.getByLabel(IDENTIFIER_CREATED).check();
    await page.getByLabel("URL", { exact: true }).fill(hook.url);
    await page.getByLabel("Timeout (milliseconds)").fill("5000");
    await inspect(page, "channel-new");
    await page.getByRole("button", { name: "Create channel" }).click();

    const secret = (await page.getByTestId("secret").textContent()).trim();
    assert.ok(secret.length >= 16, `a secret is shown: ${secret}`);
    await page.getByRole("button", { name: "Copy" }).waitFor();
    await inspect(page, "channel-secret");
    await page.reload();
    assert.ok(await page.getByTestId("secret-gone").isVisible(), "the secret page says it is gone");
    assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
    await inspect(page, "channel-secret-gone");

    await page.goto(`${BASE}/ui/integrations/channels`);
    await assert.doesNotReject(page.getByRole("cell", { name: hook.url }).waitFor());
    await inspect(page, "channels");

    // The wallet exists before its channel, so its identifier.created event is the one to see.
    const before = hook.seen.length;
    await createIdentifier(wallet, token);
    await eventually("the receiver to get the event", () => hook.seen.length > before);
    const delivered = await eventually("a DELIVERED delivery", async () => (await deliveries(wallet, "DELIVERED"))[0]);

    await page.goto(`${BASE}/ui/integrations/deliveries?state=DELIVERED`);
    await inspect(page, "deliveries-delivered");
    await page.locator(`tr[data-delivery="${delivered.deliveryExternalKey}"] a`).click();
    assert.equal(await page.getByTestId("state").textContent(), "DELIVERED");
    assert.match(await page.getByTestId("envelope").textContent(), /identifier\.created\.v1/);
    const attempt = page.getByTestId("attempt").first();
    assert.match(await attempt.textContent(), /ce-type/i, "request headers are shown");
    assert.match(await attempt.textContent(), /\[redacted\]/, "the signature is redacted");
    assert.equal(await attempt.getByTestId("response-status").textContent(), "Status 200");
    assert.match(await attempt.textContent(), /thanks/, "the response body excerpt is shown");
    await inspect(page, "delivery-detail");

    // The same pages at phone width.
    await page.setViewportSize({ width: 390, height: 844 });
    for (const tab of ["channels", "deliveries", "history"]) {
      await page.goto(`${BASE}/ui/integrations/${tab}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${tab} fits 390 px (overflow ${overflow})`);
      await inspect(page, `${tab}-390`);
    }
    await page.goto(`${BASE}/ui/integrations/history`);
    assert.match(await page.getByTestId("history").textContent(), /CHANNEL_CREATED/);
  } finally {
    await close();
  }
});

test("a FAILED delivery is replayed to DELIVERED, another dismissed out of the default filter, the rest replayed in bulk", async () => {
  const wallet = await createWallet("Failing receiver");
  const failing = await receiver(404);
  try {
    await createChannel(wallet, "Flaky", failing.url);
    await createIdentifier(wallet);
    await createIdentifier(wallet);
    await createIdentifier(wallet);
    const failed = await eventually("three FAILED deliveries", async () => {
      const items = await deliveries(wallet, "FAILED");
      return items.length === 3 && items;
    });
    const { page, close } = await browser();
    try {
      await signIn(page, mint("operator", OPERATOR, wallet));
      await page.goto(`${BASE}/ui/integrations/deliveries`);
      await inspect(page, "deliveries-failed");
      for (const d of failed) {
        assert.equal(await page.locator(`tr[data-delivery="${d.deliveryExternalKey}"]`).getAttribute("data-state"), "FAILED");
      }

      failing.setStatus(200);
      const [replayed, dismissed, rest] = failed;
      await page.locator(`tr[data-delivery="${replayed.deliveryExternalKey}"] a`).click();
      await inspect(page, "delivery-failed");
      await page.getByRole("button", { name: "Replay" }).click();
      // The form posts and comes back to this page: wait for the new page (no longer FAILED)
      // before reloading, so that a reload never races the redirect.
      await page.getByTestId("state").filter({ hasNotText: "FAILED" }).waitFor();
      await eventually("the replay to be delivered", async () => {
        await page.reload();
        return (await page.getByTestId("state").textContent()) === "DELIVERED";
      });
      await inspect(page, "delivery-replayed");

      await page.goto(`${BASE}/ui/integrations/deliveries/${dismissed.deliveryExternalKey}`);
      await page.getByRole("button", { name: "Dismiss" }).click();
      assert.equal(await page.getByTestId("state").textContent(), "DISMISSED");
      assert.equal(await page.getByRole("button", { name: "Replay" }).count(), 0, "no Replay on a DISMISSED delivery");

      await page.goto(`${BASE}/ui/integrations/deliveries`);
      await inspect(page, "deliveries-after");
      assert.equal(await page.locator(`tr[data-delivery="${dismissed.deliveryExternalKey}"]`).count(), 0, "DISMISSED leaves the default filter");
      assert.equal(await page.locator(`tr[data-delivery="${replayed.deliveryExternalKey}"]`).count(), 0, "DELIVERED leaves the default filter");

      // The filters are folded away; their summary says which are set.
      assert.equal(await page.getByLabel("DISMISSED").isVisible(), false);
      await page.locator("details.filters > summary").click();
      await page.getByLabel("DISMISSED").check();
      await page.getByRole("button", { name: "Apply filters" }).click();
      assert.equal(await page.locator(`tr[data-delivery="${dismissed.deliveryExternalKey}"]`).getAttribute("data-state"), "DISMISSED");

      // Bulk replay of the FAILED deliveries that match the filters: the one left.
      await page.goto(`${BASE}/ui/integrations/deliveries`);
      assert.equal(await page.locator(`tr[data-delivery="${rest.deliveryExternalKey}"]`).getAttribute("data-state"), "FAILED");
      await page.getByRole("link", { name: /Replay the FAILED deliveries matching/ }).click();
      assert.match(await page.getByTestId("bulk-count").textContent(), /1 FAILED delivery matches these filters/);
      assert.equal((await deliveries(wallet, "FAILED")).length, 1, "nothing is replayed before the confirmation");
      await page.getByRole("button", { name: "Replay 1 delivery" }).click();
      assert.match(await page.getByTestId("notice").textContent(), /queued again: 1\./);
      await eventually("the bulk replay to be delivered", async () =>
        (await deliveries(wallet, "DELIVERED")).some((d) => d.deliveryExternalKey === rest.deliveryExternalKey));
      await inspect(page, "deliveries-bulk-replayed");
    } finally {
      await close();
    }
  } finally {
    await failing.close();
  }
});

test("a READ-only user sees no Replay, Dismiss, edit or secret, and a forged post is refused", async () => {
  const wallet = await createWallet("Read only");
  const failing = await receiver(404);
  try {
    const channel = await createChannel(wallet, "Watched", failing.url);
    await createIdentifier(wallet);
    const [failed] = await eventually("a FAILED delivery", async () => {
      const items = await deliveries(wallet, "FAILED");
      return items.length === 1 && items;
    });
    const reader = mint("reader", ["WALLET_INTEGRATION_CHANNEL_READ", "WALLET_INTEGRATION_DELIVERY_READ"], wallet);
    const { page, close } = await browser();
    try {
      await signIn(page, reader);
      await inspect(page, "reader-channels");
      const forbidden = ["New channel", "Disable", "Send test event", "Delete", "Rotate secret", "Save changes", "Replay", "Dismiss"];
      const noneOf = async (where) => {
        for (const name of forbidden) {
          assert.equal(await page.getByRole("button", { name }).count(), 0, `no ${name} button on ${where}`);
          assert.equal(await page.getByRole("link", { name }).count(), 0, `no ${name} link on ${where}`);
        }
      };
      await noneOf("channels");
      await page.getByRole("link", { name: "Watched" }).click();
      await inspect(page, "reader-channel");
      await noneOf("the channel");
      assert.ok(await page.getByLabel("Name", { exact: true }).isDisabled(), "the form is read-only");
      await page.goto(`${BASE}/ui/integrations/deliveries`);
      assert.equal(await page.getByRole("link", { name: /Replay the FAILED/ }).count(), 0);
      await page.locator(`tr[data-delivery="${failed.deliveryExternalKey}"] a`).click();
      await inspect(page, "reader-delivery");
      await noneOf("the delivery");
      await page.goto(`${BASE}/ui/integrations/channels/${channel.channelExternalKey}/secret`);
      assert.ok(await page.getByTestId("secret-gone").isVisible());

      // Forged posts with the reader's own, valid CSRF token: refused by the services.
      const csrf = await csrfOf(page);
      assert.equal(await postFrom(page, `/ui/integrations/deliveries/${failed.deliveryExternalKey}/replay`, { _csrf: csrf }), 403);
      assert.equal(await postFrom(page, `/ui/integrations/deliveries/${failed.deliveryExternalKey}/dismiss`, { _csrf: csrf }), 403);
      assert.equal(await postFrom(page, `/ui/integrations/channels/${channel.channelExternalKey}/rotate`, { _csrf: csrf }), 403);
      assert.equal(await postFrom(page, `/ui/integrations/channels/${channel.channelExternalKey}/delete`, { _csrf: csrf }), 403);
      assert.equal((await deliveries(wallet, "FAILED")).length, 1, "the delivery is still FAILED");
    } finally {
      await close();
    }
  } finally {
    await failing.close();
  }
});

test("a form post without the CSRF token is refused", async () => {
  const wallet = await createWallet("CSRF");
  const channel = await createChannel(wallet, "Guarded", hook.url);
  const { page, close } = await browser();
  try {
    await signIn(page, mint("operator", OPERATOR, wallet));
    const rotate = `/ui/integrations/channels/${channel.channelExternalKey}/rotate`;
    assert.equal(await postFrom(page, rotate, {}), 403, "no token");
    assert.equal(await postFrom(page, rotate, { _csrf: "forged" }), 403, "a wrong token");
    assert.equal(await postFrom(page, `/ui/integrations/channels/${channel.channelExternalKey}/delete`, {}), 403);
    assert.equal(await postFrom(page, "/ui/sign-out", {}), 403);
    await page.goto(`${BASE}${rotate}`.replace("/rotate", ""));
    await inspect(page, "operator-channel");
    // With the token it works: the new secret is shown once.
    await page.getByRole("button", { name: "Rotate secret" }).click();
    assert.ok((await page.getByTestId("secret").textContent()).trim().length >= 16);
    const { body } = await (async () => {
      const r = await fetch(`${BASE}/api/v1/wallets/${wallet}/history?event=INTEGRATION`, {
        headers: { authorization: `Bearer ${process.env.UI_ADMIN_TOKEN}` },
      });
      return { body: await r.json() };
    })();
    const rotations = body.items.filter((e) => e.action === "CHANNEL_SECRET_ROTATED");
    assert.equal(rotations.length, 1, "only the post with the token rotated the secret");

    // Test sends, of the saved channel and of an unsaved draft: outcome, status and time.
    await page.goto(`${BASE}/ui/integrations/channels/${channel.channelExternalKey}`);
    await page.getByRole("button", { name: "Send test event" }).click();
    const saved = await page.getByTestId("test-result").textContent();
    assert.match(saved, /DELIVERED/);
    assert.match(saved, /200/);
    assert.match(saved, /\d+ ms/);
    await inspect(page, "test-send");
    await page.goto(`${BASE}/ui/integrations/channels/new`);
    await page.getByLabel("Name", { exact: true }).fill("Draft");
    await page.getByLabel(IDENTIFIER_CREATED).check();
    await page.getByLabel("URL", { exact: true }).fill(hook.url);
    await page.getByRole("button", { name: /Send test event/ }).click();
    assert.match(await page.getByTestId("test-result").textContent(), /DELIVERED/);
    await inspect(page, "test-send-draft");
  } finally {
    await close();
  }
});
