"""The data-protection officer's reports: who did what with one incident, and everything about the incidents of
one place and time (GDPR Art. 15); who may read them, and that every reading is in the signed log."""

from __future__ import annotations

import dataclasses

import json
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from .conftest import T0


def _incident(name: str):
    from backoffice.catalog.models import Incident

    return Incident.objects.get(incident_id=name)


def _events(world) -> list[tuple[str, dict]]:
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


def _tick(world, minutes: int = 1) -> None:
    world.clock.now += timedelta(minutes=minutes)


def _history(world, inc) -> None:
    """An incident's life: watched, refused, held, released by two people, deleted early by two people."""
    from backoffice.catalog.models import Access, RuleError

    rita, dana = world.user("rita", "reviewer"), world.user("dana", "data-protection")
    sven, sara = world.user("sven", "supervisor"), world.user("sara", "supervisor")
    _tick(world)
    Access.open(world.office, user=rita, incident=inc, kind=Access.PLAYBACK, purpose="Anzeige 12/2025",
                via="web 10.0.0.5")
    _tick(world)
    with pytest.raises(RuleError):
        Access.open(world.office, user=dana, incident=inc, kind=Access.PLAYBACK, purpose="Kontrolle")
    _tick(world)
    hold = inc.place_hold(world.office, by=rita, case_reference="OWi 1/25", reason="complaint")
    _tick(world)
    hold.propose_release(world.office, by=sven, reason="case closed").approve(world.office, by=sara)
    _tick(world)
    inc.propose_deletion(world.office, by=rita, reason="recorded by mistake").approve(world.office, by=sven)


def test_the_access_report_lists_every_step_with_who_when_how_and_why_in_order(world, frames_30):
    from backoffice.catalog.reports import access_report

    world.record_incident("inc-1", frames_30)
    world.ingest()
    _history(world, _incident("inc-1"))
    rows = access_report(_incident("inc-1"))
    assert [(r["event"], r["by"], r["kind"]) for r in rows] == [
        ("access", "rita", "playback"), ("access_refused", "dana", "playback"),
        ("hold_placed", "rita", "hold"), ("decision_proposed", "sven", "hold_release"),
        ("decision_approved", "sara", "hold_release"), ("hold_lifted", "sara", "hold"),
        ("decision_proposed", "rita", "early_deletion"), ("decision_approved", "sven", "early_deletion"),
        ("incident_deleted", "rita and sven", "deletion")]
    first, refused = rows[0], rows[1]
    assert (first["at"], first["purpose"], first["via"]) == ((T0 + timedelta(minutes=1)).isoformat(),
                                                             "Anzeige 12/2025", "web 10.0.0.5")
    assert refused["purpose"] == "Kontrolle" and "may not watch" in refused["note"]
    assert rows[2]["purpose"] == "OWi 1/25: complaint"
    assert "early deletion" in rows[-1]["purpose"] and "completed" in rows[-1]["note"]
    json.dumps(rows)  # JSON values only


def test_the_access_report_costs_the_same_queries_for_a_long_history(world, frames_30):
    """No query per row: an incident with forty accesses costs what one with a single access costs."""
    from backoffice.catalog.models import Access
    from backoffice.catalog.reports import access_report

    world.record_incident("inc-1", frames_30)
    world.record_incident("inc-2", frames_30)
    world.ingest()
    few, many = _incident("inc-1"), _incident("inc-2")
    readers = [world.user(f"r{i}", "reviewer") for i in range(4)]
    Access.open(world.office, user=readers[0], incident=few, kind=Access.PAGE)
    for i in range(40):
        Access.open(world.office, user=readers[i % 4], incident=many, kind=Access.PLAYBACK, purpose=f"case {i}")
    many.place_hold(world.office, by=readers[1], case_reference="X 1", reason="evidence")
    costs = []
    for inc in (few, many):
        with CaptureQueriesContext(connection) as queries:
            rows = access_report(inc)
        costs.append(len(queries))
    assert len(rows) == 41 and costs[0] == costs[1], costs


def _spread(world, frames_30) -> None:
    """Four incidents: three at duisburg (08:00-08:10, 09:00-09:10, 10:00-10:10), one at essen 09:00-09:10."""
    from backoffice.catalog import segment_rows
    from backoffice.catalog.models import Incident, Site

    for i in range(4):
        world.record_incident(f"inc-{i}", frames_30)
    world.ingest()
    essen = Site.objects.create(code="essen")
    for i, (hour, site) in enumerate([(8, None), (9, None), (10, None), (9, essen)]):
        start = T0.replace(hour=hour)
        fields = {"start": start, "end": start + timedelta(minutes=10)}
        Incident.objects.filter(incident_id=f"inc-{i}").update(**fields, **({"site": site} if site else {}))
        incident = Incident.objects.select_related("site").get(incident_id=f"inc-{i}")
        segment_rows.cover(incident)  # as the receiver keeps it when it records an incident this long


