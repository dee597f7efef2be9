"""Fixtures for the Docker and Redis tasks: real redis-server processes, the local test images,
and a guard that fails any test which leaves a container behind (then removes it).

Needs (Debian): `docker.io` (daemon reachable), `redis-server`, `busybox-static`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from docker_redis.support import (
    BUILD_SCRIPT,
    DAG_LABEL,
    SECRET,
    SEED_REDIS,
    RedisServer,
    built_by_the_project,
    free_port,
    wait_for,
)


def _answers(server: RedisServer) -> bool:
    import redis

    try:
        return bool(server.client().ping())
    except redis.exceptions.ConnectionError:
        return False


def _redis_process(password: str | None, tls_dir: Path | None = None) -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    server = RedisServer(free_port(), password, tls=tls_dir is not None)
    arguments = [executable, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if tls_dir is None:
        arguments += ["--port", str(server.port)]
    else:
        arguments += ["--port", "0", "--tls-port", str(server.port), "--tls-auth-clients", "no"]
        arguments += ["--tls-cert-file", str(tls_dir / "cert.pem"), "--tls-key-file", str(tls_dir / "key.pem")]
    if password:
        arguments += ["--requirepass", password]
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: process.poll() is not None or _answers(server), what="redis-server to answer")
        if process.poll() is not None:
            pytest.fail(f"redis-server exited with code {process.returncode}")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server (Debian package) on a free loopback port, without a password."""
    yield from _redis_process(None)


@pytest.fixture(scope="session")
def redis_secure() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port that requires the password SECRET."""
    yield from _redis_process(SECRET)


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server speaking TLS only (self-signed certificate), with the password SECRET."""
    directory = tmp_path_factory.mktemp("redis-tls")
    _self_signed_certificate(directory)
    yield from _redis_process(SECRET, directory)


def _self_signed_certificate(directory: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (directory / "key.pem").write_bytes(private)


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Any:
    """A client on the password-less server, its databases emptied first."""
    client = redis_server.client()
    client.flushall()
    return client


@pytest.fixture(scope="session")
def docker_api() -> Any:
    """A docker SDK client on the local daemon; skips the test when no daemon answers."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker daemon reachable: {exc}")
    return client


@pytest.fixture(scope="session")
def test_images(docker_api: Any) -> None:
    """The `yaml2dag-test/redis` and `yaml2dag-test/busybox` images (and `redis:latest` when that tag is
    free or ours), built by scripts/build-test-images.sh if needed."""
    completed = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        pytest.fail(f"scripts/build-test-images.sh failed:\n{completed.stdout}\n{completed.stderr}")


@pytest.fixture
def seed_redis_image(docker_api: Any, test_images: None) -> None:
    """Skip unless `redis:latest` (the seed flow's `containerImage: redis`) is the project's test image."""
    if not built_by_the_project(docker_api, SEED_REDIS):
        pytest.skip(
            f"{SEED_REDIS} is an image yaml2dag did not build (a local Redis image?): the build script leaves it "
            "alone, and the seed flow needs the test image (password `redis`)"
        )


@pytest.fixture(autouse=True)
def no_container_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a container behind (also after failing flows), and remove what it left.

    Only containers yaml2dag's operators made (labelled with a DAG id) are looked at: a container
    another process runs on the same daemon meanwhile (an image build) is none of this test's.
    """
    import docker
    from yaml2dag.operators.docker import LABEL_DAG_ID

    try:
        client = docker.from_env()
        before = {container.id for container in client.containers.list(all=True, filters={"label": LABEL_DAG_ID})}
    except docker.errors.DockerException:
        yield
        return
    yield
    made = client.containers.list(all=True, filters={"label": LABEL_DAG_ID})
    left = [container for container in made if container.id not in before]
    if not left:
        return
    described = [f"{c.short_id} {c.image.tags or c.image.id} {c.status} labels={c.labels}" for c in left]
    for container in left:
        container.remove(force=True, v=True)
    pytest.fail("containers left behind (now removed):\n" + "\n".join(described))


@pytest.fixture
def flow_containers(docker_api: Any) -> Callable[[str], list[Any]]:
    """The containers (any state) labelled with a DAG id."""

    def find(dag_id: str) -> list[Any]:
        return docker_api.containers.list(all=True, filters={"label": f"{DAG_LABEL}={dag_id}"})

    return find
