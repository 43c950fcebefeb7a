#!/usr/bin/env bash
# The HTTP layers speak to the domain, never to the store: no file under the directories below
# may name `store::`. The domain does not speak HTTP: no file under it may name the API's error
# type, axum or a status code (it returns its own DomainError, which the API maps in one place).
# Prints each offending line (file:line) and fails when there is one.
set -euo pipefail
cd "$(dirname "$0")/../.."

LAYERS=(crates/business-wallet/src/api crates/business-wallet/src/web)

# Doc comments and comments may mention the store; code may not.
if offending=$(grep -rnE '(^|[^A-Za-z0-9_])store::' --include='*.rs' "${LAYERS[@]}" | grep -vE '^[^:]+:[0-9]+:\s*//'); then
  echo "the API and the web UI must call the domain, not the store:" >&2
  echo "$offending" >&2
  exit 1
fi
DOMAIN=crates/business-wallet/src/domain
if offending=$(grep -rnE '(^|[^A-Za-z0-9_])(ApiError|axum|StatusCode)([^A-Za-z0-9_]|$)' --include='*.rs' "$DOMAIN" | grep -vE '^[^:]+:[0-9]+:\s*//'); then
  echo "the domain must not speak HTTP (it returns DomainError):" >&2
  echo "$offending" >&2
  exit 1
fi
echo "layers: ${LAYERS[*]} use no store:: (checked $(find "${LAYERS[@]}" -name '*.rs' | wc -l) files); $DOMAIN names no HTTP type (checked $(find "$DOMAIN" -name '*.rs' | wc -l) files)"
