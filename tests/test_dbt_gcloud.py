"""DbtCLI with a real dbt project on DuckDB, and GCloudCLI with the real `gcloud`, on the Process runner."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError
from yaml2dag.loader import load_yaml
from yaml2dag.validation import parse_flow

pytestmark = pytest.mark.airflow

PROCESS = "taskRunner: {type: io.kestra.plugin.core.runner.Process}"
REPO = Path(__file__).resolve().parent.parent
DBT_VENV = Path(os.environ.get("YAML2DAG_DBT_VENV") or REPO / ".venv-dbt")

needs_dbt = pytest.mark.skipif(
    not (DBT_VENV / "bin" / "dbt").exists(),
    reason=f"no dbt in {DBT_VENV}: run `bash scripts/setup-dbt.sh` (scripts/test.sh does)",
)
needs_gcloud = pytest.mark.skipif(shutil.which("gcloud") is None, reason="the Google Cloud CLI is not installed")

#: A small dbt project: a seed, a model on it, and tests (one of severity warn that fails).
DBT_PROJECT = {
    "dbt_project.yml": "name: people\nversion: '1.0'\nconfig-version: 2\nprofile: people\n",
    "seeds/people.csv": "name,age\nada,36\ngrace,45\ntim,12\n",
    "models/adults.sql": "select name, age from {{ ref('people') }} where age >= 18\n",
    "models/schema.yml": (
        "version: 2\nmodels:\n  - name: adults\n    columns:\n      - name: name\n"
        "        data_tests: [not_null, unique]\n      - name: age\n        data_tests:\n"
        "          - accepted_values:\n              values: [36]\n              quote: false\n"
        "              config: {severity: warn}\n"
    ),
}
PROFILES = (
    "people:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: people.duckdb\n      threads: 1\n"
)


def _namespace_project(namespace: str, folder: str = "", **changes: str) -> None:
    """Store the dbt project as namespace files of `namespace` (under `folder`), as Kestra's blueprints keep it."""
    from yaml2dag.storage import namespace_file_uri, open_uri_write

    for name, content in dict(DBT_PROJECT, **changes).items():
        with open_uri_write(namespace_file_uri(namespace, folder + name)) as target:
            target.write(content.encode())


def _dbt_env() -> str:
    return (
        f'env: {{PATH: "{DBT_VENV}/bin:{os.environ["PATH"]}", DBT_SEND_ANONYMOUS_USAGE_STATS: "false", '
        'DO_NOT_TRACK: "1"}'
    )


@needs_dbt
def test_dbt_build_on_duckdb_outputs_run_results_and_a_warning(run_flow, airflow_db):
    from yaml2dag.storage import read_text

    _namespace_project("tests.dbt")
    count = (
        f"{DBT_VENV}/bin/python -c \"import duckdb, json; n = duckdb.connect('people.duckdb').execute("
        "'select count(*) from adults').fetchone()[0]; print('::' + json.dumps({'outputs': {'adults': n}}) + '::')\""
    )
    result = run_flow(
        f"""
        id: dbtbuild
        namespace: tests.dbt
        tasks:
          - id: dbt
            type: io.kestra.plugin.dbt.cli.DbtCLI
            {PROCESS}
            {_dbt_env()}
            namespaceFiles: {{enabled: true}}
            profiles: {json.dumps(PROFILES)}
            commands:
              - dbt build
              - {json.dumps(count)}
          - id: results
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ outputs.dbt.outputFiles['run_results.json'] }}}}"
        """
    )
    assert states(result) == {"dbt": "warning", "results": "success"}
    outputs = result.tasks["dbt"].outputs
    assert outputs["exitCode"] == 0
    assert outputs["vars"] == {"adults": 2}
    assert sorted(outputs["outputFiles"]) == ["manifest.json", "run_results.json"]
    log = result.tasks["dbt"].log_text()
    # dbt's JSON log lines, logged as Kestra logs them; the failing warn-severity test makes the task WARNING.
    assert "[Type: MainReportVersion] Running with dbt=1.10" in log
    assert "seed.people.people => success" in log
    assert "model.people.adults => success" in log
    assert "test.people.accepted_values_adults_age" in log and "=> warn" in log
    assert "dbt logged a warning: it ends WARNING" in log
    run_results = json.loads(read_text(outputs["outputFiles"]["run_results.json"]))
    statuses = sorted(node["status"] for node in run_results["results"])
    assert statuses == ["pass", "pass", "success", "success", "warn"]
    assert outputs["outputFiles"]["run_results.json"] in result.tasks["results"].log_text()


