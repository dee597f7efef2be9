"""Task types from installed packages (`yaml2dag.task_types` entry points): the example plugin, installed.

The example package (examples/plugins/yaml2dag-example-plugin) is pip-installed into a temporary
directory (`pip install --target`, no change to the shared virtualenv) that subprocesses get on
PYTHONPATH, so entry points are discovered as for any installed package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from yaml2dag.tasktypes import _TaskTypes

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "examples" / "plugins" / "yaml2dag-example-plugin"
GREET = "io.kestra.plugin.example.Greet"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where the example plugin is installed like any package (dist-info with entry points)."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(PLUGIN)],
        check=True,
    )  # fmt: skip
    assert list(target.glob("yaml2dag_example_plugin-*.dist-info"))
    return target


def _yaml2dag(plugin_path: Path | None, *arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    paths = [str(REPO)] + ([str(plugin_path)] if plugin_path else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "NO_COLOR": "1"}
    env.pop("AIRFLOW_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", *arguments], capture_output=True, text=True, env=env, cwd=cwd
    )


def _flow(directory: Path, body: str) -> Path:
    path = directory / "flow.yaml"
    path.write_text(textwrap.dedent(body))
    return path


GREET_FLOW = """
    id: greet
    namespace: tests.plugins
    inputs:
      - id: who
        type: STRING
        defaults: Ada
    tasks:
      - id: hello
        type: io.kestra.plugin.example.Greet
        name: "{{ inputs.who }}"
        language: fr
      - id: check
        type: io.kestra.plugin.core.execution.Assert
        conditions:
          - "{{ outputs.hello.greeting == 'Bonjour, Ada!' }}"
          - "{{ outputs.hello.length == 13 }}"
    """


@pytest.mark.airflow
def test_a_flow_runs_a_task_type_from_an_installed_plugin(plugin_path: Path, tmp_path: Path) -> None:
    flow = _flow(tmp_path, GREET_FLOW)
    done = _yaml2dag(plugin_path, "run", "--json", str(flow), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert {task["state"] for task in result["tasks"].values()} == {"success"}, result


def test_without_the_plugin_the_type_is_unknown(tmp_path: Path) -> None:
    flow = _flow(tmp_path, GREET_FLOW)
    done = _yaml2dag(None, "validate", str(flow), cwd=tmp_path)
    assert done.returncode == 1
    assert f"unknown task type `{GREET}`" in done.stdout + done.stderr


def test_plugin_properties_are_validated_with_locations(plugin_path: Path, tmp_path: Path) -> None:
    flow = _flow(
        tmp_path,
        """
        id: greet
        namespace: tests.plugins
        tasks:
          - id: hello
            type: io.kestra.plugin.example.Greet
            name: Ada
            language: de
        """,
    )
    done = _yaml2dag(plugin_path, "validate", str(flow), cwd=tmp_path)
    assert done.returncode == 1
    assert "flow.yaml:8:" in done.stdout + done.stderr, done.stdout + done.stderr
    assert "language" in done.stdout + done.stderr


def test_schema_lists_plugin_types_with_their_origin(plugin_path: Path, tmp_path: Path) -> None:
    done = _yaml2dag(plugin_path, "schema", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    definitions = json.loads(done.stdout)["definitions"]
    (greet,) = [value for value in definitions.values() if value.get("title") == GREET]
    assert greet["x-yaml2dag-plugin"].startswith("yaml2dag-example-plugin 0.1.0")
    assert set(greet["properties"]) >= {"name", "language", "shout"}


def test_entry_points_are_read_only_for_types_that_are_not_built_in(plugin_path: Path) -> None:
    sys.path.insert(0, str(plugin_path))
    try:
        registry = _TaskTypes()
        assert registry["io.kestra.plugin.core.log.Log"].__name__ == "Log"
        assert registry.get("io.kestra.plugin.redis.string.Get") is not None
        assert not registry._plugins_read
        assert registry[GREET].__name__ == "Greet"
        assert registry._plugins_read
        assert registry.origins[GREET].startswith("yaml2dag-example-plugin")
    finally:
        sys.path.remove(str(plugin_path))
        for name in [name for name in sys.modules if name.startswith("yaml2dag_example_plugin")]:
            del sys.modules[name]


def test_types_command_lists_plugin_types_with_their_origin(plugin_path: Path, tmp_path: Path) -> None:
    done = _yaml2dag(plugin_path, "types", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    origins = {entry["type"]: entry["origin"] for entry in json.loads(done.stdout)}
    assert origins["io.kestra.plugin.core.log.Log"] == "built-in"
    assert origins["io.kestra.plugin.jdbc.postgresql.Query"] == "built-in"
    assert origins[GREET].startswith("yaml2dag-example-plugin 0.1.0 (example = yaml2dag_example_plugin.tasktypes)")
