# The Airflow image of docker-compose.yaml: an Airflow 3.3 image plus yaml2dag.
#
# With an image registry, on the official image (it already has the Celery, PostgreSQL, Docker and
# Redis providers):
#   docker build -t yaml2dag-airflow:latest .
#   docker build -t yaml2dag-airflow:latest --build-arg AIRFLOW_BASE=apache/airflow:3.3.2-python3.12 .
# Without a registry, scripts/build-images.sh builds a local stand-in for the official image from
# Debian packages and a host-side wheelhouse, then builds this same file on it with
# --build-arg AIRFLOW_BASE=yaml2dag-airflow-base:3.3.2 --build-arg PIP_INSTALL_ARGS="--no-index --no-deps --no-build-isolation".
ARG AIRFLOW_BASE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_BASE}

ARG AIRFLOW_VERSION=3.3.2
ARG PIP_INSTALL_ARGS=""
USER root
RUN mkdir -p /opt/yaml2dag && chown airflow:0 /opt/yaml2dag
USER airflow
COPY --chown=airflow:0 pyproject.toml README.md /opt/yaml2dag/
COPY --chown=airflow:0 yaml2dag /opt/yaml2dag/yaml2dag
# Pinning apache-airflow keeps pip from upgrading the base image's Airflow.
RUN pip install --no-cache-dir ${PIP_INSTALL_ARGS} "apache-airflow==${AIRFLOW_VERSION}" /opt/yaml2dag \
    && python -c "import yaml2dag.bundle"
