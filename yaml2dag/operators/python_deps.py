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
#: pip's index settings and uv's names for them (uv does not read PIP_*).
_UV_ENVIRONMENT = {
    "PIP_INDEX_URL": "UV_INDEX_URL",
    "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS": "UV_FIND_LINKS",
    "PIP_NO_INDEX": "UV_NO_INDEX",
}
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


def uv_install_argv(uv: str, python: str, target: Path, requirements: list[str]) -> list[str]:
    """`uv pip install --python <python> --target <target> <requirements>` (Process runner, `packageManager: UV`)."""
    return [uv, "pip", "install", "--python", python, "--target", str(target), *requirements]


def uv_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` plus the UV_* equivalents of its PIP_* index settings (a UV_* already set wins)."""
    mapped = {uv_name: env[pip_name] for pip_name, uv_name in _UV_ENVIRONMENT.items() if pip_name in env}
    if mapped.get("UV_NO_INDEX", "").lower() in ("1", "true", "yes", "on"):
        mapped["UV_NO_INDEX"] = "1"
    return {**mapped, **env}


def python_version_of(python: str, env: dict[str, str]) -> str | None:
    """The full version (`3.12.1`) `python` reports, or None when it does not run."""
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def find_python(version: str, env: dict[str, str]) -> str | None:
    """An interpreter of `version` (`3.12`, `3.12.1`) on the worker, or None.

    Tried in turn: `python3.12`, `python3` and `python` on PATH, then what `uv python find` finds
    (without downloading); the first that really reports that version wins.
    """
    wanted = version.strip().split(".")
    path = env.get("PATH")
    names = dict.fromkeys([f"python{'.'.join(wanted[:2])}", f"python{wanted[0]}", "python"])
    candidates = [found for name in names if (found := shutil.which(name, path=path))]
    uv = shutil.which("uv", path=path)
    if uv:
        with_uv = subprocess.run(
            [uv, "python", "find", "--no-python-downloads", version.strip()],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        candidates += with_uv.stdout.split()[:1] if with_uv.returncode == 0 else []
    for candidate in candidates:
        found = python_version_of(candidate, env)
        if found is not None and found.split(".")[: len(wanted)] == wanted:
            return candidate
    return None


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


def docker_install_line(requirements: list[str], use_uv: bool = False) -> str:
    """The shell line installing the requirements in a container, ending the script when pip fails.

    `use_uv` (`packageManager: UV`): `uv pip install --system` when the image has `uv`, else pip.
    """
    command = shlex.join(["python", "-m", "pip", "install", "--quiet", *_PIP_OPTIONS, *requirements])
    if use_uv:
        with_uv = shlex.join(["uv", "pip", "install", "--quiet", "--system", *requirements])
        command = f"{{ if command -v uv >/dev/null 2>&1; then {with_uv}; else {command}; fi; }}"
    return (
        f'{command} || {{ rc=$?; echo "yaml2dag: pip could not install the dependencies (exit code $rc)" >&2; '
        "exit $rc; }"
    )


def pip_environment(base: dict[str, str]) -> dict[str, str]:
    """The worker's pip index settings (`PIP_INDEX_URL`, …) found in `base`."""
    return {name: base[name] for name in PIP_ENVIRONMENT if name in base}
