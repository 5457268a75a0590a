"""The keys/verify/export subcommands: exit 0 all good, 1 verification failed, 2 bad input; one-line errors."""

import json
import subprocess
import sys

import av

from agent.cli import main

from .conftest import cut


def run(*argv):
    return subprocess.run([sys.executable, "-m", "agent.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=60)


def test_keys_commands(tmp_path, capsys):
    assert main(["keys", "evidence", "--out", str(tmp_path)]) == 0
    assert main(["keys", "device", "--out", str(tmp_path), "--device-id", "kod-07"]) == 0
    out = capsys.readouterr().out
    assert "recipient: age1" in out and "key id: " in out
    assert main(["keys", "evidence", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bodycam: ") and "already exists" in err and err.count("\n") == 1
    assert main(["keys", "device", "--out", str(tmp_path), "--force"]) == 0


def test_verify_exit_codes_and_messages(env, frames_60, capsys):
    sealed = env.seal_all(cut(frames_60, "inc-1"))
    assert main(["verify", str(env.spool), "--devices", str(env.device)]) == 0
    assert "OK: 6 of 6 segment(s) verified" in capsys.readouterr().out
    (env.spool / sealed[3].ciphertext_name).unlink()
    (env.spool / sealed[3].manifest_name).unlink()
    assert main(["verify", str(env.spool), "--devices", str(env.device / "device.pub"), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and any(p["kind"] == "gap" for p in doc["problems"])
    assert main(["verify", str(env.spool), "--devices", str(env.device)]) == 1
    out = capsys.readouterr().out
    assert "BAD  device kod-07: seq 4 missing" in out and "FAILED" in out


def test_input_errors_exit_2_without_traceback(env, tmp_path):
    bad_key = tmp_path / "device.pub"
    bad_key.write_text("ed25519:non$ense\n")
    proc = run("verify", env.spool, "--devices", bad_key)
    assert proc.returncode == 2
    assert proc.stderr == f"bodycam: {bad_key}:1: the device public key is not valid base64\n"
    proc = run("verify", tmp_path / "nope", "--devices", env.device)
    assert (proc.returncode, proc.stderr) == (2, f"bodycam: {tmp_path / 'nope'}: no such file or directory\n")
    (env.identity).chmod(0o644)
    proc = run("export", env.spool, "--identity", env.identity, "--out", tmp_path / "x.mp4", "--devices", env.device)
    assert proc.returncode == 2 and "chmod 600" in proc.stderr and "Traceback" not in proc.stderr
    assert run("export", env.spool).returncode == 2  # argparse: missing options


def test_export_command(env, frames_60, tmp_path):
    sealed = env.seal_all(cut(frames_60, "inc-1"))
    out = tmp_path / "inc-1.mp4"
    proc = run("export", "--identity", env.identity, "--out", out, "--devices", env.device, "--incident", "inc-1",
               env.spool)
    assert proc.returncode == 0, proc.stderr
    assert "6/6 segments" in proc.stderr and "complete" in proc.stdout
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 60
    (env.spool / sealed[5].manifest_name).unlink()
    proc = run("export", "--identity", env.identity, "--out", out, "--devices", env.device, env.spool)
    assert proc.returncode == 1
    assert "BAD  " in proc.stderr and "--allow-gaps" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("export", "--identity", env.identity, "--out", out, "--devices", env.device, "--allow-gaps",
               env.spool)
    assert proc.returncode == 0 and "INCOMPLETE" in proc.stdout
