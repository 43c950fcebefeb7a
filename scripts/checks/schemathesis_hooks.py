"""Hooks of scripts/checks/schemathesis.sh.

Whether a PEM text holds a valid X.509 certificate cannot be said in JSON Schema: the API
description gives the PEM armour, and the server answers 400 when the content inside is not a
certificate. So before each request, a `certificatePem` that has the armour (a value the
description allows) is replaced with a real certificate, made by the server under test before
the run (ST_CERTIFICATE); values without the armour, meant to be refused, are sent as generated.
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
ARMOUR = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+-----END CERTIFICATE-----(?:\r?\n)?")


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if isinstance(body, dict):
        pem = body.get("certificatePem")
        if isinstance(pem, str) and pem != CERTIFICATE and ARMOUR.fullmatch(pem):
            body["certificatePem"] = CERTIFICATE
