"""Alerts: the faults an officer, the control room and IT must see, derived in one place.

The display, telemetry, events and the status file all show the same list, so a fault can never be
visible in one and missing in another. Each alert has a stable code (for machines and the display's
string table), a severity and a sentence for people.
"""

from __future__ import annotations

from dataclasses import dataclass

OVERHEAT_C = 80.0


@dataclass(frozen=True, order=True)
class Alert:
    severity: int  # 2 critical (officer must act / evidence at risk), 1 warning
    code: str
    text: str

    def as_dict(self) -> dict:
        return {"code": self.code, "severity": "critical" if self.severity >= 2 else "warning", "text": self.text}


def derive_alerts(status: dict, *, battery_percent: float | None = None, battery_low_percent: float = 15.0,
                  cpu_temperature_c: float | None = None, throttling: list[str] | None = None,
                  upload: dict | None = None, display_fault: str | None = None) -> list[Alert]:
    """Alerts for a runtime status dict (``Agent.status()``) and the side readings; most severe first."""
    alerts = []
    faults = status.get("faults") or {}
    if "camera" in faults:
        alerts.append(Alert(2, "camera_fault", f"camera fault: {faults['camera']}"))
    for worker in ("recorder", "sealer", "storage monitor"):
        if worker in faults:
            alerts.append(Alert(2, f"{worker.replace(' ', '_')}_fault", f"{worker} fault: {faults[worker]}"))
    storage = status.get("storage") or {}
    if storage.get("level") == "critical":
        alerts.append(Alert(2, "storage_full", storage.get("reason", "storage critical")))
    elif storage.get("level") == "warn":
        alerts.append(Alert(1, "storage_low", storage.get("reason", "storage low")))
    if status.get("overrun_alarm"):
        alerts.append(Alert(2, "frames_dropped", f"{status.get('frames_lost', 0)} frames dropped: the recorder "
                                                 "cannot keep up"))
    if status.get("refused_reason"):
        alerts.append(Alert(2, "recording_refused", f"recording refused: {status['refused_reason']}"))
    if "microphone" in faults:
        alerts.append(Alert(1, "audio_fault", f"sound not recorded: {faults['microphone']}"))
    if "audit" in faults:
        alerts.append(Alert(1, "audit_log_failing", f"audit log not written: {faults['audit']}"))
    if "uplink" in faults:
        alerts.append(Alert(1, "upload_failing", f"upload not running: {faults['uplink']}"))
    elif upload and (upload.get("fault") or upload.get("state") in ("refused", "receiver_silent")):
        alerts.append(Alert(1, "upload_failing", upload.get("fault") or "the back office's receiver does not answer"))
    checkout = [faults[part] for part in ("nfc", "checkout") if part in faults]  # badge reader, kept assignment
    if checkout:
        alerts.append(Alert(1, "checkout_fault", "; ".join(checkout)))
    if "homeassistant" in faults:
        alerts.append(Alert(1, "homeassistant_refused", faults["homeassistant"]))
    if cpu_temperature_c is not None and cpu_temperature_c >= OVERHEAT_C or throttling and (
            "throttled" in throttling or "soft-temperature-limit" in throttling):
        alerts.append(Alert(1, "overheating", f"CPU at {cpu_temperature_c} °C, throttling: "
                                              f"{', '.join(throttling or []) or 'none'}"))
    if throttling and "under-voltage" in throttling:
        alerts.append(Alert(1, "under_voltage", "power supply too weak (under-voltage)"))
    if battery_percent is not None and battery_percent < battery_low_percent:
        alerts.append(Alert(2 if battery_percent < battery_low_percent / 2 else 1, "low_battery",
                            f"battery at {battery_percent:.0f} %"))
    if display_fault:
        alerts.append(Alert(1, "display_fault", f"front display fault: {display_fault}"))
    return sorted(alerts, key=lambda a: (-a.severity, a.code))
