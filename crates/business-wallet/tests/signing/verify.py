"""Independent receiver-side checks of captured webhook deliveries, with PyPI packages only.

Usage: python3 verify.py DELIVERIES_JSON JWKS_URL

DELIVERIES_JSON holds [{"secret": ..., "headers": {name: value}, "body": text}, ...] as a
receiver on 127.0.0.1 captured them; the JWKS is fetched from the running server. Every
delivery's Ed25519 `v1a` entry of X-Credenco-Signature is checked with `cryptography` against
the key its kid names, its HMAC with Stripe's own verifier (`stripe.WebhookSignature`), and,
when it carries the Standard Webhooks headers, those with the `standardwebhooks` library
(HMAC) and `cryptography` (their `v1a`). Prints a JSON summary; exits 1 on any failure.
"""

import base64
import json
import sys
import urllib.request

import stripe
import standardwebhooks
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main():
    deliveries = json.load(open(sys.argv[1]))
    with urllib.request.urlopen(sys.argv[2]) as response:
        jwks = json.load(response)
    keys = {
        k["kid"]: Ed25519PublicKey.from_public_bytes(b64url(k["x"]))
        for k in jwks["keys"]
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519"
    }
    summary = {"deliveries": 0, "ed25519": 0, "stripe": 0, "standard_hmac": 0, "standard_ed25519": 0, "kids": []}
    for d in deliveries:
        headers = {k.lower(): v for k, v in d["headers"].items()}
        body = d["body"].encode()
        header = headers["x-credenco-signature"]
        items = [item.split("=", 1) for item in header.split(",")]
        t = [v for k, v in items if k == "t"][0]
        entries = [v for k, v in items if k == "v1a"]
        if len(entries) != 1:
            sys.exit(f"expected one v1a entry in {header}")
        kid, signature = entries[0].split(":", 1)
        if kid not in keys:
            sys.exit(f"key {kid} is not in the served JWKS {sorted(keys)}")
        # Raises InvalidSignature when it does not verify.
        keys[kid].verify(b64url(signature), t.encode() + b"." + body)
        summary["ed25519"] += 1
        summary["kids"].append(kid)
        # Stripe's verifier: ignores the v1a entry, checks a v1 against the secret.
        stripe.WebhookSignature.verify_header(d["body"], header, d["secret"], tolerance=300)
        summary["stripe"] += 1
        if "webhook-signature" in headers:
            standard = {k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
            standardwebhooks.Webhook(d["secret"]).verify(d["body"], standard)
            summary["standard_hmac"] += 1
            content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
            v1a = [e[4:] for e in headers["webhook-signature"].split(" ") if e.startswith("v1a,")]
            if len(v1a) != 1:
                sys.exit(f"expected one v1a entry in {headers['webhook-signature']}")
            keys[kid].verify(base64.b64decode(v1a[0]), content)
            summary["standard_ed25519"] += 1
        summary["deliveries"] += 1
    print(json.dumps(summary))


main()
