#!/usr/bin/env bash
# Create (or update) the dbt virtualenv the DbtCLI tests run `dbt` from: dbt-core + dbt-duckdb at the
# versions of constraints-dbt.txt, apart from Airflow's virtualenv (as Kestra runs dbt in its own image).
# Re-installs only when constraints-dbt.txt changed. YAML2DAG_DBT_VENV=/some/dir puts it elsewhere.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DBT_VENV="${YAML2DAG_DBT_VENV:-$REPO/.venv-dbt}"
PYTHON="${PYTHON:-python3}"

stamp="$DBT_VENV/.yaml2dag-dbt-installed"
wanted="$(sha256sum "$REPO/constraints-dbt.txt" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
echo "==> installing dbt-core and dbt-duckdb into $DBT_VENV"
[ -x "$DBT_VENV/bin/python" ] || "$PYTHON" -m venv "$DBT_VENV"
"$DBT_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --constraint "$REPO/constraints-dbt.txt" dbt-core dbt-duckdb
"$DBT_VENV/bin/dbt" --version >/dev/null
echo "$wanted" >"$stamp"
