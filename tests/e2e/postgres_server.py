"""A private PostgreSQL server on 127.0.0.1 for Red's PostgreSQL backend.

It lives in a temporary folder and stops with the test session. PostgreSQL refuses
to run as root, so as root the server runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_binaries() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``, newest version first, if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[dict[str, str]]:
    """Start a throwaway server; yields the ``PG*`` environment to reach it."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries are not installed")
    root = Path(tempfile.mkdtemp(prefix="loopflow-pg-"))
    data = root / "data"
    port = _free_port()
    as_root = os.geteuid() == 0
    if as_root:
        os.chmod(root, 0o777)
        shutil.chown(root, user="postgres")

    def run(*args: str) -> None:
        command = [str(binaries / args[0]), *args[1:]]
        if as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=root)

    run("initdb", "-D", str(data), "-U", "loopflow", "--auth=trust", "-E", "UTF8")
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"
    run("pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start")
    try:
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "loopflow", "red")
        yield {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(port),
            "PGUSER": "loopflow",
            "PGPASSWORD": "",
            "PGDATABASE": "red",
        }
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
