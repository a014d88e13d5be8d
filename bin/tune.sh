#!/usr/bin/env bash
# Kept for the seed's users: `bin/tune.sh ARGS` is `tune ARGS`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$here/.venv/bin/tune" ]; then exec "$here/.venv/bin/tune" "$@"; fi
if command -v tune >/dev/null 2>&1; then exec tune "$@"; fi
echo "error: the tune command is not installed. Run: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'" >&2
exit 2
