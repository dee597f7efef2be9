#!/bin/bash
# Like the official image's entrypoint: an Airflow sub-command (`api-server`, `scheduler`,
# `celery worker`, ...) runs as `airflow <command>`; `bash`, `python` or a path run as given.
set -euo pipefail
case "${1:-}" in
  "") exec bash ;;
  bash | sh | python | python3 | airflow | /*) exec "$@" ;;
  *) exec airflow "$@" ;;
esac
