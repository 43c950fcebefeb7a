# Set-up of the browser tests (sourced by scripts/test.sh): Chromium from the distribution and
# playwright-core from the npm registry, pinned by ui-tests/package-lock.json. Playwright's own
# browser download is never used. Idempotent and quick when everything is there.

ui_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ! -x /usr/bin/chromium ]; then
  printf '==> %s\n' "installing Chromium for the browser tests" >&2
  ui_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  ui_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  printf '==> %s\n' "installing Node.js for the browser tests" >&2
  ui_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  ui_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

if [ ! -f ui-tests/node_modules/playwright-core/package.json ] \
  || [ ui-tests/package-lock.json -nt ui-tests/node_modules/.package-lock.json ]; then
  printf '==> %s\n' "installing playwright-core for the browser tests" >&2
  (cd ui-tests && npm ci --no-audit --no-fund --loglevel=error)
fi
