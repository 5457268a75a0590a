"""`bodycam-office receiver` and `bodycam-office keys receiver`."""

from __future__ import annotations

import signal
import subprocess
import sys

from evidence.keys import load_device_public_keys, load_receipt_public_key
from evidence.verify import verify_paths
from backoffice.cli import main
from comms_env import wait_until
from mqtt_harness import HOST


def write_config(path, tmp_path, creds, port, device_pub, receipt_key, **extra):
    lines = ["[receiver]", 'id = "bo-recv-1"', f'store_dir = "{tmp_path / "store"}"',
             f'incoming_dir = "{tmp_path / "incoming"}"', f'devices = ["{device_pub}"]', f'receipt_key = "{receipt_key}"']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    lines += ["[mqtt]", f'host = "{HOST}"', f"port = {port}", f'ca_file = "{creds.ca}"', f'cert_file = "{creds.cert}"',
              f'key_file = "{creds.key}"', "reconnect_min_s = 0.1", "reconnect_max_s = 1.0"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_keys_example_and_check(tmp_path, capsys, world, pki, broker):
    assert main(["keys", "receiver", "--out", str(tmp_path)]) == 0
    assert "receipt.pub" in capsys.readouterr().out
    assert main(["keys", "receiver", "--out", str(tmp_path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["receiver", "--example"]) == 0
    assert "[receiver]" in capsys.readouterr().out
    device = world.device()
    cfg = write_config(tmp_path / "rx.toml", tmp_path, pki.issue("bo-recv-1"), broker.port, device.device_pub,
                       tmp_path / "receipt.key")
    assert main(["receiver", "--config", str(cfg), "--check"]) == 0
    assert "OK (receiver bo-recv-1, 1 enrolled device key(s)" in capsys.readouterr().out
    bad = write_config(tmp_path / "bad.toml", tmp_path, pki.issue("bo-recv-1"), broker.port, device.device_pub,
                       tmp_path / "receipt.key", max_chunk_kib=1)
    assert main(["receiver", "--config", str(bad), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bodycam: ") and "receiver.max_chunk_kib" in err and "Traceback" not in err


def test_the_receiver_command_receives_stores_and_stops_cleanly(tmp_path, world, pki, broker):
    device = world.device()
    device.seal_random(3, size=40_000)
    assert main(["keys", "receiver", "--out", str(tmp_path)]) == 0
    cfg = write_config(tmp_path / "rx.toml", tmp_path, pki.issue("bo-recv-1"), broker.port, device.device_pub,
                       tmp_path / "receipt.key")
    proc = subprocess.Popen([sys.executable, "-m", "backoffice", "receiver", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        world.uplink(device, load_receipt_public_key(tmp_path / "receipt.pub"))
        wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30, what="the upload")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stored kod-07-0000000003" in err
    assert verify_paths([tmp_path / "store"], load_device_public_keys([device.device_pub])).ok
