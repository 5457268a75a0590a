"""`bodycam-office receiver` and `bodycam-office keys receiver`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

from evidence.keys import load_device_public_keys, load_receipt_public_key
from evidence.verify import verify_paths
from comms import protocol
from comms.mqtt import MqttLink
from backoffice.cli import main
from backoffice.receiver_cli import ReceiverService
from backoffice.settings import load_receiver_config
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


def log_has(path, *texts) -> bool:
    log = path.read_text(errors="replace")
    return all(t in log for t in texts)


def test_the_receiver_unit_command_logs_connections_stored_segments_and_a_summary(tmp_path, world, pki, broker):
    """What `bodycam-office receiver` (the unit's command) writes to the journal in normal operation, at its own level."""
    device = world.device()
    device.seal_random(2, size=40_000)
    assert main(["keys", "receiver", "--out", str(tmp_path)]) == 0
    cfg = write_config(tmp_path / "rx.toml", tmp_path, pki.issue("bo-recv-1"), broker.port, device.device_pub,
                       tmp_path / "receipt.key", summary_s=1.0)
    log = tmp_path / "receiver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "backoffice", "receiver", "--config", str(cfg)], stdout=out,
                                stderr=out)
    try:
        wait_until(lambda: log_has(log, "connected to the broker"), 15, what="the connection in the log")
        world.uplink(device, load_receipt_public_key(tmp_path / "receipt.pub"))
        wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30, what="the upload")
        wait_until(lambda: log_has(log, "2 segments stored"), 15, what="a summary counting both segments")
        broker.kill()
        wait_until(lambda: log_has(log, "lost the broker"), 15, what="the lost connection in the log")
        broker.start()
        wait_until(lambda: log.read_text().count("connected to the broker") >= 2, 15, what="the reconnection")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0
    text = log.read_text()
    assert "INFO backoffice.receiver: stored kod-07-0000000002" in text
    assert "WARNING backoffice.receiver: receiver bo-recv-1 lost the broker" in text
    summary = [line for line in text.splitlines() if "segments stored" in line]
    assert summary and summary[0].startswith("INFO backoffice.receiver: receiver bo-recv-1, last ")
    assert "Traceback" not in text and "DEBUG" not in text


def test_the_receiver_feeds_the_watchdog_only_while_work_moves(tmp_path, world, pki, broker, settings_for, monkeypatch):
    device = world.device()
    assert main(["keys", "receiver", "--out", str(tmp_path)]) == 0
    cfg = write_config(tmp_path / "rx.toml", tmp_path, pki.issue("bo-recv-1"), broker.port, device.device_pub,
                       tmp_path / "receipt.key")
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    monkeypatch.setenv("NOTIFY_SOCKET", sock_path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # fed every 0.1 s while healthy
    service = ReceiverService(load_receiver_config(cfg), stall_s=1.0)
    stop, codes = threading.Event(), []
    runner = threading.Thread(target=lambda: codes.append(service.run(stop)), name="TestReceiverService")
    runner.start()
    stuck, release = threading.Event(), threading.Event()
    sender = MqttLink(settings_for(device.device_id), device.device_id)
    try:
        heard = notifications(sock, until=lambda got: sum(m == "WATCHDOG=1" for m in got) >= 3)
        assert heard[0].startswith("READY=1")
        wait_until(service.thread.connected.is_set, 10, what="the receiver's subscription")

        def stuck_handle(topic, payload):  # a message the receiver thread cannot finish
            stuck.set()
            release.wait(60)
            return []

        service.receiver.handle = stuck_handle
        sender.start()
        wait_until(lambda: sender.connected, 10, what="the device")
        sender.publish(protocol.up_topic(device.site, device.device_id, protocol.OFFER), b"{}")
        assert stuck.wait(10)
        heard = notifications(sock, until=lambda got: any("stuck" in m for m in got))
        quiet = notifications(sock, seconds=1.0)  # ten feeding periods
        assert "WATCHDOG=1" not in quiet, quiet
        release.set()  # the receiver moves again: feeding resumes
        notifications(sock, until=lambda got: "WATCHDOG=1" in got)
    finally:
        release.set()
        stop.set()
        runner.join(20)
        sender.stop()
        sock.close()
    assert codes == [0]


def notifications(sock, *, until=None, seconds: float = 15.0) -> list[str]:
    """Messages on the fake notify socket, until ``until(got)`` holds (else an error) or for ``seconds``."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.extend(sock.recv(4096).decode().splitlines())
        except TimeoutError:
            break
        if until is not None and until(got):
            return got
    if until is not None:
        raise AssertionError(f"the notify socket never said what was expected: {got}")
    return got
