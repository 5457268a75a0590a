"""`bodycam-office custodian`: checks its keys, finds its keys as systemd credentials, refuses a socket another
custodian holds or that is not a socket, and takes over a socket file a dead custodian left."""

from __future__ import annotations

import os
import shutil
import socket

from backoffice.cli import main

from .conftest import CustodianProcess


def _args(world, socket_path, *extra):
    return ["custodian", "--socket", str(socket_path), "--office-key", str(world.root / "keys" / "office.key"),
            "--devices", str(world.env.device / "device.pub"), "--store", str(world.store),
            "--audit-log", str(world.log_path), *extra]


def test_check_loads_the_keys_from_the_options_or_the_credentials_directory(world, socket_dir, monkeypatch, capsys):
    assert main(_args(world, socket_dir / "c.sock", "--check")) == 2
    assert "--identity" in capsys.readouterr().err  # no evidence key given anywhere
    credentials = world.root / "credentials"
    credentials.mkdir()
    shutil.copy(world.env.identity, credentials / "evidence.key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert main(_args(world, socket_dir / "c.sock", "--check")) == 0
    assert "custodian: OK" in capsys.readouterr().out
    os.chmod(credentials / "evidence.key", 0o644)
    assert main(_args(world, socket_dir / "c.sock", "--check")) == 2
    assert "let other users read the private key" in capsys.readouterr().err
    assert not (socket_dir / "c.sock").exists()


def test_a_second_custodian_or_a_foreign_file_is_refused_and_a_stale_socket_taken_over(world, custodian, socket_dir,
                                                                                          capsys):
    args = _args(world, custodian.socket, "--identity", str(world.env.identity))
    assert main(args) == 2
    assert "another custodian already listens" in capsys.readouterr().err
    assert custodian.proc.poll() is None  # the running one is untouched

    other = socket_dir / "file.sock"
    other.write_text("not a socket")
    assert main(_args(world, other, "--identity", str(world.env.identity))) == 2
    assert "is not a socket" in capsys.readouterr().err and other.read_text() == "not a socket"

    assert custodian.stop() == 0
    stale = socket.socket(socket.AF_UNIX)  # a socket file nobody listens on any more
    stale.bind(str(custodian.socket))
    stale.close()
    restarted = CustodianProcess(world, socket_dir)
    restarted.start()
    try:
        assert oct(custodian.socket.stat().st_mode & 0o777) == "0o660"
        assert "removed the stale socket" in restarted.stderr()
    finally:
        restarted.stop()


def test_the_custodian_never_loads_django_or_the_catalog_models():
    """It trusts the signed ticket, not a database: nothing of the catalog's ORM is in its process."""
    import subprocess
    import sys

    from .conftest import REPO

    code = ("import sys; from backoffice.cli import build_parser; from backoffice.custody import custodian, ticket; "
            "from backoffice.office import settings; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django' or m == 'backoffice.catalog.models'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip() == "[]"
