import json

from backoffice.fleet import FleetView


def telemetry(state="standby", battery=None, alerts=()):
    return json.dumps({"schema": "bodycam.telemetry/1", "recorder": {"state": state},
                       "battery": battery, "storage": {"free_bytes": 3 * 2**30, "level": "ok", "total_bytes": 1},
                       "backlog": {"segments": 2, "bytes": 25_000_000, "oldest_age_s": 40},
                       "alerts": [{"code": c} for c in alerts]}).encode()


def test_fleet_view_shows_state_battery_storage_backlog_and_last_seen():
    view = FleetView()
    view.apply("bodycam/moers/kod-07/status", b"online", now=1000)
    view.apply("bodycam/moers/kod-07/telemetry", telemetry("recording", {"percent": 71.0, "voltage": 3.8},
                                                           ["storage_low"]), now=1000)
    view.apply("bodycam/herne/kod-01/status", b"offline", now=1000)
    view.apply("bodycam/herne/kod-01/telemetry", b"{broken", now=1000)
    view.apply("other/topic", b"x")
    rows = view.table(now=1030)
    assert rows[1][:7] == ["herne", "kod-01", "offline", "-", "-", "-", "unknown"] and rows[1][9] == "never"
    assert rows[2] == ["moers", "kod-07", "online", "RECORDING", "-", "-", "71 %", "3.0 GiB (ok)", "2 / 25 MB",
                       "30 s ago", "storage_low", "-"]
    assert view.rows[("herne", "kod-01")].errors == 1
    assert "(stale)" in view.table(now=1000 + 600)[2][2]
    assert view.render(now=1030).splitlines()[0].startswith("SITE")


def test_fleet_view_shows_who_carries_each_device():
    view = FleetView()
    for device, assignment in [("kod-01", {"officer": "ko-17", "since": None, "via": "badge", "docked": False}),
                               ("kod-02", {"officer": None, "since": None, "via": None, "docked": True}),
                               ("kod-03", None)]:  # check-out not enabled there
        doc = {**json.loads(telemetry()), "assignment": assignment}
        view.apply(f"bodycam/moers/{device}/telemetry", json.dumps(doc).encode(), now=1000)
    rows = view.table(now=1000)
    assert rows[0][-1] == "OFFICER"
    assert [r[-1] for r in rows[1:]] == ["ko-17", "unassigned", "-"]


def test_fleet_view_shows_the_pre_event_mode_and_the_legal_profile():
    view = FleetView()
    doc = json.loads(telemetry("mirror"))
    doc["recorder"].update(pre_event_mode="announced", pre_recording=True)
    doc["policy"] = {"profile": "nrw"}
    view.apply("bodycam/moers/kod-07/telemetry", json.dumps(doc).encode(), now=1000)
    header, row = view.table(now=1000)
    assert dict(zip(header, row))["PRE-EVENT"] == "announced (active)" and dict(zip(header, row))["PROFILE"] == "nrw"
    doc["recorder"]["pre_recording"] = False
    view.apply("bodycam/moers/kod-07/telemetry", json.dumps(doc).encode(), now=1001)
    assert dict(zip(*view.table(now=1001)))["PRE-EVENT"] == "announced"
