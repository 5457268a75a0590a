import os

import pytest

from agent.diskspace import DiskPressure, PressureLevel
from agent.health import StorageMonitor
from agent.recorder import Action
from comms.uplink import UplinkStatus


class FakeFs:
    """statvfs with a settable amount of free space (4 KiB blocks, 1 GiB total)."""

    def __init__(self):
        self.free_mib = 800

    def __call__(self, path):
        blocks = 1 << 18
        free = self.free_mib * 256
        return os.statvfs_result((4096, 4096, blocks, free, free, 1000, 1000, 1000, 0, 255))


class FakeAudit:
    def __init__(self):
        self.lines = []

    def append(self, event, **fields):
        self.lines.append((event, fields))


def test_levels_are_audited_once_per_change_and_critical_stops_a_recording():
    fs, log, triggers, snapshots = FakeFs(), FakeAudit(), [], []
    recording = [True]
    monitor = StorageMonitor(DiskPressure("/spool", 500, 100, statvfs=fs), is_recording=lambda: recording[0],
                             trigger=triggers.append, audit_log=log, on_snapshot=snapshots.append)
    assert monitor.check().level is PressureLevel.OK and not log.lines and not triggers
    fs.free_mib = 400
    monitor.check()
    monitor.check()
    assert [(e, f["level"]) for e, f in log.lines] == [("storage_pressure", "warn")] and not triggers
    fs.free_mib = 50
    monitor.check()
    assert [f["level"] for _, f in log.lines] == ["warn", "critical"]
    assert [(t.action, t.origin) for t in triggers] == [(Action.STOP, "storage")]
    assert "storage critical" in triggers[0].detail
    recording[0] = False
    monitor.check()
    assert len(triggers) == 1  # nothing to stop any more; nothing is ever deleted either
    fs.free_mib = 900
    monitor.check()
    assert [f["level"] for _, f in log.lines] == ["warn", "critical", "ok"]
    assert [s.level for s in snapshots][-1] is PressureLevel.OK


def test_an_unreadable_file_system_is_a_fault_not_a_crash():
    def broken(path):
        raise PermissionError(13, "Permission denied")

    monitor = StorageMonitor(DiskPressure("/spool", 500, 100, statvfs=broken), is_recording=lambda: True,
                             trigger=lambda t: None)
    assert monitor.check() is None
    assert monitor.fault is not None and "/spool" in str(monitor.fault)


def test_an_audit_log_the_card_refuses_is_an_alert_the_officer_sees_as_a_system_fault():
    from agent.alerts import derive_alerts
    from ui.text import alert_text

    alerts = derive_alerts({"faults": {"audit": "StorageFullError: storage full while writing audit event"}})
    assert [(a.code, a.as_dict()["severity"]) for a in alerts] == [("audit_log_failing", "warning")]
    assert "storage full" in alerts[0].text
    assert alert_text("audit_log_failing") == alert_text("system_fault") != alert_text("some_future_code")


def test_a_refused_home_assistant_discovery_is_an_alert_the_officer_sees_as_a_system_fault():
    from agent.alerts import derive_alerts
    from ui.text import alert_text

    fault = "Home Assistant discovery refused by the broker: Not authorized (0x87) for 7 config(s)"
    alerts = derive_alerts({"faults": {"homeassistant": fault}})
    assert [(a.code, a.as_dict()["severity"], a.text) for a in alerts] == [("homeassistant_refused", "warning", fault)]
    assert alert_text("homeassistant_refused") == alert_text("system_fault")


@pytest.mark.parametrize("status, alert", [
    (UplinkStatus(state="idle", link_up=True), None),
    (UplinkStatus(state="sending", link_up=True), None),
    (UplinkStatus(state="connecting"), None),  # a dock without network is normal; the backlog icon shows it
    (UplinkStatus(state="refused", link_up=True, fault="the broker refused our publish with reason 0x87"),
     "the broker refused our publish with reason 0x87"),
    (UplinkStatus(state="idle", link_up=True, fault="segment x: the SD card may be failing"),
     "segment x: the SD card may be failing"),
    (UplinkStatus(state="receiver_silent", link_up=True), "the back office's receiver does not answer"),
])
def test_the_uplinks_own_faults_become_the_upload_failing_alert(status, alert):
    from agent.alerts import derive_alerts

    texts = [a.text for a in derive_alerts({}, upload=status.as_dict()) if a.code == "upload_failing"]
    assert texts == ([alert] if alert else [])
