#!/usr/bin/env bash
# Kept for the seed's users: `bin/set_webhook_url.sh URL` is `tune set-webhook-url URL`.
set -euo pipefail
if [ $# -ne 1 ]; then echo "usage: bin/set_webhook_url.sh URL" >&2; exit 2; fi
exec "$(dirname "${BASH_SOURCE[0]}")/tune.sh" set-webhook-url "$1"
