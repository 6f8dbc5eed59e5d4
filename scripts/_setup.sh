# Shared set-up for scripts/demo and scripts/test: a project virtualenv with the package installed.
# Sourced, not executed. Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY="$candidate"; break
  fi
done
if [ -z "$PY" ]; then
  echo "gateway needs Python >= 3.11 (apt-get install python3 python3-venv on Debian 12)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { echo "python venv failed: apt-get install python3-venv" >&2; exit 1; }
fi
EXTRAS="${GATEWAY_EXTRAS:-}"
stamp=".venv/.installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${EXTRAS:+[$EXTRAS]}"
  touch "$stamp"
fi
# litellm must read its bundled price map, never fetch one.
export LITELLM_LOCAL_MODEL_COST_MAP=True
