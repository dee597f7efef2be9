#!/usr/bin/env bash
# Create (or update) the project's virtualenv in .venv with yaml2dag, Airflow and the dev tools,
# at the exact versions of constraints.txt (pyproject.toml has the compatible ranges).
# Sourced by the run and test scripts; re-installs only when pyproject.toml or constraints.txt changed.
# YAML2DAG_VENV=/some/dir puts the virtualenv elsewhere.
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
wanted="$(cat "$REPO/pyproject.toml" "$REPO/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "==> installing yaml2dag with Apache Airflow into $VENV (about a minute the first time)"
  # PYTHONWARNINGS reaches pip's build-backend process: it hides setuptools' 11-line "Editable
  # installation" BuildBackendWarning (a reminder that ./yaml2dag shadows the install: intended here).
  PYTHONWARNINGS="ignore:Editable installation${PYTHONWARNINGS:+,$PYTHONWARNINGS}" \
    "$VENV/bin/python" -m pip install --quiet --constraint "$REPO/constraints.txt" --editable "$REPO[dev]"
  echo "$wanted" >"$stamp"
fi
# Byte-compile the package: an editable install does not, and with PYTHONDONTWRITEBYTECODE set
# every DAG-processor child and task would compile yaml2dag's sources again (about twice the import time).
"$VENV/bin/python" -m compileall -q "$REPO/yaml2dag" >/dev/null
export PATH="$VENV/bin:$PATH"
