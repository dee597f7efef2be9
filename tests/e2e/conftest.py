"""The docker-compose stack of the repository, started for real for the e2e suite.

Builds the images (cached: scripts/build-test-images.sh and scripts/build-images.sh skip what is up to
date), starts `docker-compose.yaml` under a unique project name with two Celery workers and a served
folder of flows, waits for every container to be healthy, and always removes the project's containers,
networks and volumes afterwards. Needs: docker, docker-compose, debootstrap (installed with apt-get
when missing and running as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.airflow_rest import AirflowClient, free_port
from e2e.scenarios import EXPECTED_DAGS, REPO, install_flows

ARTIFACTS = REPO / "artifacts" / "e2e"
COMPOSE_FILES = [REPO / "docker-compose.yaml", Path(__file__).with_name("compose.e2e.yaml")]
WORKERS = 2


def ensure_apt_packages(packages: dict[str, str]) -> None:
    """Install the Debian packages (command → package) whose command is missing, or skip the test."""
    missing = [package for command, package in packages.items() if shutil.which(command) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install -y {' '.join(missing)}; not root here)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=True, capture_output=True)


class ComposeStack:
    """One `docker-compose -p <project>` deployment of the repository's compose file."""

    def __init__(self, project: str, dags: Path, port: int) -> None:
        self.project = project
        self.dags = dags
        self.port = port
        self.client = AirflowClient(f"http://localhost:{port}", f"artifacts/e2e/{project}.log")
        self.env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")},
            "YAML2DAG_DAGS": str(dags),
            "AIRFLOW_PORT": str(port),
            "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
        }
        self.is_down = False

    def compose(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        files = [argument for path in COMPOSE_FILES for argument in ("-f", str(path))]
        command = ["docker-compose", "-p", self.project, *files, *arguments]
        completed = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if completed.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed

    def containers(self, service: str | None = None, all_states: bool = False) -> list[str]:
        label = f"com.docker.compose.project={self.project}"
        filters = ["--filter", f"label={label}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        listing = subprocess.run(
            ["docker", "ps", "-q", "--no-trunc", *(["-a"] if all_states else []), *filters],
            capture_output=True,
            text=True,
            check=True,
        )
        return listing.stdout.split()

    def leftovers(self) -> dict[str, list[str]]:
        """The project's containers, networks and volumes that still exist."""
        label = f"label=com.docker.compose.project={self.project}"
        found = {"containers": self.containers(all_states=True)}
        for kind in ("network", "volume"):
            listing = subprocess.run(
                ["docker", kind, "ls", "-q", "--filter", label], capture_output=True, text=True, check=True
            )
            found[kind + "s"] = listing.stdout.split()
        return {kind: ids for kind, ids in found.items() if ids}

    def health(self) -> dict[str, str]:
        """Each running container's name → its health status."""
        ids = self.containers()
        if not ids:
            return {}
        inspect = subprocess.run(
            ["docker", "inspect", "--format", "{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", *ids],
            capture_output=True,
            text=True,
            check=True,
        )
        return dict(line.strip("/").partition(" ")[::2] for line in inspect.stdout.splitlines())

    def all_healthy(self) -> bool:
        health = self.health()
        # postgres, redis, api-server, scheduler, dag-processor, triggerer and the workers.
        return len(health) == 6 + WORKERS and all(status == "healthy" for status in health.values())

    def save_logs(self) -> None:
        """Write every service's log to artifacts/e2e/<project>.log (while the stack is up)."""
        if self.is_down:
            return
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        logs = subprocess.run(
            ["docker-compose", "-p", self.project, *[a for p in COMPOSE_FILES for a in ("-f", str(p))], "logs"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        (ARTIFACTS / f"{self.project}.log").write_text(logs.stdout + logs.stderr)

    def down(self) -> None:
        """`docker-compose down -v`: containers, networks and volumes of the project are removed."""
        if not self.is_down:
            self.compose("down", "-v", "--remove-orphans", "--timeout", "10")
            self.is_down = True


def _build_images() -> None:
    for script in ("build-test-images.sh", "build-images.sh"):
        started = time.monotonic()
        completed = subprocess.run(["bash", str(REPO / "scripts" / script)], capture_output=True, text=True)
        if completed.returncode != 0:
            pytest.fail(f"scripts/{script} failed:\n{completed.stdout}\n{completed.stderr}")
        print(f"scripts/{script}: {time.monotonic() - started:.0f} s\n{completed.stdout}")


@pytest.fixture(scope="package")
def compose_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    """The compose stack (CeleryExecutor, PostgreSQL, Redis, two workers), up and healthy, logged in."""
    for command in ("docker", "docker-compose"):
        if shutil.which(command) is None:
            pytest.skip(f"`{command}` is not installed")
    ensure_apt_packages({"debootstrap": "debootstrap", "redis-server": "redis-server", "busybox": "busybox-static"})
    _build_images()
    dags = tmp_path_factory.mktemp("compose-dags")
    install_flows(dags)
    for path in [dags, *dags.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # read by the containers' airflow user
    stack = ComposeStack(f"yaml2dag-e2e-{uuid.uuid4().hex[:8]}", dags, free_port())
    try:
        stack.compose("up", "-d", "--scale", f"airflow-worker={WORKERS}")
        stack.client.wait_for(stack.all_healthy, 300, "every container to be healthy", interval=3)
        stack.client.login("airflow", "airflow")
        stack.client.wait_for_dags(EXPECTED_DAGS)
        yield stack
    finally:
        try:
            stack.save_logs()
        finally:
            try:
                stack.down()
            finally:
                leftovers = stack.leftovers()
                for container in leftovers.get("containers", []):
                    subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
                for kind in ("network", "volume"):
                    for item in leftovers.get(kind + "s", []):
                        subprocess.run(["docker", kind, "rm", item], capture_output=True, check=False)
