"""Real database servers for the SQL tests: PostgreSQL and MariaDB (Debian packages) on loopback, free ports.

Both run from a temporary data directory as an unprivileged user (`nobody` when the tests run as
root) and are stopped when the fixture ends.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The password of the `app` user of both servers (the tests check it never reaches a log).
PASSWORD = "s3cr3t-Pa55-word"
USER = "app"
DATABASE = "appdb"


@dataclass(frozen=True)
class Server:
    """A running database server: where it is and how to log in."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def jdbc_url(self, scheme: str) -> str:
        """`jdbc:<scheme>://127.0.0.1:<port>/<database>` (credentials are given as task properties)."""
        return f"jdbc:{scheme}://{self.host}:{self.port}/{self.database}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait(port: int, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(port):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer on port {port} within {timeout}s")
        time.sleep(0.1)


def _run(arguments: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(arguments, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        pytest.fail(
            f"{arguments[0] if arguments[0] != 'runuser' else arguments[4]} failed: {done.stderr or done.stdout}"
        )


def _as_user(directory: Path) -> list[str]:
    """The command prefix to run as an unprivileged owner of `directory` (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    nobody = pwd.getpwnam("nobody")
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    return ["runuser", "-u", "nobody", "--"]


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if found is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    return str(found)


def postgres(base: Path) -> Iterator[Server]:
    """A PostgreSQL server on a free port with the user `app` (scram password) owning the database `appdb`."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    base.chmod(0o755)
    (base / "pw").write_text(PASSWORD)
    prefix = _as_user(base)
    data, port = base / "data", free_port()
    _run([*prefix, initdb, "-D", str(data), "-U", USER, "--pwfile", str(base / "pw"),
          "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync"])  # fmt: skip
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"])
    try:
        _wait(port, "PostgreSQL")
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        _run([_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE], env=env)
        yield Server("127.0.0.1", port, USER, PASSWORD, DATABASE)
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)


def mariadb(base: Path) -> Iterator[Server]:
    """A MariaDB server on a free port with the user `app` (password) granted the database `appdb`."""
    daemon = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not Path(daemon).exists() or install is None:
        pytest.skip("MariaDB is not installed (apt-get install -y mariadb-server)")
    base.chmod(0o755)
    data, port, sock = base / "data", free_port(), base / "mysqld.sock"
    user = ["--user=nobody"] if os.geteuid() == 0 else []
    _run([install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
          "--skip-test-db", *user])  # fmt: skip
    _as_user(base)
    process = subprocess.Popen(
        [daemon, "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--pid-file={base / 'mysqld.pid'}", f"--log-error={base / 'error.log'}",
         "--skip-log-bin", "--innodb-buffer-pool-size=32M", *user],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(port, "MariaDB")
        import MySQLdb

        root = MySQLdb.connect(unix_socket=str(sock), user="root")
        with root.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
            cursor.execute(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
            cursor.execute(f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%'")
        root.close()
        yield Server("127.0.0.1", port, USER, PASSWORD, DATABASE)
    finally:
        process.terminate()
        process.wait(timeout=30)
