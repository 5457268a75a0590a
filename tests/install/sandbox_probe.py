"""Stands in for ``bodycam run`` as the unit's ExecStart, inside a booted container (test_chroot.py).

It runs under exactly the agent unit's hardening and user, exercises what the agent needs (the
Python stack with its native code under MemoryDenyWriteExecute and the system-call filter, the
device key, mock GPIO, an IP socket, the whole capture -> seal -> spool -> verify -> export chain
of ``bodycam demo``), records each result in /var/lib/bodycam/probe.json, and then behaves like the
runtime towards systemd: READY=1, then WATCHDOG=1 until it is stopped.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback

RESULTS = "/var/lib/bodycam/probe.json"


def imports():
    modules = ("numpy", "av", "cryptography.hazmat.primitives.asymmetric.ed25519", "pyrage", "paho.mqtt.client",
               "gpiozero", "luma.core.device", "PIL.Image")
    return [__import__(m).__name__ for m in modules]


def device_key():
    from evidence.keys import load_signing_key

    return load_signing_key("/etc/bodycam/keys/device.key").key_id


def gpio():
    from gpiozero import LED, Button

    button, led = Button(17), LED(27)
    led.on()
    state = (button.is_pressed, led.is_lit)
    button.close()
    led.close()
    return state


def network():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.connect(("127.0.0.1", 9))
        except ConnectionRefusedError:
            return "refused: creating and connecting the socket is allowed"
    return "connected"


def etc_read_only():
    try:
        open("/etc/bodycam/probe", "w").close()
    except OSError as exc:
        return f"blocked: {exc.strerror}"
    return "WRITABLE"


def demo():
    from agent import config
    from agent.demo import run_demo

    cfg = config.replace(config.Config(), "camera", width=320, height=240, backend="synthetic")
    cfg = config.replace(cfg, "recording", pre_event_seconds=2.0)
    return run_demo(cfg, 3.0, 3.0, "/var/lib/bodycam/demo")


def run(step):
    try:
        return {"ok": True, "value": repr(step())[:300]}
    except BaseException as exc:  # recorded for the test to show
        return {"ok": False, "value": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-1500:]}


def notify(message: bytes) -> None:
    addr = os.environ["NOTIFY_SOCKET"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message, "\0" + addr[1:] if addr.startswith("@") else addr)


def main() -> None:
    results = {"identity": {"ok": True, "value": repr((os.getuid(), sorted(os.getgroups()), os.getcwd()))}}
    for step in (imports, device_key, gpio, network, etc_read_only, demo):
        results[step.__name__] = run(step)
    with open(RESULTS, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1)
    notify(b"READY=1")
    while True:
        notify(b"WATCHDOG=1")
        time.sleep(5)


if __name__ == "__main__":
    main()
