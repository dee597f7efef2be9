#!/usr/bin/env bash
# Create (or update) the project's virtualenv in .venv with yaml2dag, Airflow and the dev tools.
# Sourced by the run and test scripts; re-installs only when pyproject.toml changed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${YAML2DAG_VENV:-$REPO/.venv}"

find_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "yaml2dag needs Python 3.11 or newer on PATH" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtualenv $VENV"
  "$(find_python)" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

stamp="$VENV/.yaml2dag-installed"
wanted="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "==> installing yaml2dag with Apache Airflow into $VENV (about a minute the first time)"
  "$VENV/bin/python" -m pip install --quiet --editable "$REPO[dev]"
  echo "$wanted" >"$stamp"
fi
# Byte-compile the package: an editable install does not, and with PYTHONDONTWRITEBYTECODE set
# every DAG-processor child and task would compile yaml2dag's sources again (about twice the import time).
"$VENV/bin/python" -m compileall -q "$REPO/yaml2dag" >/dev/null
export PATH="$VENV/bin:$PATH"
