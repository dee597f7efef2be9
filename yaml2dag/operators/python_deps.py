"""Python `dependencies` of the script tasks: pip commands, the worker-side cache and its atomic publication.

* Process runner: `python -m pip install --target <dir>` into a folder named by the SHA-256 of the
  sorted requirement list and the interpreter's cache tag (`cpython-311`), under the Airflow
  setting `[yaml2dag] python_dependency_cache` (default `$AIRFLOW_HOME/yaml2dag/python-dependencies`).
  pip installs into a temporary sibling folder that is then renamed in one step, so a concurrent
  task sees either no folder or a complete one; the loser of a race drops its copy and uses the
  winner's. Later tasks with the same list and Python reuse the folder.
* Docker runner: one shell line, `python -m pip install …`, run in the container before
  `beforeCommands`, that ends the script with pip's exit code when pip fails.

pip's index is configured by the worker's environment (`PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`,
`PIP_FIND_LINKS`, `PIP_NO_INDEX`, `PIP_TRUSTED_HOST`), which is also passed into containers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

#: The setting naming the cache folder of the Process runner's installs.
CACHE_SETTING = ("yaml2dag", "python_dependency_cache")
#: Worker environment variables configuring pip's index, passed into containers too.
PIP_ENVIRONMENT = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_TRUSTED_HOST")
_PIP_OPTIONS = ["--disable-pip-version-check", "--no-input"]
_INSTALL_PREFIX = ".install-"


def cache_root() -> Path:
    """The folder holding one sub-folder per installed requirement list (created if missing)."""
    from airflow.configuration import AIRFLOW_HOME, conf

    default = str(Path(AIRFLOW_HOME) / "yaml2dag" / "python-dependencies")
    root = Path(str(conf.get(*CACHE_SETTING, fallback=default) or default)).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def python_tag(python: str, env: dict[str, str]) -> str:
    """The interpreter's cache tag (`cpython-311`): packages built for one Python may not load on another."""
    done = subprocess.run(
        [python, "-c", "import sys; print(sys.implementation.cache_tag)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"`{python}` could not report its version: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def cache_key(requirements: list[str], tag: str) -> str:
    """SHA-256 of the sorted requirement list and the Python tag: the cache folder's name."""
    payload = json.dumps({"requirements": sorted(requirements), "python": tag}, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def pip_install_argv(python: str, target: Path, requirements: list[str]) -> list[str]:
    """`python -m pip install --target <target> <requirements>` (Process runner)."""
    return [python, "-m", "pip", "install", *_PIP_OPTIONS, "--target", str(target), *requirements]


def new_install_dir(root: Path) -> Path:
    """A private temporary folder next to the cache entries, where pip installs before publication."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=_INSTALL_PREFIX, dir=root))


def publish(installed: Path, final: Path) -> bool:
    """Rename the finished install to its cache name in one step; False when another task won the race.

    The loser's copy is removed and the winner's (complete) folder is used.
    """
    installed.chmod(0o755)
    try:
        os.rename(installed, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(installed, ignore_errors=True)
        return False
    return True


def docker_install_line(requirements: list[str]) -> str:
    """The shell line installing the requirements in a container, ending the script when pip fails."""
    command = shlex.join(["python", "-m", "pip", "install", "--quiet", *_PIP_OPTIONS, *requirements])
    return (
        f'{command} || {{ rc=$?; echo "yaml2dag: pip could not install the dependencies (exit code $rc)" >&2; '
        "exit $rc; }"
    )


def pip_environment(base: dict[str, str]) -> dict[str, str]:
    """The worker's pip index settings (`PIP_INDEX_URL`, …) found in `base`."""
    return {name: base[name] for name in PIP_ENVIRONMENT if name in base}
