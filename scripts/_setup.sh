# Shared set-up for scripts/demo and scripts/test: a project virtualenv with the package installed.
# Sourced, not executed. Idempotent: a second run only checks what is already there.
#
# Dependencies come from the hashed lock files (scripts/lock refreshes them): requirements/test.txt
# with GATEWAY_EXTRAS=test, requirements/runtime.txt otherwise. The venv is reinstalled whenever the
# lock or pyproject.toml changes.
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
LOCK="requirements/${EXTRAS:-runtime}.txt"
[ -f "$LOCK" ] || { echo "no lock file $LOCK (GATEWAY_EXTRAS=$EXTRAS)" >&2; exit 1; }
stamp=".venv/.installed${EXTRAS:+-$EXTRAS}"
# What was installed is recorded as the digests of its inputs, so any change of either, including
# a lock file that git checked out with an older mtime, triggers a reinstall.
want="$(cat "$LOCK" pyproject.toml | .venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -f "$stamp"
  # --no-deps: the lock is the whole resolved set, installed as it is. Resolving again would let a
  # dependency's extra (litellm's `httpx[http2]`) pick a release newer than the lock's pin, which
  # --require-hashes then refuses: a fresh machine's set-up broke the day httpx 0.29.0 came out.
  # `pip check` below still proves the set consistent.
  .venv/bin/python -m pip install --quiet --no-deps --require-hashes -r "$LOCK"
  # The lock holds the build backend, so nothing unhashed is fetched for the project itself.
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  if ! problems="$(.venv/bin/python -m pip check)"; then
    printf '%s\n%s does not satisfy pyproject.toml: refresh it with scripts/lock\n' "$problems" "$LOCK" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
# litellm must read its bundled price map, never fetch one.
export LITELLM_LOCAL_MODEL_COST_MAP=True
