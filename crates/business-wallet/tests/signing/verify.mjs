// Independent receiver-side checks of captured webhook deliveries, with Node's own `crypto`
// and the npm `standardwebhooks` package.
//
// Usage: node verify.mjs DELIVERIES_JSON JWKS_URL
//
// Fetches the JWKS from the running server, checks every delivery's Ed25519 `v1a` entry of
// X-Credenco-Signature with `crypto.verify`, and, when it carries the Standard Webhooks
// headers, those with `standardwebhooks` (HMAC) and `crypto.verify` (their `v1a`). Prints a
// JSON summary; exits 1 on any failure.

import { createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import standardwebhooks from "standardwebhooks";

const [deliveriesFile, jwksUrl] = process.argv.slice(2);
const deliveries = JSON.parse(readFileSync(deliveriesFile, "utf8"));
const jwks = await (await fetch(jwksUrl)).json();
const keys = new Map(
  jwks.keys
    .filter((k) => k.kty === "OKP" && k.crv === "Ed25519")
    .map((k) => [k.kid, createPublicKey({ key: k, format: "jwk" })]),
);

function fail(message) {
  console.error(message);
  process.exit(1);
}

const summary = { deliveries: 0, ed25519: 0, standard_hmac: 0, standard_ed25519: 0, kids: [] };
for (const d of deliveries) {
  const headers = Object.fromEntries(Object.entries(d.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const body = Buffer.from(d.body, "utf8");
  const header = headers["x-credenco-signature"];
  const items = header.split(",").map((item) => {
    const at = item.indexOf("=");
    return [item.slice(0, at), item.slice(at + 1)];
  });
  const t = items.find(([k]) => k === "t")[1];
  const entries = items.filter(([k]) => k === "v1a").map(([, v]) => v);
  if (entries.length !== 1) fail(`expected one v1a entry in ${header}`);
  const [kid, signature] = entries[0].split(":");
  const key = keys.get(kid);
  if (!key) fail(`key ${kid} is not in the served JWKS`);
  const content = Buffer.concat([Buffer.from(`${t}.`), body]);
  if (!verify(null, content, key, Buffer.from(signature, "base64url"))) fail(`v1a by ${kid} does not verify`);
  summary.ed25519 += 1;
  summary.kids.push(kid);
  if (headers["webhook-signature"] !== undefined) {
    const standard = {
      "webhook-id": headers["webhook-id"],
      "webhook-timestamp": headers["webhook-timestamp"],
      "webhook-signature": headers["webhook-signature"],
    };
    // Throws WebhookVerificationError when no v1 matches.
    new standardwebhooks.Webhook(d.secret).verify(d.body, standard);
    summary.standard_hmac += 1;
    const v1a = headers["webhook-signature"].split(" ").filter((e) => e.startsWith("v1a,"));
    if (v1a.length !== 1) fail(`expected one v1a entry in ${headers["webhook-signature"]}`);
    const signed = Buffer.concat([Buffer.from(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.`), body]);
    if (!verify(null, signed, key, Buffer.from(v1a[0].slice(4), "base64"))) fail("webhook-signature v1a does not verify");
    summary.standard_ed25519 += 1;
  }
  summary.deliveries += 1;
}
console.log(JSON.stringify(summary));
