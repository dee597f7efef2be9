#!/usr/bin/env bash
# Install yaml2dag with Apache Airflow and start Airflow (SQLite, LocalExecutor, like
# `airflow standalone`) with this repository's dags/ folder loaded. Prints the URL and login.
#   bash scripts/airflow-standalone.sh            # http://localhost:8080
#   AIRFLOW_PORT=8081 bash scripts/airflow-standalone.sh
# Stop with Ctrl-C (or SIGTERM): every Airflow process it started is stopped, within 15 s.
# State lives in .airflow/ (delete it for a fresh start), or in $AIRFLOW_HOME when that is set.
# The API server listens on 127.0.0.1 only; AIRFLOW__API__HOST=0.0.0.0 opens it to the network.
# YAML2DAG_SKIP_SETUP=1 skips scripts/setup-venv.sh and uses `python` and `airflow` from PATH as
# they are (the tests do, with the virtualenv they run in).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${YAML2DAG_SKIP_SETUP:-}" != 1 ]; then
  # shellcheck source=scripts/setup-venv.sh
  source "$REPO/scripts/setup-venv.sh"
fi

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
# Local only: a laptop's Airflow need not be reachable from the network. A non-local host is also
# what makes Airflow's SimpleAuthManager warn that the "deployment shape looks like production".
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="${AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL:-10}"
mkdir -p "$AIRFLOW_HOME"
# SECRET inputs are stored encrypted in a run's conf (docs/inputs.md) with Airflow's Fernet key:
# one is made once and kept in the Airflow home, unless AIRFLOW__CORE__FERNET_KEY is set.
if [ -z "${AIRFLOW__CORE__FERNET_KEY:-}" ]; then
  if [ ! -s "$AIRFLOW_HOME/fernet.key" ]; then
    (umask 077 && python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' \
      >"$AIRFLOW_HOME/fernet.key")
  fi
  AIRFLOW__CORE__FERNET_KEY="$(cat "$AIRFLOW_HOME/fernet.key")"
  export AIRFLOW__CORE__FERNET_KEY
fi

# live_processes [PID...] : the live (not zombie) processes among the given ones, among this
# script's descendants (whichever process group or session they moved to: Airflow runs each task
# in a process group of its own) and in Airflow's process group (orphans whose parent has exited).
live_processes() {
  local self=$BASHPID # the subshell of `$(live_processes)`: the parent of the ps and awk below
  ps -e -o pid= -o ppid= -o pgid= -o stat= |
    awk -v root="$$" -v self="$self" -v group="${AIRFLOW_PID:-0}" -v known="$*" '
      BEGIN { n = split(known, k, " "); for (i = 1; i <= n; i++) wanted[k[i]] = 1 }
      { parent[$1] = $2; pgid[$1] = $3; stat[$1] = $4 }
      END {
        for (p in parent) {
          if (stat[p] ~ /^Z/ || p == root) continue
          keep = (p in wanted) || pgid[p] == group
          for (q = p; q > 1 && (q in parent); q = parent[q]) {
            if (q == self) { keep = 0; break }  # the ps and awk of this very call
            if (q == root) { keep = 1; break }
          }
          if (keep) print p
        }
      }'
}

# stop_airflow : SIGINT to `airflow standalone` (it then stops its components) and SIGTERM, once, to
# every other process it started (also to those forked meanwhile); SIGKILL to whatever still runs
# 10 s later. Returns when all of them are gone.
stop_airflow() {
  local seen signalled="" pid deadline
  [ -n "${AIRFLOW_PID:-}" ] || return 0
  seen=$(live_processes)
  if [ -n "$seen" ]; then
    echo "==> stopping Airflow" >&2
    kill -INT "$AIRFLOW_PID" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while [ -n "$seen" ] && [ "$SECONDS" -lt "$deadline" ]; do
      for pid in $seen; do
        if [ "$pid" != "$AIRFLOW_PID" ] && [[ " $signalled " != *" $pid "* ]]; then
          kill -TERM "$pid" 2>/dev/null || true
          signalled="$signalled $pid"
        fi
      done
      sleep 0.2
      # shellcheck disable=SC2086  # splitting the list of ids into arguments is intended
      seen=$(live_processes $seen)
    done
    deadline=$((SECONDS + 5))
    if [ -n "$seen" ]; then
      echo "==> killing the Airflow processes still running after 10 s:" $seen >&2
    fi
    while [ -n "$seen" ] && [ "$SECONDS" -lt "$deadline" ]; do
      # shellcheck disable=SC2086
      kill -KILL $seen 2>/dev/null || true
      sleep 0.2
      # shellcheck disable=SC2086
      seen=$(live_processes $seen)
    done
  fi
  wait "$AIRFLOW_PID" 2>/dev/null || true
  AIRFLOW_PID=
}

cleanup() {
  trap - INT TERM EXIT
  stop_airflow
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

echo "==> starting Airflow (logs: $AIRFLOW_HOME/standalone.log)"
# Job control on for this one command: Airflow gets a process group of its own, so that Ctrl-C at the
# terminal reaches this script only, which then stops Airflow in order (and nothing is left behind).
set -m
airflow standalone </dev/null >"$AIRFLOW_HOME/standalone.log" 2>&1 &
AIRFLOW_PID=$!
set +m

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
