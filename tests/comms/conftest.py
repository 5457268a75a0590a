"""Fixtures for the comms tests: a real mosquitto with TLS client certificates and an ACL, per test.

Each test that asks for ``broker`` gets its own CA, broker certificate and mosquitto process on a free
127.0.0.1 port (tests/comms/mqtt_harness.py); the process is killed at teardown whatever happened.
Devices and receivers are built from tests/comms/comms_env.py and stopped at teardown too.
"""

from __future__ import annotations

import pytest

from comms_env import SUMMARY, BackOffice, DeviceEnv, mqtt_settings, uplink_for
from mqtt_harness import Broker, Pki

RECEIVERS = ["bo-recv-1", "bo-recv-2"]


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("evidence transfer fault test")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path / "pki")


@pytest.fixture
def broker(tmp_path, pki):
    b = Broker(tmp_path / "broker", pki, RECEIVERS)
    b.start()
    try:
        yield b
    finally:
        b.kill()


@pytest.fixture
def settings_for(pki, broker):
    """MQTT settings for a client whose certificate CN is ``cn``, via ``port`` (default: the broker's)."""
    issued = {}

    def make(cn: str, port: int | None = None, **kw):
        if cn not in issued:
            issued[cn] = pki.issue(cn)
        return mqtt_settings(issued[cn], port or broker.port, **kw)
    return make


@pytest.fixture
def world(tmp_path, settings_for):
    """Builds devices, back offices and uplinks, and stops every one of them at teardown."""
    w = _World(tmp_path, settings_for)
    try:
        yield w
    finally:
        w.close()


class _World:
    def __init__(self, tmp_path, settings_for):
        self.tmp = tmp_path
        self.settings_for = settings_for
        self._stoppables = []
        self._devices = []

    def device(self, device_id: str = "kod-07", site: str = "duisburg", **kw) -> DeviceEnv:
        d = DeviceEnv(self.tmp / f"dev-{device_id}", device_id, site, **kw)
        self._devices.append(d)
        return d

    def backoffice(self, devices: list[DeviceEnv], receiver_id: str = "bo-recv-1", *, start: bool = True,
                   port: int | None = None, root_name: str = "backoffice", **kw) -> BackOffice:
        bo = BackOffice(self.tmp / root_name, [d.device_pub for d in devices],
                        self.settings_for(receiver_id, port), receiver_id, store_root=self.tmp / "shared", **kw)
        self._stoppables.append(bo)
        return bo.start() if start else bo

    def uplink(self, device: DeviceEnv, receipt_pub, *, port: int | None = None, start: bool = True,
               mqtt_kw: dict | None = None, **kw):
        up = uplink_for(device, self.settings_for(device.device_id, port, **(mqtt_kw or {})), receipt_pub, **kw)
        self._stoppables.append(up)
        return up.start() if start else up

    def close(self) -> None:
        for s in reversed(self._stoppables):
            s.stop()
        for d in self._devices:
            d.close()
