#!/usr/bin/env bash
# Install yaml2dag with Apache Airflow and start Airflow (SQLite, LocalExecutor, like
# `airflow standalone`) with this repository's dags/ folder loaded. Prints the URL and login.
#   bash scripts/airflow-standalone.sh            # http://localhost:8080
#   AIRFLOW_PORT=8081 bash scripts/airflow-standalone.sh
# Stop with Ctrl-C. State lives in .airflow/ (delete it for a fresh start).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/setup-venv.sh
source "$REPO/scripts/setup-venv.sh"

PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
# Serve dags/ through yaml2dag's DAG bundle: one DAG file per flow, per-flow import errors in the UI.
export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST="[{\"name\": \"kestra-flows\", \"classpath\": \"yaml2dag.bundle.KestraFlowsBundle\", \"kwargs\": {\"path\": \"$REPO/dags\", \"refresh_interval\": 5}}]"
export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH="$AIRFLOW_HOME/dag_bundles"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="${AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL:-10}"
mkdir -p "$AIRFLOW_HOME"

echo "==> starting Airflow (logs: $AIRFLOW_HOME/standalone.log)"
airflow standalone >"$AIRFLOW_HOME/standalone.log" 2>&1 &
AIRFLOW_PID=$!
trap 'kill "$AIRFLOW_PID" 2>/dev/null; wait "$AIRFLOW_PID" 2>/dev/null' INT TERM EXIT

for _ in $(seq 1 180); do
  if ! kill -0 "$AIRFLOW_PID" 2>/dev/null; then
    echo "Airflow exited; last lines of $AIRFLOW_HOME/standalone.log:" >&2
    tail -n 30 "$AIRFLOW_HOME/standalone.log" >&2
    exit 1
  fi
  if python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://localhost:$PORT/api/v2/monitor/health" >/dev/null 2>&1; then
    break
  fi
  sleep 1
done

PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
LOGIN="$(python -c 'import json, sys; users = json.load(open(sys.argv[1])); print(", ".join(f"{u} / {p}" for u, p in users.items()))' "$PASSWORDS")"
cat <<MSG

  Airflow is running with the flows of $REPO/dags
    URL:   http://localhost:$PORT
    Login: $LOGIN
  Drop Kestra flow files (*.yaml) into dags/: they appear as DAGs within seconds, and a
  broken file shows up under "DAG Import Errors" with its line, column and a hint.
  Press Ctrl-C to stop.

MSG
wait "$AIRFLOW_PID"
