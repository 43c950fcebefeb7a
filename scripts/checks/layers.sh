#!/usr/bin/env bash
# The HTTP layers speak to the domain, never to the store: no file under the directories below
# may name `store::`. Prints each offending line (file:line) and fails when there is one.
set -euo pipefail
cd "$(dirname "$0")/../.."

LAYERS=(crates/business-wallet/src/api crates/business-wallet/src/web)

# Doc comments and comments may mention the store; code may not.
if offending=$(grep -rnE '(^|[^A-Za-z0-9_])store::' --include='*.rs' "${LAYERS[@]}" | grep -vE '^[^:]+:[0-9]+:\s*//'); then
  echo "the API and the web UI must call the domain, not the store:" >&2
  echo "$offending" >&2
  exit 1
fi
echo "layers: ${LAYERS[*]} use no store:: (checked $(find "${LAYERS[@]}" -name '*.rs' | wc -l) files)"
