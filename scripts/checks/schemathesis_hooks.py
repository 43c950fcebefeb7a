"""Hooks of scripts/checks/schemathesis.sh.

Whether a PEM text holds a valid X.509 certificate cannot be said in JSON Schema: the API
description gives the PEM armour, and the server answers 400 when the content inside is not a
certificate. So before each request, a `certificatePem` that has the armour (a value the
description allows) is replaced with a real certificate, made by the server under test before
the run (ST_CERTIFICATE); values without the armour, meant to be refused, are sent as generated.

The same goes for a webhook channel's `tls` block: armoured certificates and keys become a real
certificate and its key (ST_TLS_CERTIFICATE, ST_TLS_KEY). A client certificate and its key come
as a pair (one without the other is refused, as the description says), so when the block has a
valid one of them the other is added.
"""

import ast
import os
import re
import sys
import threading

import schemathesis

# Hypothesis parses source files to describe its strategies. On the CPython 3.11 releases of
# Debian 12 and of this project's machines, an AST parse that hits the recursion limit leaves the
# parser's depth count wrong, and a later parse fails with "AST constructor recursion depth
# mismatch" (CPython gh-106905): seen once in seven runs. A higher limit keeps the first parse
# from hitting it.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))

# The same depth count is shared by every thread, so two workers parsing at once corrupt it too
# (the mismatch then reads like "before=66, after=120"): under load it broke two runs in a row.
# Parses are made one at a time.
_parse = ast.parse
_parse_lock = threading.Lock()


def _parse_one_at_a_time(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _parse_one_at_a_time

CERTIFICATE = os.environ["ST_CERTIFICATE"]
# The armour the description gives (`certificatePem` in the CreateIdentifier schema).
TLS_CERTIFICATE = os.environ["ST_TLS_CERTIFICATE"]
TLS_KEY = os.environ["ST_TLS_KEY"]
CERTIFICATES = re.compile(
    r"\s*(?:-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+-----END CERTIFICATE-----\s*)+"
)
KEY = re.compile(
    r"\s*-----BEGIN (?:PRIVATE|RSA PRIVATE|EC PRIVATE) KEY-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+"
    r"-----END (?:PRIVATE|RSA PRIVATE|EC PRIVATE) KEY-----\s*"
)
ARMOUR = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+-----END CERTIFICATE-----(?:\r?\n)?")


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if isinstance(body, dict):
        pem = body.get("certificatePem")
        if isinstance(pem, str) and pem != CERTIFICATE and ARMOUR.fullmatch(pem):
            body["certificatePem"] = CERTIFICATE
        webhook = body.get("webhook")
        tls = webhook.get("tls") if isinstance(webhook, dict) else None
        if isinstance(tls, dict):
            _real_tls(tls)


def _real_tls(tls):
    """Armoured values become real ones; a valid certificate or key gets its partner."""
    armoured = lambda name, pattern: isinstance(tls.get(name), str) and pattern.fullmatch(tls[name])
    if armoured("caCertificates", CERTIFICATES):
        tls["caCertificates"] = TLS_CERTIFICATE
    certificate = armoured("clientCertificate", CERTIFICATES)
    key = armoured("clientKey", KEY)
    if certificate:
        tls["clientCertificate"] = TLS_CERTIFICATE
    if key:
        tls["clientKey"] = TLS_KEY
    if certificate and tls.get("clientKey") is None:
        tls["clientKey"] = TLS_KEY
    if key and tls.get("clientCertificate") is None:
        tls["clientCertificate"] = TLS_CERTIFICATE
