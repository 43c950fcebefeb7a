// Browser scenario of the wallet picker and the event catalog, against the real server
// (scripts/checks/ui.sh): an operator with GLOBAL_WALLET_CRUD finds a wallet by name, opens it,
// moves through the tabs without losing it, and reads the catalog the channel form links to.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADMIN, BASE, IDENTIFIER_CREATED, browser, createWallet, inspect, signIn } from "./lib.mjs";

/** The `wallet` query parameter of the page's URL. */
function walletOf(page) {
  return new URL(page.url()).searchParams.get("wallet");
}

test("an admin searches the wallet picker, keeps the chosen wallet on every tab, and reads the event catalog", async () => {
  const stamp = Date.now().toString(36);
  const wanted = await createWallet(`Zürich Freight ${stamp}`);
  const other = await createWallet(`Rotterdam Freight ${stamp}`);
  const { page, close } = await browser();
  try {
    await signIn(page, ADMIN);
    assert.ok(await page.getByRole("heading", { name: "Choose a wallet" }).isVisible());
    assert.ok(await page.getByRole("link", { name: "Platform (all wallets)" }).isVisible());
    await inspect(page, "picker");

    // The search ignores case and accents.
    await page.getByLabel("Search wallets by name").fill(`zurich freight ${stamp.toUpperCase()}`);
    await page.getByRole("button", { name: "Search" }).click();
    await page.waitForURL(/[?&]name=/);
    const rows = page.getByTestId("wallets").locator("li");
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.first().getAttribute("data-wallet"), wanted);
    assert.equal(await page.locator(`li[data-wallet="${other}"]`).count(), 0);
    assert.equal(await page.getByLabel("Search wallets by name").inputValue(), `zurich freight ${stamp.toUpperCase()}`);
    await inspect(page, "picker-search");

    await page.getByRole("link", { name: `Zürich Freight ${stamp}` }).click();
    await page.waitForURL(/\/ui\/integrations\/channels\?wallet=/);
    assert.equal(walletOf(page), wanted);
    assert.equal(await page.getByTestId("wallet").textContent(), wanted);
    await inspect(page, "picked-channels");

    const tabs = page.getByRole("navigation", { name: "Integrations" });
    for (const [name, path] of [
      ["Deliveries", "deliveries"],
      ["History", "history"],
      ["Event types", "events"],
      ["Channels", "channels"],
    ]) {
      await tabs.getByRole("link", { name }).click();
      await page.waitForURL(new RegExp(`/ui/integrations/${path}\\?`));
      assert.equal(walletOf(page), wanted, `${name} keeps the wallet`);
      assert.equal(await page.getByTestId("wallet").textContent(), wanted);
      assert.equal(await tabs.getByRole("link", { name }).getAttribute("aria-current"), "page");
      await inspect(page, `picked-${path}`);
    }

    // The channel form links each event type to its entry in the catalog.
    await page.getByRole("link", { name: "New channel" }).click();
    await page.waitForURL(/\/ui\/integrations\/channels\/new\?wallet=/);
    await inspect(page, "channel-form-catalog-links");
    await page.getByRole("link", { name: `About ${IDENTIFIER_CREATED}` }).click();
    await page.waitForURL(/\/ui\/integrations\/events\?wallet=/);
    assert.equal(walletOf(page), wanted);
    assert.equal(new URL(page.url()).hash, `#${IDENTIFIER_CREATED}`);
    const entry = page.locator(`section[id="${IDENTIFIER_CREATED}"]`);
    assert.ok(await entry.isVisible());
    assert.match(await entry.getByTestId("description").textContent(), /identifier/i);
    assert.match(await entry.getByTestId("subject").textContent(), /\{identifierExternalKey\}/);
    const sample = JSON.parse(await entry.getByTestId("sample").textContent());
    assert.equal(sample.type, IDENTIFIER_CREATED);
    assert.equal(sample.specversion, "1.0");

    // The schema is shown on demand and is the one the public URL serves.
    const schemaUrl = await entry.getByTestId("schema-link").getAttribute("href");
    assert.ok(schemaUrl.startsWith(BASE + "/api/public/schemas/integration/"), schemaUrl);
    assert.ok(!(await entry.getByTestId("schema").isVisible()), "the schema starts folded");
    await entry.getByText("JSON Schema of the data").click();
    assert.ok(await entry.getByTestId("schema").isVisible());
    const served = await (await fetch(schemaUrl)).json();
    assert.deepEqual(JSON.parse(await entry.getByTestId("schema").textContent()), served);
    await inspect(page, "events-schema-open");
  } finally {
    await close();
  }
});