@needs_dbt
def test_dbt_project_dir_failure_and_manifest_kept_in_the_kv_store(run_flow, airflow_db):
    from airflow.models.variable import Variable

    from yaml2dag import kvstore

    _namespace_project("tests.dbtfail", "project/", **{"models/adults.sql": "select nope from {{ ref('people') }}\n"})
    result = run_flow(
        f"""
        id: dbtfail
        namespace: tests.dbtfail
        tasks:
          - id: dbt
            type: io.kestra.plugin.dbt.cli.DbtCLI
            {PROCESS}
            {_dbt_env()}
            namespaceFiles: {{enabled: true}}
            projectDir: project
            storeManifest: {{key: people-manifest, namespace: tests.dbtfail}}
            profiles: {json.dumps(PROFILES)}
            commands: [dbt build]
        errors:
          - id: why
            type: io.kestra.plugin.core.log.Log
            message: "exit {{{{ outputs.dbt.exitCode }}}}, {{{{ outputs.dbt.outputFiles | keys | join(',') }}}}"
        """
    )
    assert states(result) == {"dbt": "failed", "why": "success"}
    log = result.tasks["dbt"].log_text()
    assert "model.people.adults => error" in log
    assert 'Referenced column "nope" not found' in log
    assert "Command failed with exit code 1" in log
    assert "exit 1, manifest.json,run_results.json" in result.tasks["why"].log_text()
    stored = json.loads(Variable.get(kvstore.variable_key("tests.dbtfail", "people-manifest")))
    assert stored["type"] == "JSON"
    assert "model.people.adults" in stored["value"]["nodes"]


@needs_dbt
def test_dbt_load_manifest_and_log_format_none(run_flow, airflow_db):
    from airflow.models.variable import Variable

    from yaml2dag import kvstore

    _namespace_project("tests.dbtload")
    document = {"type": "JSON", "value": {"metadata": {"dbt_version": "from-kv"}}, "expirationDate": None}
    Variable.set(kvstore.variable_key("tests.dbtload", "stored-manifest"), json.dumps(document))
    result = run_flow(
        f"""
        id: dbtload
        namespace: tests.dbtload
        tasks:
          - id: dbt
            type: io.kestra.plugin.dbt.cli.DbtCLI
            {PROCESS}
            {_dbt_env()}
            namespaceFiles: {{enabled: true}}
            profiles: {json.dumps(PROFILES)}
            parseRunResults: false
            logFormat: NONE
            loadManifest: {{key: stored-manifest, namespace: tests.dbtload}}
            commands:
              - cat target/manifest.json
              - dbt parse
        """
    )
    assert states(result) == {"dbt": "success"}
    log = result.tasks["dbt"].log_text()
    assert '{"metadata": {"dbt_version": "from-kv"}}' in log
    assert "Running with dbt=1.10" in log and "[Type:" not in log  # text logs, not JSON
    assert sorted(result.tasks["dbt"].outputs["outputFiles"]) == ["manifest.json"]


def _refused(text: str) -> str:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text)
    return str(caught.value)


def test_dbt_unsupported_parts_are_located():
    message = _refused(
        "id: bad\nnamespace: tests.dbt\ntasks:\n  - id: dbt\n    type: io.kestra.plugin.dbt.cli.DbtCLI\n"
        "    commands: [dbt run]\n    alertWebhook: {url: http://x}\n"
    )
    assert "flow.yaml:7:" in message and "property `alertWebhook` is not supported by yaml2dag yet" in message
    message = _refused("id: bad\nnamespace: tests.dbt\ntasks:\n  - id: dbt\n    type: io.kestra.plugin.dbt.cli.Build\n")
    assert "task type `io.kestra.plugin.dbt.cli.Build` is not supported by yaml2dag yet" in message
    assert "use `io.kestra.plugin.dbt.cli.DbtCLI` with `commands: [dbt build]`" in message


@needs_gcloud
def test_gcloud_cli_gets_project_and_service_account(run_flow, tmp_path):
    key = json.dumps(
        {
            "type": "service_account",
            "project_id": "kestra-test",
            "private_key_id": "abc123",
            "private_key": "-----BEGIN PRIVATE KEY-----\\nNOT-A-REAL-KEY-4711\\n-----END PRIVATE KEY-----\\n",
            "client_email": "robot@kestra-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
    result = run_flow(
        f"""
        id: gcloud
        namespace: tests.gcloud
        tasks:
          - id: gcloud
            type: io.kestra.plugin.gcp.cli.GCloudCLI
            {PROCESS}
            projectId: my-gcp-project
            serviceAccount: '{key}'
            env:
              CLOUDSDK_CONFIG: "{tmp_path}/gcloud-config"
            outputFiles: [project.txt, "**/*.json"]
            commands:
              - gcloud config get-value project > project.txt 2>/dev/null
              - echo "project=$(cat project.txt)"
              - gcloud config get-value auth/credential_file_override 2>/dev/null
              - grep -o 'robot@[a-z.-]*' "$GOOGLE_APPLICATION_CREDENTIALS"
              - cat "$GOOGLE_APPLICATION_CREDENTIALS"
          - id: stderr
            type: io.kestra.plugin.gcp.cli.GCloudCLI
            {PROCESS}
            env:
              CLOUDSDK_CONFIG: "{tmp_path}/gcloud-config"
            commands: ["gcloud config list"]
        """
    )
    assert states(result) == {"gcloud": "success", "stderr": "warning"}
    log = result.tasks["gcloud"].log_text()
    assert "project=my-gcp-project" in log
    assert "/.yaml2dag-container/gcloud-service-account-" in log  # the override names the key file
    assert "robot@kestra-test.iam.gserviceaccount.com" in log
    assert "NOT-A-REAL-KEY-4711" not in log  # the key is masked
    assert sorted(result.tasks["gcloud"].outputs["outputFiles"]) == ["project.txt"]  # the key is never one
    # gcloud writes hints to stderr: as in Kestra's GCloudCLI (warningOnStdErr), the task ends WARNING.
    assert "warningOnStdErr is set: it ends WARNING" in result.tasks["stderr"].log_text()