def test_the_subject_report_finds_the_incidents_of_the_place_and_time_with_everything_about_them(world, frames_30):
    from backoffice.catalog.models import Access
    from backoffice.catalog.reports import subject_report

    _spread(world, frames_30)
    olga, rita = world.user("olga", "officer"), world.user("rita", "reviewer")
    inc1 = _incident("inc-1")
    inc1.officer = "olga"
    inc1.save()
    Access.open(world.office, user=olga, incident=inc1, kind=Access.EXPORT, purpose="Bußgeldstelle",
                via="web 10.0.0.7")
    inc1.place_hold(world.office, by=rita, case_reference="OWi 7/25", reason="objection")
    _incident("inc-2").delete_with_tombstone(world.office, rule="site duisburg: NW 14d", by=["retention timer"])

    # 11:05 to 12:00 German summer time is 09:05 to 10:00 UTC: inc-1 (09:00-09:10) and inc-2 (10:00-10:10)
    # overlap it, inc-0 (08:00-08:10) does not, inc-3 is at another site
    local = datetime.fromisoformat("2025-06-15T11:05:00+02:00")
    rows = subject_report("duisburg", local, local + timedelta(minutes=55))
    assert [r["incident"] for r in rows] == ["kod-07/inc-1", "kod-07/inc-2"]
    held, deleted = rows
    assert (held["officer"], held["state"], held["device"]) == ("olga", "active", "kod-07")
    assert [(h["case_reference"], h["placed_by"], h["lifted_at"]) for h in held["holds"]] == [
        ("OWi 7/25", "rita", None)]
    assert held["accesses"] == [{"at": T0.isoformat(), "by": "olga", "kind": "export", "purpose": "Bußgeldstelle",
                                 "via": "web 10.0.0.7"}]
    assert held["deletion"] is None
    assert deleted["state"] == "deleted" and deleted["accesses"] == []
    assert deleted["deletion"]["rule"] == "site duisburg: NW 14d" and deleted["deletion"]["completed_at"]
    assert subject_report("duisburg", local - timedelta(hours=3), local - timedelta(hours=2, minutes=1)) == []
    json.dumps(rows)


def test_the_subject_report_finds_an_incident_that_began_long_before_the_window(world):
    """The window is looked up as an index range that starts the site's longest incident before it; the
    receiver keeps that length as it records, so a long incident is never left out."""
    from backoffice.catalog.models import Site
    from backoffice.catalog.reports import subject_report
    from tests.evidence.conftest import encode_h264

    frames = [dataclasses.replace(f, wall_time=T0.timestamp() + i * 60) for i, f in enumerate(encode_h264(61))]
    world.record_incident("inc-long", frames)  # an hour: 61 pictures a minute apart
    world.record_incident("inc-short", encode_h264(30, wall_base=T0.timestamp() + 7200))
    world.ingest()
    assert Site.objects.get(code="duisburg").longest_incident_s == 3601  # the last picture lasts too; rounded up
    window = T0 + timedelta(minutes=59, seconds=30)
    assert [r["incident"] for r in subject_report("duisburg", window, window + timedelta(seconds=10))] == [
        "kod-07/inc-long"]
    assert subject_report("duisburg", T0 + timedelta(minutes=61), T0 + timedelta(minutes=119)) == []


def test_the_subject_report_refuses_an_unknown_site_and_a_reversed_window(world):
    from backoffice.catalog.models import RuleError
    from backoffice.catalog.reports import subject_report

    with pytest.raises(RuleError, match="no site"):
        subject_report("nowhere", T0, T0)
    with pytest.raises(RuleError, match="after its end"):
        subject_report("nowhere", T0, T0 - timedelta(seconds=1))


def test_the_subject_report_costs_the_same_queries_for_many_incidents(world, frames_30):
    from backoffice.catalog.models import Access
    from backoffice.catalog.reports import subject_report

    _spread(world, frames_30)
    rita = world.user("rita", "reviewer")
    for name in ("inc-0", "inc-1", "inc-2"):
        Access.open(world.office, user=rita, incident=_incident(name), kind=Access.PAGE)
        _incident(name).place_hold(world.office, by=rita, case_reference="C", reason="r")
    costs = []
    for hours in (1, 3):  # one incident, then three
        start = T0.replace(hour=10 - hours + 1)
        with CaptureQueriesContext(connection) as queries:
            rows = subject_report("duisburg", start, T0.replace(hour=10, minute=5))
        costs.append((len(rows), len(queries)))
    assert [n for n, _ in costs] == [1, 3] and costs[0][1] == costs[1][1], costs


def test_reading_a_report_needs_a_reader_role_and_is_recorded(world):
    from backoffice.catalog.models import RuleError
    from backoffice.catalog.reports import record_read

    dana, olga = world.user("dana", "data-protection"), world.user("olga", "officer")
    record_read(world.office, kind="access", parameters={"incident": "kod-07/inc-1"}, by=dana, via="web 10.0.0.9")
    with pytest.raises(RuleError, match="may not read reports"):
        record_read(world.office, kind="subject", parameters={"site": "duisburg"}, by=olga)
    logged = [(e, f) for e, f in _events(world) if e.startswith("report_")]
    assert logged == [("report_read", {"kind": "access", "parameters": {"incident": "kod-07/inc-1"}, "by": "dana",
                                       "via": "web 10.0.0.9"}),
                      ("report_refused", {"kind": "subject", "parameters": {"site": "duisburg"}, "by": "olga",
                                          "reason": "olga may not read reports (needs one of: data-protection, "
                                                    "supervisor, admin)"})]
