"""Fixtures for the provider tasks: real PostgreSQL and MariaDB servers, a moto S3 server, all on loopback."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from providers import servers


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[servers.Server]:
    """A real PostgreSQL (Debian package) on a free loopback port; user `app` with a password."""
    yield from _in_temporary_directory(servers.postgres, "postgres")


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[servers.Server]:
    """A real MariaDB (Debian package) on a free loopback port; user `app` with a password."""
    yield from _in_temporary_directory(servers.mariadb, "mariadb")


def _in_temporary_directory(start: Callable[[Path], Iterator[servers.Server]], name: str) -> Iterator[servers.Server]:
    """Run a server from a fresh directory the unprivileged server user can reach (pytest's tmp is root-only)."""
    base = Path(tempfile.mkdtemp(prefix=f"yaml2dag-{name}-"))
    try:
        yield from start(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 API (moto in server mode) on a free loopback port: its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = servers.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
