"""A throw-away PostgreSQL server for tests: Debian's binaries, ``initdb`` in a temp dir, a free loopback port.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system user on a directory
that user owns. Trust authentication on 127.0.0.1 only; the socket lives in the data directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgresql_server(database: str = "bodycam", *, parent: str | os.PathLike | None = None,
                      settings: dict[str, str] | None = None):
    """Yield a ``DATABASE_URL`` for a fresh, empty database; stop and remove the server afterwards.

    The server lives in a new directory in ``parent`` (default: the temp dir). ``settings`` are server
    parameters (``-c name=value``); the tests' default ``fsync=off`` is one of them, so the benchmark
    (bench/bench_catalog.py) can run a server that syncs as a city's would.
    """
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="bodycam-pg-", dir=parent))
    params = " ".join(f"-c {name}={value}" for name, value in {"fsync": "off", **(settings or {})}.items())
    as_user: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*cmd):
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 {params}", "start")
        try:
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)
            yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
