// Helpers of the browser tests: the API, tokens, a switchable webhook receiver and Chromium.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const BASE = process.env.UI_BASE_URL;
export const ADMIN = process.env.UI_ADMIN_TOKEN;
if (!BASE || !ADMIN) {
  throw new Error("run these tests through scripts/checks/ui.sh (UI_BASE_URL and UI_ADMIN_TOKEN are unset)");
}

export const IDENTIFIER_CREATED = "com.credenco.businesswallet.identifier.created.v1";
const here = path.dirname(fileURLToPath(import.meta.url));
const screenshots = path.join(here, "screenshots");
mkdirSync(screenshots, { recursive: true });

/** Calls the JSON API; returns { status, body }. */
export async function api(method, route, token, body) {
  const response = await fetch(BASE + route, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Mints a token with the server's local key. */
export function mint(sub, authorities, wallet) {
  const args = ["token", "--sub", sub];
  for (const a of authorities) args.push("--authority", a);
  if (wallet) args.push("--wallet", wallet);
  return execFileSync(process.env.UI_BIN, args, { cwd: process.env.BW_DATA_DIR, encoding: "utf8" }).trim();
}

export async function createWallet(name) {
  const { status, body } = await api("POST", "/api/v1/wallets", ADMIN, { displayName: name });
  if (status !== 201) throw new Error(`wallet not created: ${status} ${JSON.stringify(body)}`);
  return body.walletExternalKey;
}

export async function createIdentifier(wallet, token = ADMIN) {
  const { status, body } = await api("POST", `/api/v1/wallets/${wallet}/identifiers`, token, {
    identifierType: "JWK",
    displayName: "Signing key",
    keyType: "P-256",
  });
  if (status !== 201) throw new Error(`identifier not created: ${status} ${JSON.stringify(body)}`);
  return body;
}

export async function createChannel(wallet, name, url) {
  const { status, body } = await api("POST", `/api/wallets/${wallet}/integration-channels`, ADMIN, {
    name,
    type: "WEBHOOK",
    eventTypeFilters: [IDENTIFIER_CREATED],
    webhook: { url },
  });
  if (status !== 201) throw new Error(`channel not created: ${status} ${JSON.stringify(body)}`);
  return body;
}

/** Deliveries of a wallet in the given states, through the API. */
export async function deliveries(wallet, states) {
  const { body } = await api("GET", `/api/wallets/${wallet}/integration-deliveries?state=${states}`, ADMIN);
  return body.items;
}

/** Polls until `check` returns a truthy value. */
export async function eventually(what, check, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A webhook receiver on 127.0.0.1 answering `status` (switchable), recording requests. */
export async function receiver(status) {
  const seen = [];
  const state = { status };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ headers: req.headers, body });
      res.writeHead(state.status, { "content-type": "text/plain", "x-receiver": "ui-tests" });
      res.end(state.status < 300 ? "thanks" : "no such hook");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    seen,
    setStatus: (s) => (state.status = s),
    close: () => new Promise((r) => server.close(r)),
  };
}

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The two screens every page is checked at: a laptop and a phone. */
export const WIDE = { width: 1366, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** A browser of its own (fresh profile directory) for one user. */
export async function browser(viewport = WIDE) {
  const profile = mkdtempSync(path.join(tmpdir(), "bw-ui-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    page,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

let shots = 0;
/** Saves a full-page screenshot. */
export async function shot(page, name) {
  shots += 1;
  await page.screenshot({ path: path.join(screenshots, `${String(shots).padStart(2, "0")}-${name}.png`), fullPage: true });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * Checks the page as it is now, at both screen sizes: a screenshot of each, no page wider than
 * the screen (`scrollWidth <= clientWidth`), and no axe-core violation of impact serious or
 * critical. Leaves the page at the laptop size.
 */
export async function inspect(page, name) {
  for (const size of [WIDE, PHONE]) {
    await page.setViewportSize(size);
    await shot(page, `${name}-${size.width}`);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    if (overflow > 0) throw new Error(`${name} is ${overflow} px wider than a ${size.width} px screen`);
    // Evaluated through the browser's debugging protocol, so the page's CSP does not apply.
    await page.evaluate(axeSource);
    const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    if (bad.length > 0) {
      const text = bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
      throw new Error(`axe-core on ${name} at ${size.width} px: ${text.join("; ")}`);
    }
  }
  await page.setViewportSize(WIDE);
}

export async function signIn(page, token) {
  await page.goto(BASE + "/ui/sign-in");
  await inspect(page, "sign-in");
  await page.getByLabel("Bearer token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/ui\/integrations\/channels/);
}

/** The session's CSRF token, as a page of that session carries it. */
export async function csrfOf(page) {
  return page.locator('input[name="_csrf"]').first().inputValue();
}

/** A form post from inside the page (same origin, with the session cookie); returns the status. */
export async function postFrom(page, route, fields) {
  return page.evaluate(
    async ([url, data]) => (await fetch(url, { method: "POST", body: new URLSearchParams(data), redirect: "manual" })).status,
    [route, fields],
  );
}
