# Set-up of the signing tests (sourced by scripts/test.sh): the independent verifiers that
# crates/business-wallet/tests/signing runs, pinned there: PyPI `cryptography`, `stripe` and
# `standardwebhooks` (requirements.txt) and npm `standardwebhooks` (package-lock.json), with
# Node.js from the distribution when it is missing. Idempotent and quick when all is there.

SIGNING_TESTS=crates/business-wallet/tests/signing

if ! python3 -m pip --version >/dev/null 2>&1; then
  log "installing pip for the signing tests"
  apt_install python3-pip
fi
if ! python3 - "$SIGNING_TESTS/requirements.txt" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    name, pinned = line.strip().split("==")
    if version(name) != pinned:
        sys.exit(1)
PY
then
  log "installing the Python verifiers of the signing tests"
  python3 -m pip install -q -r "$SIGNING_TESTS/requirements.txt" >&2
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Node.js for the signing tests"
  apt_install nodejs npm
fi
if [ ! -f "$SIGNING_TESTS/node_modules/standardwebhooks/package.json" ] \
  || [ "$SIGNING_TESTS/package-lock.json" -nt "$SIGNING_TESTS/node_modules/.package-lock.json" ]; then
  log "installing the Node verifiers of the signing tests"
  (cd "$SIGNING_TESTS" && npm ci --no-audit --no-fund --loglevel=error)
fi
