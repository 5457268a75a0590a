"""The incident list (queries.incident_list) and the per-incident access report: what each filter selects."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import T0


@pytest.fixture
def three(world, frames_30):
    """inc-1 on day 1 (olga); inc-2 at the very start of day 2 (otto); inc-3 late on day 2 (olga, held)."""
    from backoffice.catalog.models import Incident

    for name in ("inc-1", "inc-2", "inc-3"):
        world.record_incident(name, frames_30)
    world.ingest()
    day2 = T0.replace(hour=0, minute=0, second=0) + timedelta(days=1)
    for name, start, officer in (("inc-1", T0, "olga"), ("inc-2", day2, "otto"),
                                 ("inc-3", day2 + timedelta(hours=23, minutes=59, seconds=59), "olga")):
        Incident.objects.filter(incident_id=name).update(start=start, officer=officer)
    rita = world.user("rita", "reviewer")
    Incident.objects.get(incident_id="inc-3").place_hold(world.office, by=rita, case_reference="Az. 7",
                                                         reason="Anzeige")
    return world


def _names(rows) -> list[str]:
    return [incident.incident_id for incident in rows]


def test_each_filter_of_the_incident_list_selects_what_it_says_oldest_first(three):
    from backoffice.catalog.models import Device, Incident, Site
    from backoffice.catalog.queries import incident_list

    site, device = Site.objects.get(), Device.objects.get()
    day1, day2 = T0.date(), T0.date() + timedelta(days=1)
    assert _names(incident_list()) == ["inc-1", "inc-2", "inc-3"]
    assert _names(incident_list(site=site, day=day1)) == ["inc-1"]
    assert _names(incident_list(site=site, day=day2)) == ["inc-2", "inc-3"]  # 00:00:00 and 23:59:59 belong to it
    assert _names(incident_list(device=device, day=day2 + timedelta(days=1))) == []
    assert _names(incident_list(officer="olga")) == ["inc-1", "inc-3"]
    assert _names(incident_list(officer="olga").reverse()[:1]) == ["inc-3"]  # the newest page
    assert _names(incident_list(held=True)) == ["inc-3"]
    assert _names(incident_list(held=False, officer="olga")) == ["inc-1"]
    Incident.objects.get(incident_id="inc-1").delete_with_tombstone(three.office, rule="test", by=["a", "b"])
    assert _names(incident_list(state=Incident.DELETED)) == ["inc-1"]
    assert _names(incident_list(state=Incident.ACTIVE, held=False)) == ["inc-2"]


def test_the_access_report_lists_every_access_to_one_incident_oldest_first(three):
    from backoffice.catalog import reports
    from backoffice.catalog.models import Access, Incident

    inc = Incident.objects.get(incident_id="inc-2")
    rita, dana = three.user("rita2", "reviewer"), three.user("dana", "data-protection")
    Access.open(three.office, user=rita, incident=inc, kind=Access.PLAYBACK, purpose="Anzeige 12/2025", via="web 10.0.0.7")
    three.clock.now += timedelta(minutes=5)
    Access.open(three.office, user=dana, incident=inc, kind=Access.PAGE, via="cli root")
    Access.open(three.office, user=rita, incident=Incident.objects.get(incident_id="inc-1"), kind=Access.PAGE)
    assert reports.access_report(inc) == [
        {"at": T0.isoformat(), "event": "access", "by": "rita2", "kind": "playback", "purpose": "Anzeige 12/2025",
         "via": "web 10.0.0.7", "note": ""},
        {"at": (T0 + timedelta(minutes=5)).isoformat(), "event": "access", "by": "dana", "kind": "page",
         "purpose": "", "via": "cli root", "note": ""}]


def test_the_expiring_report_pages_and_lists_all_for_the_command(three):
    from backoffice.catalog import reports

    now = three.clock.now
    until = now + timedelta(days=30)
    everything = reports.expiring(now, until, limit=None)
    assert [r["incident"] for r in everything] == ["kod-07/inc-1", "kod-07/inc-2", "kod-07/inc-3"]
    assert [r["held"] for r in everything] == [[], [], ["Az. 7"]]
    assert reports.expiring(now, until, limit=2) == everything[:2]
    assert reports.expiring(now, until, limit=2, offset=2) == everything[2:]
